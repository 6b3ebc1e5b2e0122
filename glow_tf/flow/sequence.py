"""FlowSequence: bijectors applied one after another, in one pass."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from glow_tf.flow.base import GlowBijector
from glow_tf.flow.intermediates import forward_member

__all__ = ["FlowSequence"]


class FlowSequence(GlowBijector):
    """Composition in data-flow order (unlike `tfb.Chain`, which lists the
    last-applied bijector first):

        forward:  y = f_n(... f_2(f_1(x)))
        inverse:  x = f_1^-1(... f_n^-1(y))
        log|det dy/dx| = sum_k log|det df_k/dx_k|

    Each member's transform and log-det come from one evaluation
    (`forward_and_log_det`), so networks inside run once per pass.

    Args:
      bijectors: the members, in data-flow order.
      names: the members' names for `recording_intermediates` (default: each
        bijector's own name).
    """

    def __init__(
        self,
        bijectors: Sequence[GlowBijector],
        names: Sequence[str] | None = None,
        validate_args=False,
        name="flow_sequence",
        parameters=None,
    ):
        if parameters is None:
            parameters = dict(locals())
            del parameters["parameters"]
        self.bijectors = list(bijectors)
        if not self.bijectors:
            raise ValueError("FlowSequence needs at least one bijector")
        self.names = [b.name for b in self.bijectors] if names is None else list(names)
        if len(self.names) != len(self.bijectors):
            raise ValueError(f"{len(self.bijectors)} bijectors but {len(self.names)} names")
        super().__init__(
            forward_min_event_ndims=self.bijectors[0].forward_min_event_ndims,
            inverse_min_event_ndims=self.bijectors[-1].inverse_min_event_ndims,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    def _forward_and_log_det(self, x):
        total = tf.zeros(tf.shape(x)[:1], x.dtype)
        for bijector, name in zip(self.bijectors, self.names):
            x, log_det = forward_member(bijector, x, name)
            total += log_det
        return x, total

    def _inverse_and_log_det(self, y):
        total = tf.zeros(tf.shape(y)[:1], y.dtype)
        for bijector in reversed(self.bijectors):
            y, log_det = bijector.inverse_and_log_det(y)
            total += log_det
        return y, total

    def _forward_event_shape(self, input_shape):
        for bijector in self.bijectors:
            input_shape = bijector.forward_event_shape(input_shape)
        return input_shape

    def _inverse_event_shape(self, output_shape):
        for bijector in reversed(self.bijectors):
            output_shape = bijector.inverse_event_shape(output_shape)
        return output_shape

    def _forward_event_shape_tensor(self, input_shape):
        for bijector in self.bijectors:
            input_shape = bijector.forward_event_shape_tensor(input_shape)
        return input_shape

    def _inverse_event_shape_tensor(self, output_shape):
        for bijector in reversed(self.bijectors):
            output_shape = bijector.inverse_event_shape_tensor(output_shape)
        return output_shape
