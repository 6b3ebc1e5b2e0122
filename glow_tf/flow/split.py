"""Split: standardise half of the channels under a prior conditioned on the rest."""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras

from glow_tf.flow.base import FlowLayer
from glow_tf.flow.coupling import Coupling
from glow_tf.flow.standardize import Standardize
from glow_tf.nn.conv import ZeroConv2D

__all__ = ["Split", "SplitLayer"]


class Split(Coupling):
    """Conditional Gaussian standardisation of the second half of the channels.

    On an event [H, W, C] split as z = [z1, z2] along channels, with a network
    h = NN(z1) of C output channels read interleaved (OpenAI's `split2d`):

        mean = h[..., 0::2],  log_scale = h[..., 1::2]
        forward:  y1 = z1,  y2 = eps = (z2 - mean) * exp(-log_scale)
        inverse:  z1 = y1,  z2 = mean + exp(log_scale) * eps
        log|det dy/dz| = -sum(log_scale)

    A multi-scale flow factors out y2 as this level's latent eps; the log-det
    plus log N(eps; 0, 1) is the split prior's log p(z2 | z1).
    """

    def __init__(self, network: Callable, validate_args=False, name="split"):
        parameters = dict(locals())
        super().__init__(network, validate_args, parameters, name)

    def _transform(self, z2, h, inverse):
        if h.shape[-1] != 2 * z2.shape[-1]:
            raise ValueError(
                f"{self.name}: network gave {h.shape[-1]} channels, expected {2 * z2.shape[-1]}"
            )
        standardize = Standardize(h[..., 0::2], h[..., 1::2])
        if inverse:
            return standardize.inverse_and_log_det(z2)
        return standardize.forward_and_log_det(z2)


@keras.saving.register_keras_serializable(package="glow_tf")
class SplitLayer(FlowLayer):
    """Owns the split prior's zero-initialised 3x3 conv (OpenAI's `pool{i}/conv`)."""

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % 2:
            raise ValueError(f"a split needs an even channel count, got {channels}")
        self.prior_network = ZeroConv2D(channels, 3, dtype=self.dtype_policy, name="prior_network")
        self.prior_network.build(tuple(input_shape[:-1]) + (channels // 2,))

    def bijector(self, training: bool = False) -> Split:
        return Split(functools.partial(self.prior_network, training=training))
