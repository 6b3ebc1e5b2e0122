"""Exports of models with half-precision coupling networks decode like the
library: the served graphs compute the networks in float32, as encode /
decode do, so they hold no half-precision tensor and export to ONNX too."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from export import ServedGlow
from export.onnx import convert_to_onnx
from glow_tf import GlowModel, postprocess
from glow_tf.data import bin_centre_noise
from tests.conftest import TINY, tiny_images, trained_like

CONFIG = TINY.replace(coupling="affine", num_bits=8)
HALF = {"bfloat16", "float16", "half"}


@pytest.fixture(scope="module")
def served():
    """bfloat16 networks (float16 takes the same path: tests/nn/test_coupling_network.py)."""
    model = GlowModel(CONFIG.replace(network_dtype="bfloat16"))
    return ServedGlow(trained_like(model, tiny_images(16, CONFIG.image_shape, seed=3)))


@pytest.fixture(scope="module")
def images():
    return tiny_images(4, CONFIG.image_shape, seed=6)


def _dtypes(served, name):
    graph = served.function(name).get_concrete_function().graph
    return {t.dtype.name for op in graph.get_operations() for t in op.outputs}


def test_served_graphs_hold_no_half_precision_tensor(served):
    for name in ("encode", "decode", "decoder"):
        assert not _dtypes(served, name) & HALF, name


def test_served_round_trip_is_the_librarys(served, images):
    model = served.model
    encoding = model.encode(images, noise=bin_centre_noise(images, CONFIG.num_bits))
    encoded = served.function("encode")({"images": images})
    # float32 rounding apart (the served graphs hold W^-1 and log|det W| as constants);
    # half-precision networks would differ by about 1e-3
    np.testing.assert_allclose(encoded["eps"], encoding.flat, atol=1e-6, rtol=0)
    np.testing.assert_allclose(encoded["bits_per_dim"], encoding.bits_per_dim, rtol=1e-6)
    decoded = served.function("decode")({"eps": encoded["eps"], "temperature": np.float32(1)})
    x_back = model.decode(encoding.flat, as_uint8=False)
    np.testing.assert_allclose(decoded["continuous"], x_back, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(decoded["images"], images)
    np.testing.assert_array_equal(postprocess(x_back, CONFIG.num_bits), images)


def test_onnx_decoder_matches_the_library(served, images):
    model = served.model
    decoder = convert_to_onnx(served, "decoder")
    session = onnxruntime.InferenceSession(
        decoder.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    eps = model.encode(images, noise=bin_centre_noise(images, CONFIG.num_bits)).flat.numpy()
    continuous, decoded = session.run(
        ["continuous", "images"], {"eps": eps, "temperature": np.array(1, np.float32)}
    )
    np.testing.assert_allclose(continuous, model.decode(eps, as_uint8=False), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(decoded, images)
