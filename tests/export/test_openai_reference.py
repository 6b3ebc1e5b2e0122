"""Models holding the official OpenAI weights (ref_A, ref_B): the exports reproduce the
official reconstructions and samples."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from export.verify import pixel_agreement

OFFICIAL_TOLERANCE = 1e-5  # the core layers reproduce the official numerics to ~3e-6


@pytest.fixture(scope="session")
def reference_export(reference, export_cache, isolated_responses):
    """(version_dir, {label: SavedModel response}) of the reference model's export."""
    _, _, version_dir = export_cache[reference.name]
    return version_dir, isolated_responses[reference.name][1]


def test_exported_decoder_reproduces_the_official_x_rec(reference, reference_export):
    version_dir, responses = reference_export
    official = reference.npz("ref_encode_decode.npz")
    np.testing.assert_array_equal(responses["x_rec"]["images"], official["x_rec"])
    np.testing.assert_allclose(
        responses["x_rec"]["continuous"], official["x_rec_cont"], atol=OFFICIAL_TOLERANCE
    )
    session = onnxruntime.InferenceSession(str(version_dir / "decoder.onnx"))
    feed = {"eps": official["feps"], "temperature": np.array(1.0, np.float32)}
    if reference.config.conditional:
        feed["labels"] = reference.labels().astype(np.int32)
    images, continuous = session.run(["images", "continuous"], feed)
    np.testing.assert_allclose(continuous, official["x_rec_cont"], atol=1e-4)
    identical, steps = pixel_agreement(images, official["x_rec"], reference.config.num_bits)
    assert identical >= 0.999 and steps <= 1


def test_exported_decoder_reproduces_the_official_samples(reference, reference_export):
    _, responses = reference_export
    official = reference.npz("ref_samples_t0.7.npz")
    identical, steps = pixel_agreement(
        responses["samples"]["images"], official["x_uint8"], reference.config.num_bits
    )
    assert identical >= 0.999 and steps <= 1


def test_exported_encoder_reproduces_the_official_feps(reference, reference_export):
    _, responses = reference_export
    official = reference.npz("ref_encode_decode.npz")
    np.testing.assert_allclose(responses["feps"]["eps"], official["feps"], atol=OFFICIAL_TOLERANCE)
    forward = reference.npz("ref_forward.npz")
    np.testing.assert_allclose(
        responses["feps"]["bits_per_dim"], forward["bits_x"], atol=OFFICIAL_TOLERANCE
    )
