"""RealNVP's data-constraint logit: pixels in [0, 1) to the real line."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector

__all__ = ["DataConstraintLogit", "DataConstraintLogitLayer", "official_postprocess"]


class DataConstraintLogit(GlowBijector):
    """y = logit(p), p = (1 - alpha) / 2 + alpha * (x + offset), elementwise.

    The official RealNVP code feeds x_in = (pixel + u) / 256 in [0, 1) to
    this logit with alpha = `data_constraint` (0.9), so p lies in
    [0.05, 0.95). FlowModel's flow input is x = x_in - 0.5 in [-0.5, 0.5),
    hence `offset` = 0.5 (the shift has unit Jacobian, so log-densities of
    x and x_in agree). On an event of any shape:

        forward:  p = (1 - alpha) / 2 + alpha * (x + offset),  y = log p - log(1 - p)
        inverse:  x = (sigmoid(y) - (1 - alpha) / 2) / alpha - offset
        log|det dy/dx| = sum(log alpha - log p - log(1 - p))

    The inverse undoes the constraint exactly; the official sampler does not
    (see `official_postprocess`).

    Args:
      alpha: the data constraint, in (0, 1].
      offset: added to x before the constraint (0.5 for FlowModel's x).

    References:
      Dinh et al. (2017), RealNVP, https://arxiv.org/abs/1605.08803 (4.1)
    """

    def __init__(
        self,
        alpha: float = 0.9,
        offset: float = 0.5,
        validate_args: bool = False,
        name: str = "data_constraint_logit",
    ):
        parameters = dict(locals())
        self.alpha = _check_alpha(alpha)
        self.offset = float(offset)
        super().__init__(validate_args=validate_args, parameters=parameters, name=name)

    def _log_det(self, log_p, log_1mp, x):
        log_alpha = tf.constant(math.log(self.alpha), x.dtype)
        return tf.reduce_sum(
            log_alpha - log_p - log_1mp, axis=tf.range(1, tf.rank(x))
        )

    def _forward_and_log_det(self, x):
        p = (1.0 - self.alpha) / 2 + self.alpha * (x + self.offset)
        log_p, log_1mp = tf.math.log(p), tf.math.log(1.0 - p)
        return log_p - log_1mp, self._log_det(log_p, log_1mp, x)

    def _inverse_and_log_det(self, y):
        log_p, log_1mp = tf.math.log_sigmoid(y), tf.math.log_sigmoid(-y)
        x = (tf.sigmoid(y) - (1.0 - self.alpha) / 2) / self.alpha - self.offset
        return x, -self._log_det(log_p, log_1mp, y)


def official_postprocess(logits: tf.Tensor) -> tf.Tensor:
    """The official RealNVP sampler's images from the flow's logit-space output y:

        uint8(clip(sigmoid(y), 0, 1) * 255)     (a truncating cast)

    It does not undo the data constraint: sigmoid(y) = 0.05 + 0.9 x_in, so
    official samples are slightly low in contrast. `FlowModel.decode` undoes
    the constraint exactly instead (`DataConstraintLogit`'s inverse).
    """
    probability = tf.clip_by_value(tf.sigmoid(tf.cast(logits, tf.float32)), 0.0, 1.0)
    return tf.cast(probability * 255.0, tf.uint8)


@keras.saving.register_keras_serializable(package="glow_tf")
class DataConstraintLogitLayer(FlowLayer):
    """Keras layer for `DataConstraintLogit` (no weights).

    Args:
      alpha: the data constraint (official `data_constraint`, 0.9).
      offset: added to the input first (0.5: FlowModel's x in [-0.5, 0.5)).
    """

    def __init__(self, alpha: float = 0.9, offset: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _check_alpha(alpha)
        self.offset = float(offset)

    def bijector(self, training: bool = False) -> DataConstraintLogit:
        return DataConstraintLogit(self.alpha, self.offset, name=self.name)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "offset": self.offset}


def _check_alpha(alpha) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"the data constraint alpha must lie in (0, 1], got {alpha}")
    return alpha
