"""glow_tf.prior.check_temperature: the one check of the sampling temperature."""

from __future__ import annotations

import math

import pytest
import tensorflow as tf

from glow_tf.prior import check_temperature


def test_temperatures_from_zero_up_pass_as_float32_scalars():
    for value in (0, 0.7, 1.0, tf.constant(2.0, tf.float64)):
        temperature = check_temperature(value)
        assert temperature.dtype == tf.float32 and temperature.shape == []


@pytest.mark.parametrize("value", [-0.5, math.nan, math.inf])
def test_negative_or_non_finite_temperatures_fail_eagerly_and_in_graphs(value):
    with pytest.raises(ValueError, match="temperature must be >= 0 and finite"):
        check_temperature(value)
    graph_check = tf.function(check_temperature, input_signature=[tf.TensorSpec([], tf.float32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be >= 0 and finite"):
        graph_check(tf.constant(value, tf.float32))


def test_a_temperature_per_example_is_refused():
    with pytest.raises(ValueError, match="must be a scalar"):
        check_temperature([0.5, 0.7])
