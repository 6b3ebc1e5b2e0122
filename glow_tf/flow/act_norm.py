"""ActNorm: per-channel affine normalisation with data-dependent init."""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector, ScopedFlag, constant_log_det

__all__ = ["ActNorm", "ActNormLayer", "data_dependent_init", "data_dependent_init_active"]

_DATA_DEPENDENT_INIT = ScopedFlag()


def data_dependent_init():
    """Within this context, every `ActNormLayer` called eagerly sets its
    weights from the statistics of its input before transforming it.

    `GlowModel.initialize(batch)` is the public way in; it runs one eager
    forward pass inside this context, so each layer is initialised on the
    activations produced by the already initialised layers below it.
    """
    return _DATA_DEPENDENT_INIT.enabled()


def data_dependent_init_active() -> bool:
    return _DATA_DEPENDENT_INIT.active


class ActNorm(GlowBijector):
    """Per-channel shift then scale, on channels-last activations.

    With `bias` and `log_scale` of shape [C], on an event [H, W, C]:

        forward:  y = (x + bias) * exp(log_scale)
        inverse:  x = y * exp(-log_scale) - bias
        log|det dy/dx| = H * W * sum(log_scale)

    Args:
      bias: [C].
      log_scale: [C].

    References:
      Kingma & Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    def __init__(
        self,
        bias,
        log_scale,
        validate_args: bool = False,
        name: str = "act_norm",
    ):
        parameters = dict(locals())
        self.bias = tf.convert_to_tensor(bias)
        self.log_scale = tf.convert_to_tensor(log_scale, dtype=self.bias.dtype)
        super().__init__(
            dtype=self.bias.dtype,
            is_constant_jacobian=True,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    def _check_channels(self, x):
        channels = self.bias.shape[-1]
        if x.shape[-1] is not None and channels is not None and x.shape[-1] != channels:
            raise ValueError(
                f"{self.name}: expected {channels} channels, got shape {x.shape}"
            )

    def _log_det(self, x):
        pixels = x.shape[1] * x.shape[2]
        return constant_log_det(tf.reduce_sum(self.log_scale) * pixels, x)

    def _forward_and_log_det(self, x):
        self._check_channels(x)
        return (x + self.bias) * tf.exp(self.log_scale), self._log_det(x)

    def _inverse_and_log_det(self, y):
        self._check_channels(y)
        return y * tf.exp(-self.log_scale) - self.bias, -self._log_det(y)


@keras.saving.register_keras_serializable(package="glow_tf")
class ActNormLayer(FlowLayer):
    """Owns ActNorm's `bias` and `log_scale` [C]; initialised from data.

    Inside `data_dependent_init()` every eager forward call first sets

        bias = -mean(x),  log_scale = -log(std(x + bias) + 1e-6)

    per channel over batch and space (OpenAI's init: zero mean and unit
    variance on that batch), then transforms with the new values.

    Also usable as a plain normalisation layer (`normalize(x)`), as in the
    coupling networks.
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")
        self.log_scale = self.add_weight(
            shape=(channels,), initializer="zeros", name="log_scale"
        )

    def bijector(self, training: bool = False) -> ActNorm:
        return ActNorm(
            tf.cast(self.bias, self.compute_dtype), tf.cast(self.log_scale, self.compute_dtype)
        )

    def call_has_side_effects(self, training: bool = False) -> bool:
        return data_dependent_init_active()

    def call(self, inputs, inverse: bool = False, training=None):
        if data_dependent_init_active() and not inverse:
            self.initialize_from(inputs)
        return super().call(inputs, inverse=inverse, training=training)

    def normalize(self, inputs):
        """`(x + bias) * exp(log_scale)` without the log-det."""
        return self(inputs)[0]

    def initialize_from(self, inputs):
        """Sets bias and log_scale from `inputs`."""
        if not tf.executing_eagerly():
            raise RuntimeError(
                "data-dependent init must run eagerly (GlowModel.initialize does this)"
            )
        inputs = tf.cast(inputs, self.variable_dtype)
        axes = list(range(inputs.shape.rank - 1))
        mean = tf.reduce_mean(inputs, axes)
        std = tf.sqrt(tf.reduce_mean(tf.square(inputs - mean), axes))
        self.bias.assign(-mean)
        self.log_scale.assign(-tf.math.log(std + 1e-6))
