"""One contract over every glow_tf bijector and the whole flow.

For each transform, in float64 and float32, eager and inside a tf.function
with an unknown batch size: round trip, finite outputs, log-det of shape [B],
FLDJ = -ILDJ through TFP's API, and the log-det equal to the log|det| of the
autodiff Jacobian (float64, tiny events).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from glow_tf import GlowConfig, GlowModel, RealNVPConfig, RealNVPModel
from glow_tf.models import glow_level, realnvp_level
from glow_tf.flow import (
    ActNorm,
    ActNormLayer,
    ConditionalCouplingLayer,
    Conv1x1Layer,
    Conv1x1LULayer,
    CouplingLayer,
    FlowStepLayer,
    ReverseLayer,
    ShuffleLayer,
    SplitLayer,
    Squeeze,
    Standardize,
    CouplingMask,
    DataConstraintLogitLayer,
    FlowBatchNorm,
    FlowBatchNormLayer,
    MaskedCouplingLayer,
    RealNVPCouplingLayer,
    Unsqueeze,
)

tfb = tfp.bijectors
tfd = tfp.distributions


def randomize(layer, seed=0, scale=0.3):
    """Perturbs the trainable weights, so zero-initialised networks are not the identity."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_weights:
        if variable.dtype in ("float32", "float64"):
            value = variable.numpy()
            variable.assign(value + scale * rng.standard_normal(value.shape))
    return layer


def built(layer, event_shape):
    layer.build((None, *event_shape))
    return layer


def _rng_tensor(shape, dtype, seed):
    return tf.constant(np.random.default_rng(seed).standard_normal(shape), dtype)


# Each case: (event_shape, make(dtype) -> bijector). Layers are kept alive by closure.
CASES = {
    "squeeze": ((4, 4, 2), lambda dtype: Squeeze()),
    "act_norm": (
        (2, 2, 4),
        lambda dtype: ActNorm(_rng_tensor([4], dtype, 1), 0.3 * _rng_tensor([4], dtype, 2)),
    ),
    "act_norm_layer": ((2, 2, 4), lambda dtype: randomize(built(ActNormLayer(dtype=dtype), (2, 2, 4))).bijector()),
    "reverse": ((2, 2, 4), lambda dtype: built(ReverseLayer(dtype=dtype), (2, 2, 4)).bijector()),
    "shuffle": ((2, 2, 4), lambda dtype: built(ShuffleLayer(seed=3, dtype=dtype), (2, 2, 4)).bijector()),
    "conv1x1": ((2, 2, 4), lambda dtype: randomize(built(Conv1x1Layer(seed=4, dtype=dtype), (2, 2, 4))).bijector()),
    "conv1x1_lu": (
        (2, 2, 4),
        lambda dtype: randomize(built(Conv1x1LULayer(seed=5, dtype=dtype), (2, 2, 4)), scale=0.1).bijector(),
    ),
    "additive_coupling": (
        (2, 2, 4),
        lambda dtype: randomize(built(CouplingLayer("additive", 6, seed=6, dtype=dtype), (2, 2, 4))).bijector(),
    ),
    "affine_coupling": (
        (2, 2, 4),
        lambda dtype: randomize(built(CouplingLayer("affine", 6, seed=7, dtype=dtype), (2, 2, 4))).bijector(),
    ),
    "conditional_coupling": (
        (2, 2, 4),
        lambda dtype: randomize(
            built(ConditionalCouplingLayer(3, "affine", hidden_channels=6, seed=12, dtype=dtype), (2, 2, 4))
        ).bijector(context=_rng_tensor([1, 2, 2, 3], dtype, 13)),  # one context, any batch
    ),
    "split": ((2, 2, 4), lambda dtype: randomize(built(SplitLayer(dtype=dtype), (2, 2, 4)), scale=0.1).bijector()),
    "standardize": (
        (2, 2, 4),
        lambda dtype: Standardize(_rng_tensor([1, 2, 2, 4], dtype, 8), 0.3 * _rng_tensor([1, 2, 2, 4], dtype, 9)),
    ),
    "flow_step": (
        (2, 2, 4),
        lambda dtype: randomize(
            built(FlowStepLayer("affine", "conv1x1", hidden_channels=6, seed=10, dtype=dtype), (2, 2, 4)),
            scale=0.1,
        ).bijector(),
    ),
    "level": (
        (4, 4, 2),
        lambda dtype: randomize(
            built(
                glow_level(
                    GlowConfig(image_shape=(4, 4, 2), num_levels=2, num_steps=2, hidden_channels=6,
                               coupling="additive", permutation="shuffle"),
                    0, seed=11, dtype=dtype,
                ),
                (4, 4, 2),
            ),
            scale=0.1,
        ).bijector(),
    ),
}


def _masked_coupling(mask, coupling="affine", batch_norm=True, seed=12):
    def make(dtype):
        layer = MaskedCouplingLayer(
            mask, coupling, hidden_channels=6, batch_norm=batch_norm, seed=seed, dtype=dtype
        )
        return randomize(built(layer, (4, 4, 4)), scale=0.3).bijector()

    return ((4, 4, 4), make)


def _moving_statistics(layer, seed):
    rng = np.random.default_rng(seed)
    layer.moving_mean.assign(0.3 * rng.standard_normal(layer.moving_mean.shape))
    layer.moving_variance.assign(0.5 + rng.random(layer.moving_variance.shape))
    return layer


def _realnvp_level(index):
    config = RealNVPConfig(image_shape=(4, 4, 2), num_levels=2, hidden_channels=4, num_blocks=1)

    def make(dtype):
        level = built(realnvp_level(config, index, seed=13, dtype=dtype), config.image_shape if index == 0 else (2, 2, 4))
        for layer in level.steps:
            if isinstance(layer, RealNVPCouplingLayer):
                _moving_statistics(layer.batch_norm, 14)
        return randomize(level, scale=0.1).bijector()

    return (config.image_shape if index == 0 else (2, 2, 4)), make


CASES.update(
    {
        "squeeze_diagonal_first": ((4, 4, 2), lambda dtype: Squeeze(order="diagonal_first")),
        "unsqueeze_channel_major": ((2, 2, 8), lambda dtype: Unsqueeze()),
        "data_constraint_logit": (
            (2, 2, 3),
            lambda dtype: DataConstraintLogitLayer(0.9, dtype=dtype).bijector(),
        ),
        "masked_coupling_checkerboard_even": _masked_coupling(CouplingMask("checkerboard", 1)),
        "masked_coupling_checkerboard_odd": _masked_coupling(CouplingMask("checkerboard", 0)),
        "masked_coupling_channel_first": _masked_coupling(CouplingMask("channel", keep="first")),
        "masked_coupling_channel_second": _masked_coupling(CouplingMask("channel", keep="second")),
        "masked_coupling_additive": _masked_coupling(CouplingMask("checkerboard", 0), "additive"),
        "masked_coupling_no_batch_norm": _masked_coupling(
            CouplingMask("channel", keep="second"), batch_norm=False
        ),
        "flow_batch_norm_checkerboard": (
            (4, 4, 3),
            lambda dtype: _moving_statistics(
                built(FlowBatchNormLayer(CouplingMask("checkerboard", 1), dtype=dtype), (4, 4, 3)), 15
            ).bijector(),
        ),
        "flow_batch_norm_channel": (
            (2, 2, 4),
            lambda dtype: FlowBatchNorm(
                _rng_tensor([2], dtype, 16), 0.5 + tf.abs(_rng_tensor([2], dtype, 17)),
                CouplingMask("channel", keep="second"),
            ),
        ),
        "realnvp_level_0": _realnvp_level(0),
    }
)

# Cases whose inputs must lie in a domain: normal draws are mapped into it.
DOMAINS = {
    "data_constraint_logit": lambda x: 0.45 * tf.tanh(x),
    "realnvp_level_0": lambda x: 0.45 * tf.tanh(x),
}


def _multiscale(dtype, **config):
    config = GlowConfig(image_shape=(4, 4, 1), num_levels=2, num_steps=2, hidden_channels=6, **config)
    model = randomize(GlowModel(config, dtype=dtype), scale=0.05)
    y = tf.constant(2) if config.conditional else None  # one class, any batch
    return model.flow(y)


CASES["multiscale_affine_conditional"] = (
    (4, 4, 1),
    lambda dtype: _multiscale(dtype, coupling="affine", lu_decomposed=True, num_classes=3),
)
CASES["multiscale_additive_reverse"] = (
    (4, 4, 1),
    lambda dtype: _multiscale(dtype, coupling="additive", permutation="reverse", learn_top=False),
)


def _realnvp_multiscale(dtype):
    config = RealNVPConfig(image_shape=(4, 4, 1), num_levels=2, hidden_channels=4, num_blocks=1)
    model = randomize(RealNVPModel(config, dtype=dtype), scale=0.05)
    return model.flow()


CASES["multiscale_realnvp"] = ((4, 4, 1), _realnvp_multiscale)
DOMAINS["multiscale_realnvp"] = lambda x: 0.45 * tf.tanh(x)

BATCH = 3
TOLERANCE = {tf.float64: 1e-9, tf.float32: 2e-4}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    event_shape, make = CASES[request.param]
    bijectors = {dtype: make(dtype.name) for dtype in (tf.float64, tf.float32)}
    return request.param, event_shape, bijectors


def _in_domain(name, x):
    return DOMAINS[name](x) if name in DOMAINS else x


def _inputs(event_shape, dtype, seed=0, name=None):
    x = tf.constant(0.5 * np.random.default_rng(seed).standard_normal((BATCH, *event_shape)), dtype)
    return _in_domain(name, x)


@pytest.mark.parametrize("dtype", [tf.float64, tf.float32], ids=["float64", "float32"])
def test_round_trip_and_log_det_shapes(case, dtype):
    name, event_shape, bijectors = case
    bijector = bijectors[dtype]
    x = _inputs(event_shape, dtype, name=name)
    y, log_det = bijector.forward_and_log_det(x)
    x_back, inverse_log_det = bijector.inverse_and_log_det(y)
    assert log_det.shape == [BATCH] and inverse_log_det.shape == [BATCH]
    assert np.all(np.isfinite(y.numpy())) and np.all(np.isfinite(log_det.numpy()))
    np.testing.assert_allclose(x_back, x, atol=TOLERANCE[dtype] * 10)
    np.testing.assert_allclose(inverse_log_det, -log_det, atol=TOLERANCE[dtype] * 100)


@pytest.mark.parametrize("dtype", [tf.float64, tf.float32], ids=["float64", "float32"])
def test_tfp_api_fldj_equals_minus_ildj(case, dtype):
    name, event_shape, bijectors = case
    bijector = bijectors[dtype]
    x = _inputs(event_shape, dtype, seed=1, name=name)
    y = bijector.forward(x)
    fldj = bijector.forward_log_det_jacobian(x, event_ndims=3)
    ildj = bijector.inverse_log_det_jacobian(y, event_ndims=bijector.inverse_min_event_ndims)
    assert fldj.shape == [BATCH]
    np.testing.assert_allclose(fldj, -ildj, atol=TOLERANCE[dtype] * 100)
    np.testing.assert_allclose(fldj, bijector.forward_and_log_det(x)[1], atol=TOLERANCE[dtype] * 100)
    np.testing.assert_allclose(bijector.inverse(y), x, atol=TOLERANCE[dtype] * 10)


def test_log_det_matches_autodiff_jacobian(case):
    name, event_shape, bijectors = case
    bijector = bijectors[tf.float64]
    x = _inputs(event_shape, tf.float64, seed=2, name=name)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y, log_det = bijector.forward_and_log_det(x)
        y_flat = tf.reshape(y, [BATCH, -1])
    jacobian = tf.reshape(tape.batch_jacobian(y_flat, x), [BATCH, y_flat.shape[1], -1])
    _, log_abs_det = tf.linalg.slogdet(jacobian)
    np.testing.assert_allclose(log_det, log_abs_det, atol=1e-8)


def test_graph_mode_with_unknown_batch_size(case):
    name, event_shape, bijectors = case
    bijector = bijectors[tf.float32]

    @tf.function(input_signature=[tf.TensorSpec([None, *event_shape], tf.float32)])
    def round_trip(x):
        y, log_det = bijector.forward_and_log_det(x)
        x_back, inverse_log_det = bijector.inverse_and_log_det(y)
        return x_back, log_det + inverse_log_det, bijector.forward_log_det_jacobian(x, 3)

    for batch in (1, 5):
        x = tf.constant(0.5 * np.random.default_rng(batch).standard_normal((batch, *event_shape)), tf.float32)
        x = _in_domain(name, x)
        x_back, log_det_sum, fldj = round_trip(x)
        np.testing.assert_allclose(x_back, x, atol=2e-3)
        np.testing.assert_allclose(log_det_sum, np.zeros(batch), atol=2e-3)
        np.testing.assert_allclose(fldj, bijector.forward_and_log_det(x)[1], atol=2e-3)


def test_any_number_of_batch_dimensions(case):
    name, event_shape, bijectors = case
    bijector = bijectors[tf.float64]
    x = tf.constant(np.random.default_rng(3).standard_normal((2, 3, *event_shape)), tf.float64)
    x = _in_domain(name, x)
    y, log_det = bijector.forward_and_log_det(x)
    assert log_det.shape == [2, 3]
    flat_y, flat_log_det = bijector.forward_and_log_det(tf.reshape(x, [6, *event_shape]))
    np.testing.assert_allclose(tf.reshape(y, flat_y.shape), flat_y, atol=1e-12)
    np.testing.assert_allclose(tf.reshape(log_det, [6]), flat_log_det, atol=1e-12)


def test_composes_with_tfp(case):
    """tfb.Invert and tfd.TransformedDistribution treat it as any TFP bijector."""
    name, event_shape, bijectors = case
    bijector = bijectors[tf.float64]
    x = _inputs(event_shape, tf.float64, seed=4, name=name)
    inverted = tfb.Invert(bijector)
    np.testing.assert_allclose(inverted.inverse(x), bijector.forward(x), atol=1e-12)
    event_size = int(np.prod(bijector.forward_event_shape(event_shape)))
    base = tfd.Sample(tfd.Normal(tf.constant(0.0, tf.float64), 1.0), [event_size])
    reshape = tfb.Reshape(bijector.forward_event_shape(event_shape), event_shape_in=[event_size])
    distribution = tfd.TransformedDistribution(base, tfb.Invert(tfb.Chain([reshape.__class__(
        [event_size], event_shape_in=bijector.forward_event_shape(event_shape)), bijector])))
    y, log_det = bijector.forward_and_log_det(x)
    expected = base.log_prob(tf.reshape(y, [BATCH, -1])) + log_det
    np.testing.assert_allclose(distribution.log_prob(x), expected, atol=1e-9)
    samples = distribution.sample(2, seed=(1, 2))
    assert samples.shape == [2, *event_shape]
