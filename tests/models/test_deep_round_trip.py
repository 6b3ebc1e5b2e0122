"""decode(encode(x)) == x at depth (K = 32, trained-like weights) whatever the
precision of the coupling networks: inference computes them in float32."""

from __future__ import annotations

import numpy as np
import pytest

from glow_tf import postprocess
from glow_tf.data.dequantize import bin_centre_noise
from tests.conftest import DEEP, functions_run_eagerly, tiny_images

DTYPES = ["float32", "bfloat16", "float16"]
GUARD_TOLERANCE = 1e-3  # InvertibilityGuard's default


@pytest.fixture(scope="module")
def images():
    return tiny_images(8, DEEP.image_shape, seed=2)


@pytest.fixture(scope="module")
def flow_input(deep_models, images):
    noise = bin_centre_noise(images, DEEP.num_bits)
    return deep_models["float32"].flow_input(images, noise).numpy()


@pytest.fixture(scope="module")
def encodings(deep_models, images):
    """Each model's encoding of `images` at bin centres, by network dtype."""
    noise = bin_centre_noise(images, DEEP.num_bits)
    with functions_run_eagerly():
        return {dtype: model.encode(images, noise=noise) for dtype, model in deep_models.items()}


@pytest.mark.parametrize("dtype", DTYPES)
def test_bin_centre_round_trip_gives_the_image_back(
    deep_models, images, flow_input, encodings, dtype, eagerly
):
    x_back = deep_models[dtype].decode(encodings[dtype].flat, as_uint8=False)
    np.testing.assert_array_equal(postprocess(x_back, DEEP.num_bits).numpy(), images)
    assert np.max(np.abs(x_back.numpy() - flow_input)) < GUARD_TOLERANCE / 10


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_inference_computes_the_half_precision_networks_in_float32(deep_models, encodings, dtype):
    network = deep_models[dtype].levels[0].steps[0].coupling.network
    assert network.compute_dtype == dtype and network.precision(training=False) == "float32"
    for name in ("flat", "bits_per_dim"):
        np.testing.assert_array_equal(
            getattr(encodings[dtype], name).numpy(), getattr(encodings["float32"], name).numpy()
        )


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_the_weights_are_deep_enough_to_break_a_half_precision_round_trip(
    deep_models, flow_input, dtype, eagerly
):
    """What the float32 inference avoids: a round trip through the networks
    computing in half precision (as they do in training) misses the flow input
    by more than the invertibility guard tolerates."""
    flow = deep_models[dtype].flow(include_top=False, training=True)
    latents, _ = flow.forward_latents(flow_input)
    x_back, _ = flow.inverse_latents(latents)
    assert np.max(np.abs(x_back.numpy() - flow_input)) > GUARD_TOLERANCE
