"""Conditional coupling: the coupling network also sees a context tensor."""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.flow.base import GlowBijector
from glow_tf.flow.coupling import COUPLING_BIJECTORS, CouplingLayer

__all__ = ["ConditionalCouplingLayer"]


@keras.saving.register_keras_serializable(package="glow_tf")
class ConditionalCouplingLayer(CouplingLayer):
    """A coupling (`AffineCoupling` or `AdditiveCoupling`) whose network sees,
    next to the first half of the channels, a context c [B, H, W, C_c] of the
    same spatial size (e.g. the discrete image, for variational dequantisation):

        h = network(concat([x1, c], channels))
        forward:  y = [x1, T_h(x2)]
        inverse:  x = [y1, T_h^-1(y2)],  h = network(concat([y1, c]))
        log|det dy/dx| = that of T_h (the context is not transformed)

    The bijector is built for one context: `bijector(training, context=c)`;
    a context of batch 1 (or without a batch axis) serves every input batch.

    Args:
      context_channels: C_c, channels of the context.
      coupling, hidden_channels, network_dtype, seed: as `CouplingLayer`.
    """

    def __init__(self, context_channels: int, coupling: str = "affine", **kwargs):
        super().__init__(coupling, **kwargs)
        if not isinstance(context_channels, int) or context_channels < 1:
            raise ValueError(f"context_channels must be a positive int, got {context_channels!r}")
        self.context_channels = context_channels

    def network_input_channels(self, half: int) -> int:
        return half + self.context_channels

    def bijector(self, training: bool = False, context=None) -> GlowBijector:
        if context is None:
            raise ValueError(f"{self.name} is conditional: pass its context")
        context = tf.convert_to_tensor(context)
        if context.shape[-1] != self.context_channels:
            raise ValueError(
                f"{self.name} expects a context of {self.context_channels} channels, got "
                f"shape {context.shape}"
            )
        network, context_channels = self.network, self.context_channels

        def conditioned_network(x1):
            shape = tf.concat([tf.shape(x1)[:-1], [context_channels]], 0)
            inputs = tf.concat([x1, tf.broadcast_to(tf.cast(context, x1.dtype), shape)], axis=-1)
            inputs.set_shape(x1.shape[:-1].concatenate([x1.shape[-1] + context_channels]))
            return network(inputs, training=training)

        return COUPLING_BIJECTORS[self.coupling](conditioned_network)

    def call(self, inputs, inverse: bool = False, training=None, context=None):
        bijector = self.bijector(training=bool(training), context=context)
        if inverse:
            return bijector.inverse_and_log_det(inputs)
        return bijector.forward_and_log_det(inputs)

    def get_config(self):
        return {**super().get_config(), "context_channels": self.context_channels}
