"""GlowModel: fit, encode/decode/sample, saving, the TFP view, and bad input."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from glow_tf import GlowModel
from tests.conftest import REPO_ROOT, TINY, tiny_images

CONDITIONAL = TINY.replace(num_classes=3, weight_y=0.1, coupling="additive", lu_decomposed=True)


@pytest.fixture(scope="module")
def conditional_model():
    model = GlowModel(CONDITIONAL)
    images = tiny_images(32, CONDITIONAL.image_shape, seed=3)
    model.initialize(images, np.arange(32) % 3)
    return model


def _fixed_noise(images, num_bits):
    return np.full(images.shape, 0.5 / 2**num_bits, np.float32)


def test_encode_decode_round_trip_is_exact(tiny_model):
    images = tiny_images(6, TINY.image_shape, seed=1)
    encoding = tiny_model.encode(images, noise=_fixed_noise(images, TINY.num_bits))
    assert [tuple(e.shape[1:]) for e in encoding.latents] == list(tiny_model.latent_shapes)
    assert encoding.flat.shape == [6, TINY.num_dims]
    step = 256 // TINY.num_bins
    np.testing.assert_array_equal(tiny_model.decode(encoding.latents), images // step * step)
    np.testing.assert_array_equal(tiny_model.decode(encoding.flat), images // step * step)


def test_sample_at_temperature_zero_is_decode_of_zeros(conditional_model):
    y = np.array([0, 1, 2])
    zeros = np.zeros((3, CONDITIONAL.num_dims), np.float32)
    np.testing.assert_array_equal(
        conditional_model.sample(3, temperature=0.0, seed=5, y=y), conditional_model.decode(zeros, y)
    )
    first = conditional_model.sample(3, 0.7, seed=5, y=y)
    np.testing.assert_array_equal(first, conditional_model.sample(3, 0.7, seed=5, y=y))
    assert first.dtype == tf.uint8 and first.shape == [3, *CONDITIONAL.image_shape]


def test_bits_per_dim_is_log_prob_in_bits(tiny_model):
    images = tiny_images(4, TINY.image_shape, seed=2)
    noise = _fixed_noise(images, TINY.num_bits)
    bits = tiny_model.bits_per_dim(images, noise=noise)
    log_prob = tiny_model.log_prob(images, noise=noise)
    np.testing.assert_allclose(bits, -log_prob / (TINY.num_dims * np.log(2)), rtol=1e-6)


def test_distribution_view_agrees_with_the_model(conditional_model):
    images = tiny_images(4, CONDITIONAL.image_shape, seed=4)
    y = np.array([1, 1, 1, 1])
    noise = _fixed_noise(images, CONDITIONAL.num_bits)
    x = conditional_model.flow_input(images, noise)
    distribution = conditional_model.distribution(y=1)
    # the terms before they cancel: latents, their prior log-density, the log-det
    latents = distribution.bijector.inverse(x)
    np.testing.assert_allclose(latents, conditional_model.encode(images, y, noise).flat, atol=1e-6)
    prior = np.asarray(distribution.distribution.log_prob(latents), np.float64)
    flat = np.asarray(latents, np.float64)
    exact_prior = -0.5 * np.sum(flat**2, -1) - 0.5 * CONDITIONAL.num_dims * np.log(2 * np.pi)
    np.testing.assert_allclose(prior, exact_prior, rtol=1e-6)
    log_det = np.asarray(
        distribution.bijector.inverse_log_det_jacobian(x, event_ndims=3), np.float64
    )
    np.testing.assert_allclose(distribution.log_prob(x), prior + log_det, rtol=0, atol=1e-6)
    # log p(x) ~ 1.3 is a float32 sum of terms that cancel: prior (~ -95), log-det
    # (~ +95) and, in the model's log_prob, -D log n_bins (~ -222). Each term and
    # partial sum is rounded to eps32/2 of its size, so two evaluations agree to a
    # few eps32 times the sum of the magnitudes (~410: 4 eps32 x 410 = 2e-4), not to
    # a relative 1e-5 of 1.3, below one float32 ulp of the model's -220 (they once
    # differed by 1.5e-5). A wrong term (a layer's log-det, a prior) is off by more.
    shift = CONDITIONAL.num_dims * np.log(CONDITIONAL.num_bins)
    magnitude = np.abs(prior) + np.abs(log_det) + shift
    expected = np.asarray(conditional_model.log_prob(images, y, noise), np.float64) + shift
    np.testing.assert_array_less(
        np.abs(np.asarray(distribution.log_prob(x), np.float64) - expected),
        4 * np.finfo(np.float32).eps * magnitude,
    )
    assert distribution.sample(5, seed=(1, 2)).shape == [5, *CONDITIONAL.image_shape]


def test_short_fit_lowers_the_loss():
    model = GlowModel(TINY.replace(seed=7))
    images = tiny_images(64, TINY.image_shape, seed=5)
    model.initialize(images[:32])
    model.compile(keras.optimizers.Adamax(3e-3))
    before = model.evaluate(tf.data.Dataset.from_tensor_slices(images).batch(32), verbose=0, return_dict=True)
    history = model.fit(tf.data.Dataset.from_tensor_slices(images).batch(16), epochs=4, verbose=0)
    after = model.evaluate(tf.data.Dataset.from_tensor_slices(images).batch(32), verbose=0, return_dict=True)
    losses = history.history["bits_per_dim"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert after["bits_per_dim"] < before["bits_per_dim"] - 0.05


def test_conditional_fit_on_images_and_labels(conditional_model):
    images = tiny_images(16, CONDITIONAL.image_shape, seed=6)
    model = GlowModel(CONDITIONAL)
    model.set_weights(conditional_model.get_weights())
    model.compile(keras.optimizers.Adamax(1e-3))
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(16) % 3)).batch(8)
    history = model.fit(dataset, epochs=2, verbose=0)
    assert set(history.history) >= {"loss", "bits_per_dim", "bits_y", "accuracy"}
    assert np.all(np.isfinite(history.history["loss"]))


def test_fit_refuses_an_uninitialised_model():
    model = GlowModel(TINY)
    model.compile(keras.optimizers.Adamax(1e-3))
    with pytest.raises(RuntimeError, match="initialize"):
        model.fit(tf.data.Dataset.from_tensor_slices(tiny_images(8, TINY.image_shape)).batch(4))


def test_keras_file_reloads_identically(conditional_model, tmp_path):
    path = tmp_path / "model.keras"
    conditional_model.save(path)
    reloaded = keras.models.load_model(path)
    assert reloaded.config == CONDITIONAL and reloaded.is_initialized
    images = tiny_images(4, CONDITIONAL.image_shape, seed=7)
    y = np.array([0, 1, 2, 0])
    noise = _fixed_noise(images, CONDITIONAL.num_bits)
    np.testing.assert_allclose(
        reloaded.encode(images, y, noise).flat,
        conditional_model.encode(images, y, noise).flat,
        rtol=1e-6,
        atol=1e-6,
    )
    np.testing.assert_array_equal(
        reloaded.sample(4, 0.8, seed=1, y=y), conditional_model.sample(4, 0.8, seed=1, y=y)
    )


def test_weights_file_round_trip(conditional_model, tmp_path):
    path = tmp_path / "model.weights.h5"
    conditional_model.save_weights(path)
    fresh = GlowModel(CONDITIONAL)
    assert not fresh.is_initialized
    fresh.load_weights(path)
    assert fresh.is_initialized
    for a, b in zip(fresh.get_weights(), conditional_model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_reload_in_a_separate_process(tiny_model, tmp_path):
    path = tmp_path / "tiny.keras"
    tiny_model.save(path)
    images = tiny_images(3, TINY.image_shape, seed=8)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, numpy as np, keras, glow_tf\n"
        f"m = keras.models.load_model({str(path)!r})\n"
        f"x = np.load({str(tmp_path / 'images.npy')!r})\n"
        f"noise = np.full(x.shape, {0.5 / TINY.num_bins}, np.float32)\n"
        "np.save(sys.argv[1], m.bits_per_dim(x, noise=noise).numpy())\n"
    )
    out = tmp_path / "bits.npy"
    subprocess.run([sys.executable, "-c", script, str(out)], check=True, cwd=REPO_ROOT, capture_output=True)
    # Same weights, same graph; float32 reductions may round differently by an ulp.
    np.testing.assert_allclose(
        np.load(out),
        tiny_model.bits_per_dim(images, noise=_fixed_noise(images, TINY.num_bits)),
        rtol=1e-6,
    )


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "images, error, message",
    [
        (np.zeros((8, 8, 1), np.uint8), ValueError, "rank 4"),
        (np.zeros((2, 8, 8, 3), np.uint8), ValueError, "wrong channel count"),
        (np.zeros((2, 16, 16, 1), np.uint8), ValueError, "must have shape \\[batch, 8, 8, 1\\]"),
        (np.full((2, 8, 8, 1), np.nan, np.float32), ValueError, "NaN"),
        (np.full((2, 8, 8, 1), 300.0, np.float32), ValueError, "\\[0, 255\\]"),
        (np.full((2, 8, 8, 1), -1, np.int32), ValueError, "\\[0, 255\\]"),
        (np.full((2, 8, 8, 1), "a"), TypeError, "uint8, int or float"),
    ],
)
def test_bad_images_get_clear_errors(tiny_model, images, error, message):
    with pytest.raises(error, match=message):
        tiny_model.encode(images)


def test_bad_pixels_inside_fit_stop_with_a_message(tiny_model):
    images = np.full((4, *TINY.image_shape), np.nan, np.float32)
    model = GlowModel(TINY)
    model.set_weights(tiny_model.get_weights())
    model.compile(keras.optimizers.Adamax(1e-3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        model.fit(tf.data.Dataset.from_tensor_slices(images).batch(2), verbose=0)


def test_labels_errors(tiny_model, conditional_model):
    images = tiny_images(2, TINY.image_shape)
    with pytest.raises(ValueError, match="unconditional"):
        tiny_model.encode(images, y=np.array([0, 1]))
    with pytest.raises(ValueError, match="class-conditional"):
        conditional_model.encode(images)
    with pytest.raises(ValueError, match="labels must lie in \\[0, 3\\)"):
        conditional_model.encode(images, y=np.array([0, 3]))
    with pytest.raises(TypeError, match="integers"):
        conditional_model.encode(images, y=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="2 labels for a batch of"):
        conditional_model.encode(tiny_images(3, TINY.image_shape), y=np.array([0, 1]))


def test_decode_errors(tiny_model):
    with pytest.raises(ValueError, match="flat latents must have shape"):
        tiny_model.decode(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="expected latents of shapes"):
        tiny_model.decode([np.zeros((2, 4, 4, 2), np.float32)])
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        tiny_model.decode(np.zeros((1, TINY.num_dims), np.float32), temperature=-1.0)
    with pytest.raises(TypeError, match="float32"):
        tiny_model.decode(np.zeros((1, TINY.num_dims), np.float64))
    with pytest.raises(ValueError, match="n must be >= 1"):
        tiny_model.sample(0)


def test_noise_errors(tiny_model):
    images = tiny_images(2, TINY.image_shape)
    with pytest.raises(ValueError, match="noise must lie in"):
        tiny_model.encode(images, noise=np.full(images.shape, 0.5, np.float32))
    with pytest.raises(ValueError, match="images' shape"):
        tiny_model.encode(images, noise=np.zeros((2, 4, 4, 1), np.float32))


def test_config_type_error():
    with pytest.raises(TypeError, match="GlowConfig or dict"):
        GlowModel("cifar10")


def test_value_checks_also_hold_inside_tf_function(tiny_model):
    flat = tf.zeros([1, TINY.num_dims])

    @tf.function
    def decode(temperature):
        return tiny_model.decode(flat, temperature=temperature)

    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be >= 0"):
        decode(tf.constant(-0.5))
    images = tiny_images(2, TINY.image_shape)

    @tf.function
    def encode(noise):
        return tiny_model.encode(images, noise=noise).flat

    with pytest.raises(tf.errors.InvalidArgumentError, match="noise must lie in"):
        encode(tf.fill(images.shape, 0.9))
