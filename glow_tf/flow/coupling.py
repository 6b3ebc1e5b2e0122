"""Coupling layers: the first half of the channels transforms the second half."""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras
import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector
from glow_tf.flow.intermediates import record
from glow_tf.nn.coupling_network import CouplingNetwork

__all__ = ["Coupling", "AdditiveCoupling", "AffineCoupling", "CouplingLayer", "COUPLING_BIJECTORS"]


class Coupling(GlowBijector):
    """Base of the couplings: x1 (the first half of the channels) passes
    unchanged and conditions, through one evaluation of `network(x1)`, an
    invertible transform of x2 (the second half):

        forward:  y = [x1, T_h(x2)],  h = network(x1)
        inverse:  x = [y1, T_h^-1(y2)],  h = network(y1)

    Subclasses implement `_transform(x2, h, inverse) -> (out, log_det)`.
    """

    def __init__(self, network: Callable, validate_args=False, parameters=None, name=None):
        self.network = network
        super().__init__(validate_args=validate_args, parameters=parameters, name=name)

    def _halves(self, x):
        channels = x.shape[-1]
        if channels is None or channels % 2:
            raise ValueError(f"{self.name} needs an even channel count, got shape {x.shape}")
        return x[..., : channels // 2], x[..., channels // 2 :]

    def _net(self, x1):
        h = tf.cast(self.network(x1), x1.dtype)
        record("network", h)
        return h

    def _forward_and_log_det(self, x):
        x1, x2 = self._halves(x)
        y2, log_det = self._transform(x2, self._net(x1), inverse=False)
        return tf.concat([x1, y2], axis=-1), log_det

    def _inverse_and_log_det(self, y):
        y1, y2 = self._halves(y)
        x2, log_det = self._transform(y2, self._net(y1), inverse=True)
        return tf.concat([y1, x2], axis=-1), log_det


class AdditiveCoupling(Coupling):
    """Additive (NICE) coupling, volume preserving.

    On an event [H, W, C] split as x = [x1, x2] along channels, with a network
    h = NN(x1) of C/2 output channels:

        forward:  y1 = x1,  y2 = x2 + h
        inverse:  x1 = y1,  x2 = y2 - NN(y1)
        log|det dy/dx| = 0

    References:
      Dinh et al. (2015), NICE, https://arxiv.org/abs/1410.8516
    """

    def __init__(self, network: Callable, validate_args=False, name="additive_coupling"):
        parameters = dict(locals())
        super().__init__(network, validate_args, parameters, name)

    def _transform(self, x2, h, inverse):
        if h.shape[-1] != x2.shape[-1]:
            raise ValueError(
                f"{self.name}: network gave {h.shape[-1]} channels, expected {x2.shape[-1]}"
            )
        zero = tf.zeros(tf.shape(x2)[:1], x2.dtype)
        return (x2 - h if inverse else x2 + h), zero


class AffineCoupling(Coupling):
    """Affine coupling with OpenAI's interleaved, sigmoid-bounded scale.

    On an event [H, W, C] split as x = [x1, x2] along channels, with a network
    h = NN(x1) of C output channels:

        shift = h[..., 0::2],  scale = sigmoid(h[..., 1::2] + 2)
        forward:  y1 = x1,  y2 = (x2 + shift) * scale
        inverse:  x1 = y1,  x2 = y2 / scale - shift
        log|det dy/dx| = sum(log(scale))

    References:
      Dinh et al. (2017), RealNVP, https://arxiv.org/abs/1605.08803
      Kingma & Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    def __init__(self, network: Callable, validate_args=False, name="affine_coupling"):
        parameters = dict(locals())
        super().__init__(network, validate_args, parameters, name)

    def _transform(self, x2, h, inverse):
        if h.shape[-1] != 2 * x2.shape[-1]:
            raise ValueError(
                f"{self.name}: network gave {h.shape[-1]} channels, expected "
                f"{2 * x2.shape[-1]}"
            )
        shift = h[..., 0::2]
        scale_logit = h[..., 1::2] + 2.0
        log_det = tf.reduce_sum(tf.math.log_sigmoid(scale_logit), axis=[1, 2, 3])
        scale = tf.sigmoid(scale_logit)
        if inverse:
            return x2 / scale - shift, -log_det
        return (x2 + shift) * scale, log_det


COUPLING_BIJECTORS = {"additive": AdditiveCoupling, "affine": AffineCoupling}


@keras.saving.register_keras_serializable(package="glow_tf")
class CouplingLayer(FlowLayer):
    """Owns the coupling network and builds an additive or affine coupling.

    Args:
      coupling: "affine" or "additive".
      hidden_channels: width of the network.
      network_dtype: dtype policy of the network ("float32", or
        "mixed_bfloat16" / "mixed_float16" for a network computing in half
        precision in training passes, in float32 in all others: see
        `CouplingNetwork`).
      seed: seed of the network's random initial kernels.
    """

    def __init__(
        self,
        coupling: str = "affine",
        hidden_channels: int = 512,
        network_dtype: str | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if coupling not in COUPLING_BIJECTORS:
            raise ValueError(
                f"unknown coupling {coupling!r}; expected one of {tuple(COUPLING_BIJECTORS)}"
            )
        self.coupling = coupling
        self.hidden_channels = hidden_channels
        self.network_dtype = network_dtype
        self.seed = seed
        self.network = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % 2:
            raise ValueError(f"a coupling needs an even channel count, got {channels}")
        half = channels // 2
        self.network = CouplingNetwork(
            self.hidden_channels,
            2 * half if self.coupling == "affine" else half,
            seed=self.seed,
            dtype=self.network_dtype or self.dtype_policy,
            name="network",
        )
        self.network.build(tuple(input_shape[:-1]) + (self.network_input_channels(half),))

    def network_input_channels(self, half: int) -> int:
        """Channels the network sees: the kept half (subclasses may add context)."""
        return half

    def bijector(self, training: bool = False) -> GlowBijector:
        return COUPLING_BIJECTORS[self.coupling](functools.partial(self.network, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "coupling": self.coupling,
            "hidden_channels": self.hidden_channels,
            "network_dtype": self.network_dtype,
            "seed": self.seed,
        }
