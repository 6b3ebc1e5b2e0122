"""Variational dequantisation: a valid bound, an exact log q, exact bins, save and fit."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from glow_tf import GlowConfig, GlowModel
from glow_tf.data.dequantize import UniformDequantization, bin_centre_noise
from glow_tf.data.dequantizers import make_dequantizer
from glow_tf.data.preprocess import postprocess
from glow_tf.data.variational_dequantize import (
    VariationalDequantization,
    edge_margin,
    logistic_log_prob,
)
from tests.conftest import tiny_images
from tests.flow.test_bijector_contract import randomize

# D = 4 values of 2 bits: the bin of an image is a 4-cube of side 1/4, small
# enough to integrate p over it on a grid.
BOUND_CONFIG = GlowConfig(
    image_shape=(2, 2, 1), num_levels=1, num_steps=2, hidden_channels=8, num_bits=2, seed=3
)
GRID = 12  # midpoints per axis: 12**4 points; 8 -> 16 -> 24 moved log P by 1e-3, 2e-4 here
QUADRATURE_TOLERANCE = 2e-3
DRAWS = 20000


@pytest.fixture(scope="module")
def bound_model():
    """A tiny variational model whose flow and q are perturbed away from their init."""
    tf.random.set_seed(0)
    model = GlowModel(BOUND_CONFIG, dequantizer="variational")
    images = (np.random.default_rng(0).integers(0, 4, (16, 2, 2, 1)) * 64).astype(np.uint8)
    model.initialize(images, noise=bin_centre_noise(images, BOUND_CONFIG.num_bits))
    for level in model.levels:
        randomize(level, seed=1, scale=0.05)
    randomize(model.dequantizer, seed=2, scale=0.02)
    return model


def _log_density(model, x):
    """log p(x) of the continuous flow input, in nats, [B]."""
    return tf.concat(
        [model.distribution().log_prob(chunk) for chunk in tf.split(x, 8)], axis=0
    ).numpy().astype(np.float64)


def _exact_log_likelihood(model, bins):
    """log P(bins) = log of the integral of p over the image's bin (midpoint rule)."""
    num_bins = model.config.num_bins
    midpoints = (np.arange(GRID) + 0.5) / GRID
    offsets = np.array(list(itertools.product(midpoints, repeat=4)), np.float32)
    x = (bins + offsets.reshape(-1, *bins.shape[1:])) / num_bins - 0.5
    log_p = _log_density(model, tf.constant(x, tf.float32))
    top = log_p.max()
    return top + math.log(np.mean(np.exp(log_p - top))) - bins.size * math.log(num_bins)


@pytest.fixture(scope="module")
def exact_log_likelihoods(bound_model):
    """(bins [1, 2, 2, 1], log P(bins)) of two images."""
    cases = []
    for bins in ([[0, 1], [3, 2]], [[2, 2], [1, 2]]):
        bins = np.array(bins, np.float32).reshape(1, 2, 2, 1)
        cases.append((bins, _exact_log_likelihood(bound_model, bins)))
    return cases


def _weights(model, dequantizer, bins):
    """log p(x + u) - log q(u | x) for DRAWS draws of u, and log p(x + u) alone."""
    x, log_q = dequantizer(tf.constant(np.repeat(bins, DRAWS, axis=0)))
    log_p = _log_density(model, x)
    return log_p - log_q.numpy().astype(np.float64), log_p


@pytest.mark.parametrize("kind", ["variational", "uniform"])
def test_the_objective_is_a_lower_bound_of_the_exact_discrete_log_likelihood(
    bound_model, exact_log_likelihoods, kind
):
    """E_q[log p(x + u) - log q(u | x)] <= log P(x) <= that plus log q dropped;
    and the importance-weighted estimate log mean exp(w) reaches log P(x),
    which only holds if log q is q's exact, normalised log-density."""
    tf.random.set_seed(1)
    dequantizer = bound_model.dequantizer if kind == "variational" else UniformDequantization(2)
    for bins, log_likelihood in exact_log_likelihoods:
        weights, log_p = _weights(bound_model, dequantizer, bins)
        error = weights.std() / math.sqrt(DRAWS)
        assert weights.mean() <= log_likelihood + 4 * error + QUADRATURE_TOLERANCE
        assert log_p.mean() > log_likelihood + 1.0  # without log q: no bound
        scaled = np.exp(weights - weights.max())
        importance_weighted = weights.max() + math.log(scaled.mean())
        iw_error = scaled.std() / scaled.mean() / math.sqrt(DRAWS)
        assert abs(importance_weighted - log_likelihood) < 4 * iw_error + QUADRATURE_TOLERANCE, (
            importance_weighted,
            log_likelihood,
        )


# ------------------------------------------------------------------ contract


@pytest.fixture(scope="module")
def float64_dequantizer():
    layer = VariationalDequantization(3, num_steps=2, hidden_channels=6, seed=4, dtype="float64")
    layer.build((None, 2, 2, 2))
    return randomize(layer, seed=5, scale=0.1)


BINS = np.array([[[[0, 7], [3, 4]], [[5, 1], [2, 6]]]], np.float64)  # [1, 2, 2, 2]


def test_log_q_is_the_base_density_minus_the_autodiff_log_det(float64_dequantizer):
    eps = tf.constant(np.random.default_rng(6).logistic(size=BINS.shape), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(eps)
        u, log_q = float64_dequantizer.offsets_from_base(BINS, eps)
    jacobian = tf.reshape(tape.jacobian(u, eps), [8, 8])
    _, log_det = np.linalg.slogdet(jacobian.numpy())
    expected = float(logistic_log_prob(eps)[0]) - log_det
    assert abs(float(log_q[0]) - expected) < 1e-9
    assert np.all((u.numpy() > 0) & (u.numpy() < 1))


def test_the_inverse_path_gives_the_same_density_and_base_noise(float64_dequantizer):
    eps = tf.constant(np.random.default_rng(7).logistic(size=(3, 2, 2, 2)), tf.float64)
    bins = np.repeat(BINS, 3, axis=0)
    u, log_q = float64_dequantizer.offsets_from_base(bins, eps)
    log_q_again, eps_again = float64_dequantizer.offsets_log_prob(bins, u)
    np.testing.assert_allclose(log_q_again, log_q, atol=1e-8)
    np.testing.assert_allclose(eps_again, eps, atol=1e-8)


def test_q_depends_on_the_image(float64_dequantizer):
    u = tf.fill([1, 2, 2, 2], tf.constant(0.3, tf.float64))
    first, _ = float64_dequantizer.offsets_log_prob(BINS, u)
    second, _ = float64_dequantizer.offsets_log_prob(7 - BINS, u)
    assert abs(float(first[0] - second[0])) > 1e-3


def test_a_given_noise_is_the_offset_in_the_bin_and_is_deterministic(bound_model):
    dequantizer = bound_model.dequantizer
    bins = tf.constant([[[[0.0], [1.0]], [[3.0], [2.0]]]])
    noise = np.full((1, 2, 2, 1), 0.1, np.float32)
    x, log_q = dequantizer(bins, noise=noise)
    np.testing.assert_allclose(x, bins.numpy() / 4 - 0.5 + 0.1, atol=1e-7)
    x_again, log_q_again = dequantizer(bins, noise=noise)
    np.testing.assert_array_equal(x, x_again)
    np.testing.assert_array_equal(log_q, log_q_again)
    expected, _ = dequantizer.offsets_log_prob(bins, noise * 4)
    np.testing.assert_allclose(log_q, expected + 4 * math.log(4), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 0.25\)"):
        dequantizer(bins, noise=np.full((1, 2, 2, 1), 0.3, np.float32))


# ------------------------------------------------------ quantising gives bins back


EDGE_OFFSETS = [
    0.0,
    float(np.finfo(np.float32).tiny),
    2.0**-30,
    2.0**-24,
    0.5,
    1 - 2.0**-20,
    1 - 2.0**-24,
    float(np.nextafter(np.float32(1), np.float32(0))),
    1.0,
]


@pytest.mark.parametrize("num_bits", range(1, 9))
def test_dequantise_then_quantise_returns_the_bins_for_every_offset(num_bits):
    layer = VariationalDequantization(num_bits, num_steps=1, hidden_channels=2)
    num_bins = 2**num_bits
    bins = np.arange(num_bins, dtype=np.float32)[:, None]
    u = np.array(EDGE_OFFSETS, np.float32)[None, :]
    bins, u = np.broadcast_arrays(bins, u)
    x = layer.flow_input(tf.constant(bins), tf.constant(u)).numpy()
    assert x.dtype == np.float32
    np.testing.assert_array_equal(np.floor((x + np.float32(0.5)) * np.float32(num_bins)), bins)
    images = postprocess(x, num_bits).numpy()
    np.testing.assert_array_equal(images.astype(np.float32) // 2 ** (8 - num_bits), bins)


def test_without_the_edge_clip_float32_would_round_into_the_next_bin():
    """What `edge_margin` prevents: an offset just below 1 rounds up a bin."""
    bins = np.arange(256, dtype=np.float32)
    u = np.float32(1 - 2.0**-24)
    unclipped = (bins + u) / np.float32(256) - np.float32(0.5)
    assert np.any(np.floor((unclipped + np.float32(0.5)) * np.float32(256)) != bins)
    assert edge_margin(8) == 2.0**-16 and edge_margin(1) == 2.0**-23


def test_extreme_base_noise_stays_in_its_bin_with_a_finite_log_q(bound_model):
    dequantizer = bound_model.dequantizer
    bins = tf.constant([[[[0.0], [3.0]], [[3.0], [0.0]]]])
    for value in (-60.0, -20.0, 20.0, 60.0):
        u, log_q = dequantizer.offsets_from_base(bins, tf.fill([1, 2, 2, 1], value))
        x = dequantizer.flow_input(bins, u)
        assert np.isfinite(log_q.numpy()).all()
        np.testing.assert_array_equal(np.floor((x.numpy() + 0.5) * 4), bins)


# ------------------------------------------------------- the model: save, fit, errors


def test_the_model_saves_and_reloads_with_its_dequantizer(tmp_path):
    model = GlowModel(BOUND_CONFIG, dequantizer="variational")
    images = tiny_images(8, BOUND_CONFIG.image_shape, seed=2)
    model.initialize(images)
    randomize(model.dequantizer, seed=3, scale=0.02)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.dequantizer, VariationalDequantization)
    assert reloaded.dequantizer.get_config() == model.dequantizer.get_config()
    noise = np.random.default_rng(3).uniform(0, 1 / 4, images.shape).astype(np.float32)
    np.testing.assert_array_equal(
        reloaded.bits_per_dim(images, noise=noise), model.bits_per_dim(images, noise=noise)
    )
    for a, b in zip(model.dequantizer.weights, reloaded.dequantizer.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_fit_trains_q_jointly_with_the_flow():
    model = GlowModel(BOUND_CONFIG, dequantizer="variational")
    images = tiny_images(16, BOUND_CONFIG.image_shape, seed=4)
    model.initialize(images)
    owned = {id(v) for v in model.dequantizer.trainable_variables}
    assert owned and owned <= {id(v) for v in model.trainable_variables}
    before = [v.numpy().copy() for v in model.dequantizer.trainable_variables]
    model.compile(keras.optimizers.Adamax(1e-3))
    history = model.fit(images, batch_size=4, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    changed = [
        not np.array_equal(b, v.numpy())
        for b, v in zip(before, model.dequantizer.trainable_variables)
    ]
    assert all(changed)


def test_bad_dequantizer_settings_are_refused():
    with pytest.raises(ValueError, match="unknown dequantization 'gaussian'"):
        make_dequantizer("gaussian", 5)
    with pytest.raises(ValueError, match="even H and W"):
        VariationalDequantization(5).build((None, 3, 4, 1))
    with pytest.raises(ValueError, match="num_steps must be a positive int"):
        VariationalDequantization(5, num_steps=0)
