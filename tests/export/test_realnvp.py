"""A RealNVP exports like a Glow: `python -m export` writes the SavedModel (reloaded
in `python -I`, without glow_tf) and the ONNX graphs (onnxruntime), with batch
norms frozen to their moving averages, the same input checks, and verify passes.

One tiny model (8x8x1, 2 scales, width 4, 1 block), trained for a few updates
so that its batch norms' moving averages are not their initial values, is
exported once for the module; every SavedModel request runs in one isolated
process.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import onnxruntime
import pytest

from export.__main__ import main as export_main
from export.isolation import run_isolated
from export.layout import METADATA_FILE
from export.verify import main as verify_main
from export.verify import verify_export
from glow_tf import GlowConfig, GlowModel, RealNVPConfig, RealNVPModel, postprocess
from glow_tf.data import bin_centre_noise
from glow_tf.flow import FlowBatchNormLayer
from tests.conftest import tiny_images
from tests.export.conftest import TEMPERATURE

CONFIG = RealNVPConfig(
    image_shape=(8, 8, 1), num_levels=2, hidden_channels=4, num_blocks=1, num_bits=5, seed=3
)
BATCH = 5
MAX_BATCH_SIZE = 16
EXPECTED_ERRORS = {
    "eps_nan": "eps must not contain NaN or Inf",
    "eps_over_cap": "the batch of eps must be <= 16",
    "images_wrong_shape": "Shape of tensor images",
    "noise_out_of_range": "dequantisation noise must lie in [0, 0.03125)",
    "num_samples_over_cap": "num_samples must be <= 16",
    "temperature_negative": "temperature must be >= 0",
    "levels_batch_mismatch": "eps_1 must have the batch size of eps_0",
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, keras path, export root, version dir), exported by `python -m export`."""
    root = tmp_path_factory.mktemp("realnvp_export")
    model = RealNVPModel(CONFIG)
    model.compile(keras.optimizers.Adam(1e-3))
    model.fit(tiny_images(32, CONFIG.image_shape, seed=11), batch_size=16, epochs=1, verbose=0)
    keras_path = root / "realnvp.keras"
    model.save(keras_path)
    out = root / "out"
    args = ["--model", str(keras_path), "--out", str(out), "--max-batch-size", str(MAX_BATCH_SIZE)]
    assert export_main(args) == 0
    return model, keras_path, out, out / "realnvp" / "1"


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    return {
        "eps": rng.standard_normal((BATCH, CONFIG.num_dims)).astype(np.float32),
        "images": tiny_images(8, CONFIG.image_shape, seed=2),
        "noise": rng.uniform(0, 1 / CONFIG.num_bins, (BATCH, *CONFIG.image_shape)).astype(
            np.float32
        ),
    }


def _levels(model, eps):
    from glow_tf.flow import unflatten_latents

    return {
        f"eps_{i}": level.numpy()
        for i, level in enumerate(unflatten_latents(eps, model.latent_shapes))
    }


@pytest.fixture(scope="module")
def responses(exported, inputs):
    """label -> response of the SavedModel, all run by one `python -I` process."""
    model, _, _, version_dir = exported
    eps, images, noise = inputs["eps"], inputs["images"], inputs["noise"]
    levels = _levels(model, eps)
    requests = {
        "decode": ("decode", {"eps": eps, "temperature": TEMPERATURE}),
        "decode_levels": ("decode_levels", {**levels, "temperature": TEMPERATURE}),
        "encode": ("encode", {"images": images[:BATCH]}),
        "encode_8": ("encode", {"images": images}),
        "encode_3": ("encode", {"images": images[:3]}),
        "encode_with_noise": ("encode_with_noise", {"images": images[:BATCH], "noise": noise}),
        "sample": (
            "serving_default",
            {"num_samples": np.int32(BATCH), "temperature": TEMPERATURE, "seed": np.int64(7)},
        ),
        "eps_nan": ("decode", {"eps": np.full_like(eps, np.nan), "temperature": TEMPERATURE}),
        "eps_over_cap": (
            "decode",
            {
                "eps": np.zeros((MAX_BATCH_SIZE + 1, CONFIG.num_dims), np.float32),
                "temperature": TEMPERATURE,
            },
        ),
        "images_wrong_shape": ("encode", {"images": images.reshape(8, -1)}),
        "noise_out_of_range": (
            "encode_with_noise",
            {"images": images[:BATCH], "noise": np.full_like(noise, 0.5)},
        ),
        "num_samples_over_cap": (
            "sample",
            {
                "num_samples": np.int32(MAX_BATCH_SIZE + 1),
                "temperature": TEMPERATURE,
                "seed": np.int64(1),
            },
        ),
        "temperature_negative": ("decode", {"eps": eps, "temperature": np.float32(-1)}),
        "levels_batch_mismatch": (
            "decode_levels",
            {**levels, "eps_1": levels["eps_1"][:2], "temperature": TEMPERATURE},
        ),
    }
    run = run_isolated([(version_dir, sig, feed) for sig, feed in requests.values()])
    assert run.isolated and not run.glow_tf_importable
    return dict(zip(requests, run.responses, strict=True))


def test_cli_writes_the_realnvp_under_its_family_name(exported):
    model, keras_path, out, version_dir = exported
    assert [p.name for p in (out / "realnvp").iterdir()] == ["1"]
    files = {p.name for p in version_dir.iterdir()}
    assert {"saved_model.pb", "variables", "decoder.onnx", "encoder.onnx", METADATA_FILE} <= files
    metadata = json.loads((version_dir / METADATA_FILE).read_text())
    assert metadata["family"] == "realnvp"
    assert metadata["model_config"] == CONFIG.to_dict()
    assert "glow_config" not in metadata
    assert metadata["max_batch_size"] == MAX_BATCH_SIZE
    inputs = metadata["saved_model"]["signatures"]["decode_levels"]["inputs"]
    assert set(inputs) == {"eps_0", "eps_1", "temperature"}


def test_saved_model_decode_equals_the_keras_model_exactly(exported, inputs, responses):
    model = exported[0]
    expected = model.decode(inputs["eps"], temperature=float(TEMPERATURE), as_uint8=False).numpy()
    for signature in ("decode", "decode_levels"):
        np.testing.assert_array_equal(responses[signature]["continuous"], expected)
        np.testing.assert_array_equal(
            responses[signature]["images"], postprocess(expected, CONFIG.num_bits)
        )
    sampled = model.sample(BATCH, temperature=float(TEMPERATURE), seed=7).numpy()
    np.testing.assert_array_equal(responses["sample"]["images"], sampled)


def test_saved_model_encode_equals_the_keras_model(exported, inputs, responses):
    model = exported[0]
    images = inputs["images"][:BATCH]
    noises = {
        "encode": bin_centre_noise(images, CONFIG.num_bits),
        "encode_with_noise": inputs["noise"],
    }
    for signature, noise in noises.items():
        encoding = model.encode(images, noise=noise)
        response = responses[signature]
        np.testing.assert_allclose(response["bits_per_dim"], encoding.bits_per_dim, atol=1e-5)
        np.testing.assert_allclose(response["eps"], encoding.flat, atol=1e-5)
        for i, eps in enumerate(encoding.latents):
            np.testing.assert_allclose(response[f"eps_{i}"], eps, atol=1e-5)


def test_batch_norms_are_frozen_to_their_moving_averages(exported, responses):
    model = exported[0]
    norm = model.levels[0].steps[1].batch_norm
    assert isinstance(norm, FlowBatchNormLayer)
    assert not np.allclose(norm.moving_variance.numpy(), 1.0)  # trained: not the initial value
    # evaluation mode: an image's encoding does not depend on the rest of its batch
    np.testing.assert_allclose(
        responses["encode_3"]["bits_per_dim"], responses["encode_8"]["bits_per_dim"][:3], atol=1e-6
    )
    np.testing.assert_allclose(
        responses["encode_3"]["eps"], responses["encode_8"]["eps"][:3], atol=1e-6
    )


@pytest.mark.parametrize("label", sorted(EXPECTED_ERRORS))
def test_bad_requests_are_refused_with_the_glow_checks(responses, label):
    response = responses[label]
    assert response.get("error_type") == "InvalidArgumentError", sorted(response)
    assert EXPECTED_ERRORS[label] in response["error_message"]


def test_onnx_decoder_and_encoder_match_the_keras_model(exported, inputs):
    model, _, _, version_dir = exported
    decoder = onnxruntime.InferenceSession(str(version_dir / "decoder.onnx"))
    feed = {"eps": inputs["eps"], "temperature": np.array(TEMPERATURE, np.float32)}
    continuous, images = decoder.run(["continuous", "images"], feed)
    expected = model.decode(inputs["eps"], temperature=float(TEMPERATURE), as_uint8=False)
    np.testing.assert_allclose(continuous, expected, atol=1e-4, rtol=0)
    assert np.mean(images == postprocess(expected, CONFIG.num_bits).numpy()) >= 0.999
    encoder = onnxruntime.InferenceSession(str(version_dir / "encoder.onnx"))
    bits = encoder.run(["bits_per_dim"], {"images": inputs["images"][:BATCH]})[0]
    expected = model.encode(
        inputs["images"][:BATCH], noise=bin_centre_noise(inputs["images"][:BATCH], CONFIG.num_bits)
    ).bits_per_dim
    np.testing.assert_allclose(bits, expected, rtol=1e-5)


def test_verify_passes(exported, capsys):
    _, keras_path, out, _ = exported
    code = verify_main([str(out), "--model", str(keras_path), "--batch", "4"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "saved_model encode bits/dim" in printed and "onnx decoder continuous" in printed


def test_verify_refuses_a_model_of_another_family(exported):
    version_dir = exported[3]
    glow = GlowModel(GlowConfig(image_shape=(8, 8, 1), num_levels=2, num_steps=1, hidden_channels=4, num_bits=5))
    with pytest.raises(ValueError, match="another configuration"):
        verify_export(version_dir, glow)
    other = RealNVPModel(CONFIG.replace(hidden_channels=5))
    with pytest.raises(ValueError, match="another configuration"):
        verify_export(version_dir, other)
