"""The coupling networks' ActNormalization and OpenAI's data-dependent init."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from glow_tf.nn.act_norm import ActNormalization, act_norm_statistics
from glow_tf.nn.init_mode import data_dependent_init


def _openai_init_float32(x):
    """openai/glow tfops.py actnorm_center + actnorm_scale at init, in float32."""
    x = x.astype(np.float32)
    bias = -x.mean(axis=(0, 1, 2), dtype=np.float32)
    variance = np.square(x + bias).mean(axis=(0, 1, 2), dtype=np.float32)
    logs = np.log(np.float32(1.0) / (np.sqrt(variance) + np.float32(1e-6))) / np.float32(3.0)
    return bias, logs


def test_statistics_are_openais_init():
    x = np.random.default_rng(0).normal([1.0, -2.0, 5.0], [0.5, 3.0, 0.1], (16, 4, 4, 3))
    bias, logs = act_norm_statistics(tf.constant(x, tf.float32))
    want_bias, want_logs = _openai_init_float32(x)
    np.testing.assert_allclose(bias, want_bias, rtol=1e-6)
    np.testing.assert_allclose(logs, want_logs, rtol=1e-5)
    np.testing.assert_allclose(logs, -np.log(x.std(axis=(0, 1, 2))) / 3, rtol=1e-4)


def test_normalization_initialises_only_inside_the_context():
    layer = ActNormalization()
    layer.build((None, 2, 2, 4))
    x = tf.constant(np.random.default_rng(1).normal(3.0, 2.0, (8, 2, 2, 4)), tf.float32)
    np.testing.assert_array_equal(layer(x), x)
    with data_dependent_init():
        y = layer(x)
    np.testing.assert_allclose(tf.reduce_mean(y, [0, 1, 2]), 0.0, atol=1e-5)
    np.testing.assert_allclose(tf.math.reduce_std(y, [0, 1, 2]), 1.0, atol=1e-4)
    np.testing.assert_array_equal(layer.log_scale, 3.0 * layer.logs.numpy())
    np.testing.assert_array_equal(layer(x), y)  # outside the context: weights kept
