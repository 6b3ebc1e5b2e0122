"""Batch normalisation as a flow layer (RealNVP's `bn_out`), with its log-det."""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector
from glow_tf.flow.coupling_mask import CouplingMask
from glow_tf.flow.intermediates import record

__all__ = ["FlowBatchNorm", "FlowBatchNormLayer", "batch_moments"]

EPSILON = 1e-4
MOMENTUM = 0.9


def batch_moments(t: tf.Tensor, weight: tf.Tensor | None = None):
    """Mean and (biased) variance per channel over (batch, H, W) of t * weight,
    over the global batch: under a `tf.distribute` strategy the sums are
    all-reduced across replicas (`keras.ops.moments(synchronized=True)`)."""
    values = t if weight is None else t * weight
    return keras.ops.moments(values, axes=[0, 1, 2], synchronized=True)


class FlowBatchNorm(GlowBijector):
    """Normalisation of a coupling's transformed part with fixed statistics.

    With a `CouplingMask`, t the transformed part of x (see `MaskedCoupling`),
    w = 1 - b on t for checkerboard masks (else 1), `mean` and `variance` of
    t's channels [C'] and eps = 1e-4:

        forward:  t' = (t - mean) / sqrt(variance + eps)  where w = 1 (t elsewhere)
        inverse:  t = t' * sqrt(variance + eps) + mean    where w = 1
        log|det dy/dx| = -0.5 * sum over transformed elements of log(variance + eps)

    `FlowBatchNormLayer` builds it from the batch moments in training (the
    moments of t * w, as the official code computes them) and from its moving
    averages otherwise.

    References:
      Dinh et al. (2017), RealNVP, https://arxiv.org/abs/1605.08803 (3.7)
      Ioffe & Szegedy (2015), https://arxiv.org/abs/1502.03167
    """

    def __init__(
        self,
        mean,
        variance,
        mask: CouplingMask,
        epsilon: float = EPSILON,
        validate_args: bool = False,
        name: str = "flow_batch_norm",
    ):
        parameters = dict(locals())
        self.mean = tf.convert_to_tensor(mean)
        self.variance = tf.convert_to_tensor(variance, dtype=self.mean.dtype)
        self.mask = mask
        self.epsilon = float(epsilon)
        super().__init__(
            dtype=self.mean.dtype, validate_args=validate_args, parameters=parameters, name=name
        )

    def _log_det_map(self, t):
        log_scale = -0.5 * tf.math.log(self.variance + self.epsilon)
        log_det_map = tf.broadcast_to(log_scale, tf.shape(t))
        weight = self.mask.weight(t)
        if weight is not None:
            log_det_map = log_det_map * weight
        record("log_det_map", log_det_map)
        return tf.reduce_sum(log_det_map, axis=[1, 2, 3])

    def _check(self, x):
        self.mask.check(x, self.name)
        channels = self.mask.transformed_shape(x.shape[1:])[-1]
        if self.mean.shape[-1] != channels:
            raise ValueError(
                f"{self.name}: statistics of {self.mean.shape[-1]} channels for a transformed "
                f"part of {channels}, input shape {x.shape}"
            )

    def _forward_and_log_det(self, x):
        self._check(x)
        t = self.mask.transformed(x)
        t = (t - self.mean) * tf.math.rsqrt(self.variance + self.epsilon)
        return self.mask.combine(x, t), self._log_det(t)

    def _inverse_and_log_det(self, y):
        self._check(y)
        t = self.mask.transformed(y)
        t = t * tf.sqrt(self.variance + self.epsilon) + self.mean
        return self.mask.combine(y, t), -self._log_det(t)

    def _log_det(self, t):
        return self._log_det_map(t)


@keras.saving.register_keras_serializable(package="glow_tf")
class FlowBatchNormLayer(FlowLayer):
    """Owns the moving averages of a `FlowBatchNorm` (official `bn_out/mean`,
    `bn_out/var`; no learned gain or bias).

    In training, `call` normalises with the moments of the current batch (the
    global batch under a distribution strategy) and updates

        moving = 0.9 * moving + 0.1 * batch        (mean and biased variance)

    as the official code does on every training-mode pass; the log-det then
    uses the batch variance. Otherwise, and always when inverting (decoding),
    it uses the moving averages.

    Args:
      mask: the `CouplingMask` of the coupling it follows (or its dict).
    """

    def __init__(self, mask: CouplingMask | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if mask is None:
            mask = CouplingMask()
        self.mask = CouplingMask(**mask) if isinstance(mask, dict) else mask

    def build(self, input_shape):
        shape = tuple(input_shape[1:])
        if len(shape) != 3 or None in shape:
            raise ValueError(f"a flow batch norm needs a static [H, W, C] event, got {input_shape}")
        channels = self.mask.transformed_shape(shape)[-1]
        self.moving_mean = self.add_weight(
            shape=(channels,), initializer="zeros", trainable=False, name="moving_mean"
        )
        self.moving_variance = self.add_weight(
            shape=(channels,), initializer="ones", trainable=False, name="moving_variance"
        )

    def bijector(self, training: bool = False) -> FlowBatchNorm:
        return FlowBatchNorm(
            tf.cast(self.moving_mean, self.compute_dtype),
            tf.cast(self.moving_variance, self.compute_dtype),
            self.mask,
            name=self.name,
        )

    def call_has_side_effects(self, training: bool = False) -> bool:
        return bool(training)

    def call(self, inputs, inverse: bool = False, training=None):
        if not training or inverse:
            return super().call(inputs, inverse=inverse, training=training)
        t = self.mask.transformed(inputs)
        mean, variance = batch_moments(t, self.mask.weight(t))
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(MOMENTUM * moving + (1.0 - MOMENTUM) * tf.cast(batch, moving.dtype))
        return FlowBatchNorm(mean, variance, self.mask, name=self.name).forward_and_log_det(inputs)

    def get_config(self):
        return {**super().get_config(), "mask": self.mask.to_dict()}
