"""ActNorm's data-dependent init: zero mean and unit variance per channel, explicit only."""

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.flow import ActNormLayer, data_dependent_init
from glow_tf.nn import ActNormalization


def test_init_gives_zero_mean_unit_variance():
    layer = ActNormLayer()
    layer.build((None, 4, 4, 3))
    x = tf.constant(np.random.default_rng(0).normal([1.0, -2.0, 5.0], [0.5, 3.0, 0.1], (16, 4, 4, 3)), tf.float32)
    with data_dependent_init():
        y, log_det = layer(x)
    mean = tf.reduce_mean(y, [0, 1, 2])
    std = tf.math.reduce_std(y, [0, 1, 2])
    np.testing.assert_allclose(mean, 0.0, atol=1e-5)
    np.testing.assert_allclose(std, 1.0, atol=1e-4)
    np.testing.assert_allclose(log_det, 16 * np.sum(-np.log(np.std(x.numpy(), (0, 1, 2)))), rtol=1e-4)


def test_init_is_deterministic_and_never_implicit():
    x = tf.constant(np.random.default_rng(1).normal(3.0, 2.0, (8, 2, 2, 4)), tf.float32)
    first, second = ActNormLayer(), ActNormLayer()
    for layer in (first, second):
        layer.build((None, 2, 2, 4))
    y_plain, _ = first(x)
    np.testing.assert_array_equal(y_plain, x)  # no init outside the context
    with data_dependent_init():
        first(x)
        second(x)
    np.testing.assert_array_equal(first.bias, second.bias)
    np.testing.assert_array_equal(first.logs, second.logs)


@pytest.mark.parametrize("layer_class", [ActNormLayer, ActNormalization])
def test_init_refuses_graph_mode(layer_class):
    layer = layer_class()
    layer.build((None, 2, 2, 4))

    @tf.function
    def traced(x):
        with data_dependent_init():
            return layer(x)

    with pytest.raises(RuntimeError, match="eagerly"):
        traced(tf.zeros([2, 2, 2, 4]))


def test_wrong_channel_count_is_a_clear_error():
    layer = ActNormLayer()
    layer.build((None, 2, 2, 4))
    with pytest.raises(ValueError, match="expected 4 channels"):
        layer(tf.zeros([1, 2, 2, 3]))


def test_bijector_is_pure_and_inverse_calls_do_not_initialise():
    layer = ActNormLayer()
    layer.build((None, 2, 2, 4))
    x = tf.constant(np.random.default_rng(2).normal(3.0, 2.0, (8, 2, 2, 4)), tf.float32)
    with data_dependent_init():
        bijector = layer.bijector()
        np.testing.assert_array_equal(bijector.forward(x), x)  # built before init: zeros
        np.testing.assert_array_equal(layer(x, inverse=True)[0], x)
        assert not np.any(layer.logs.numpy())
        y, log_det = layer(x)
    assert np.any(layer.logs.numpy())
    np.testing.assert_allclose(log_det, 4 * np.sum(3.0 * layer.logs.numpy()), rtol=1e-6)
    np.testing.assert_allclose(layer(y, inverse=True)[0], x, atol=1e-5)
