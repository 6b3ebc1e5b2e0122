"""ActNorm as a plain normalisation layer of the coupling networks, and its init."""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.nn.init_mode import data_dependent_init_active
from glow_tf.nn.log_scale import LOGSCALE_FACTOR, StoredAsLogs
from glow_tf.nn.precision import in_precision_of

__all__ = ["ActNormalization", "act_norm_statistics", "initialize_act_norm"]


def act_norm_statistics(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """OpenAI's data-dependent init of an ActNorm on x [..., C] (`actnorm_center`
    then `actnorm_scale`), per channel over every other axis:

        bias = -mean(x)
        logs = log(1 / (sqrt(mean((x + bias)^2)) + 1e-6)) / 3

    so that (x + bias) * exp(3 * logs) has zero mean and unit variance.
    Returns (bias, logs), each [C].
    """
    axes = list(range(x.shape.rank - 1))
    bias = -tf.reduce_mean(x, axes)
    variance = tf.reduce_mean(tf.square(x + bias), axes)
    # OpenAI stores logs = log_scale / 3
    logs = tf.math.log(1.0 / (tf.sqrt(variance) + 1e-6)) / LOGSCALE_FACTOR
    return bias, logs


def initialize_act_norm(layer: keras.layers.Layer, x: tf.Tensor) -> None:
    """Sets `layer.bias` and `layer.logs` to `act_norm_statistics(x)`; eager only."""
    if not tf.executing_eagerly():
        raise RuntimeError("data-dependent init must run eagerly (GlowModel.initialize does this)")
    bias, logs = act_norm_statistics(tf.cast(x, layer.variable_dtype))
    layer.bias.assign(bias)
    layer.logs.assign(logs)


@keras.saving.register_keras_serializable(package="glow_tf")
class ActNormalization(StoredAsLogs, keras.layers.Layer):
    """Per-channel affine normalisation without a log-det (OpenAI's `actnorm`
    inside the coupling networks), with `bias` and `logs` [C]:

        y = (x + bias) * exp(log_scale),   log_scale = 3 * logs

    Inside `data_dependent_init()` an eager call first sets bias and logs
    from its input (`act_norm_statistics`).
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        self.bias = self.add_weight(
            shape=(channels,), initializer="zeros", name="bias", autocast=False
        )
        self.add_logs_weight(channels)

    def call(self, inputs):
        if data_dependent_init_active():
            initialize_act_norm(self, inputs)
        bias, log_scale = in_precision_of(inputs, self.bias, self.log_scale)
        return (inputs + bias) * tf.exp(log_scale)
