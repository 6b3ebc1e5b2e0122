"""RealNVP's masked coupling: checkerboard or channel masks, affine or additive."""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras
import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector
from glow_tf.flow.coupling_mask import CouplingMask
from glow_tf.flow.intermediates import record
from glow_tf.nn.realnvp_resnet import RealNVPResNet

__all__ = ["MaskedCoupling", "MaskedCouplingLayer", "MASKED_COUPLINGS"]

MASKED_COUPLINGS = ("affine", "additive")


class MaskedCoupling(GlowBijector):
    """A RealNVP coupling (the official code's `masked_conv_aff_coupling` /
    `conv_ch_aff_coupling` and their additive versions).

    With a keep-mask b (`CouplingMask`), t the transformed part of x (x
    itself for a checkerboard mask, the other half of the channels for a
    channel mask), w = 1 - b on t (checkerboard) or 1 (channel), and one
    evaluation of the network on the kept part, h = NN(kept(x)):

        affine:    shift = h[..., :C'],  r = h[..., C':]   (C' = channels of t)
                   log_s = a * tanh(r) (+ c)                (a: learned scalar;
                                                             c: `scale_shift`)
                   shift, log_s = w * shift, w * log_s
                   forward:  t' = (t + shift) * exp(log_s)   (shift first, then scale)
                   inverse:  t = t' * exp(-log_s) - shift
                   log|det dy/dx| = sum(log_s)
        additive:  shift = w * h;  t' = t + shift;  log|det| = 0

    and y = x with t replaced by t' (the kept part passes unchanged, so the
    inverse sees the same network input).

    Args:
      network: callable, kept part (`mask.conditioner(x)`) -> h.
      mask: the `CouplingMask`.
      coupling: "affine" or "additive".
      log_scale_factor: a (affine), a scalar tensor.
      log_scale_shift: c, a scalar tensor, or None (with batch norm).

    References:
      Dinh et al. (2017), RealNVP, https://arxiv.org/abs/1605.08803
    """

    def __init__(
        self,
        network: Callable,
        mask: CouplingMask,
        coupling: str = "affine",
        log_scale_factor=None,
        log_scale_shift=None,
        validate_args: bool = False,
        name: str = "masked_coupling",
    ):
        parameters = dict(locals())
        if coupling not in MASKED_COUPLINGS:
            raise ValueError(f"unknown coupling {coupling!r}; expected one of {MASKED_COUPLINGS}")
        if coupling == "affine" and log_scale_factor is None:
            raise ValueError("an affine masked coupling needs log_scale_factor")
        self.network = network
        self.mask = mask
        self.coupling = coupling
        self.log_scale_factor = log_scale_factor
        self.log_scale_shift = log_scale_shift
        super().__init__(validate_args=validate_args, parameters=parameters, name=name)

    def _shift_and_log_scale(self, x, t):
        h = tf.cast(self.network(self.mask.conditioner(x)), x.dtype)
        record("network", h)
        channels = t.shape[-1]
        expected = 2 * channels if self.coupling == "affine" else channels
        if h.shape[-1] != expected:
            raise ValueError(f"{self.name}: network gave {h.shape[-1]} channels, expected {expected}")
        weight = self.mask.weight(t)
        if self.coupling == "additive":
            shift, log_scale = h, None
        else:
            shift = h[..., :channels]
            factor = tf.cast(self.log_scale_factor, x.dtype)
            log_scale = factor * tf.tanh(h[..., channels:])
            if self.log_scale_shift is not None:
                log_scale = log_scale + tf.cast(self.log_scale_shift, x.dtype)
            if weight is not None:
                log_scale = log_scale * weight
        if weight is not None:
            shift = shift * weight
        return shift, log_scale

    def _log_det(self, t, log_scale):
        if log_scale is None:
            record("log_det_map", tf.zeros_like(t))
            return tf.zeros(tf.shape(t)[:1], t.dtype)
        record("log_det_map", log_scale)
        return tf.reduce_sum(log_scale, axis=[1, 2, 3])

    def _forward_and_log_det(self, x):
        self.mask.check(x, self.name)
        t = self.mask.transformed(x)
        shift, log_scale = self._shift_and_log_scale(x, t)
        t = t + shift
        if log_scale is not None:
            t = t * tf.exp(log_scale)
        return self.mask.combine(x, t), self._log_det(t, log_scale)

    def _inverse_and_log_det(self, y):
        self.mask.check(y, self.name)
        t = self.mask.transformed(y)
        shift, log_scale = self._shift_and_log_scale(y, t)
        if log_scale is not None:
            t = t * tf.exp(-log_scale)
        t = t - shift
        return self.mask.combine(y, t), -self._log_det(t, log_scale)


@keras.saving.register_keras_serializable(package="glow_tf")
class MaskedCouplingLayer(FlowLayer):
    """Owns a RealNVP coupling's network (`RealNVPResNet`) and its log-scale
    scalars, and builds a `MaskedCoupling`.

    Weights: the network; for affine couplings the scalar a (official
    `rescaling_scale`, initialised to 0, in checkerboard couplings; `scale`,
    initialised to 1, in channel couplings) and, without batch norm, the
    scalar c (official `scale_shift`, initialised to 0).

    Args:
      mask: a `CouplingMask` or its dict.
      coupling: "affine" or "additive".
      hidden_channels: width of the network.
      num_blocks: residual blocks of the network.
      skip: skip connections in the network.
      batch_norm: batch norms in the network (and no `scale_shift`).
      l2_penalty: coefficient of the L2 regulariser on the network's
        magnitudes and on a of checkerboard couplings (the official penalty,
        see `RealNVPConfig.l2_penalty`); 0 for none.
      seed: seed of the network's random initial kernels.
    """

    def __init__(
        self,
        mask: CouplingMask | dict | None = None,
        coupling: str = "affine",
        hidden_channels: int = 64,
        num_blocks: int = 1,
        skip: bool = True,
        batch_norm: bool = True,
        l2_penalty: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mask is None:
            mask = CouplingMask()
        self.mask = CouplingMask(**mask) if isinstance(mask, dict) else mask
        if coupling not in MASKED_COUPLINGS:
            raise ValueError(f"unknown coupling {coupling!r}; expected one of {MASKED_COUPLINGS}")
        self.coupling = coupling
        self.hidden_channels = int(hidden_channels)
        self.num_blocks = int(num_blocks)
        self.skip = bool(skip)
        self.batch_norm = bool(batch_norm)
        self.l2_penalty = float(l2_penalty)
        self.seed = seed
        self.network = None

    def _regularizer(self):
        return keras.regularizers.L2(self.l2_penalty) if self.l2_penalty > 0 else None

    def build(self, input_shape):
        shape = tuple(input_shape[1:])
        if len(shape) != 3 or None in shape:
            raise ValueError(f"a masked coupling needs a static [H, W, C] event, got {input_shape}")
        channels = shape[-1]
        if not self.mask.checkerboard and channels % 2:
            raise ValueError(f"a channel mask needs an even channel count, got {channels}")
        transformed = self.mask.transformed_shape(shape)[-1]
        self.network = RealNVPResNet(
            self.hidden_channels,
            2 * transformed if self.coupling == "affine" else transformed,
            num_blocks=self.num_blocks,
            skip=self.skip,
            batch_norm=self.batch_norm,
            mask_channel=self.mask.checkerboard,
            input_scale=2.0 if self.mask.checkerboard else 1.0,
            magnitude_regularizer=self._regularizer(),
            seed=self.seed,
            dtype=self.dtype_policy,
            name="network",
        )
        self.network.build((None, *shape[:2], self.mask.conditioner_channels(channels)))
        self.log_scale_factor = self.log_scale_shift = None
        if self.coupling == "affine":
            self.log_scale_factor = self.add_weight(
                shape=(),
                initializer="zeros" if self.mask.checkerboard else "ones",
                regularizer=self._regularizer() if self.mask.checkerboard else None,
                name="log_scale_factor",
            )
            if not self.batch_norm:
                self.log_scale_shift = self.add_weight(
                    shape=(), initializer="zeros", name="log_scale_shift"
                )

    def bijector(self, training: bool = False) -> MaskedCoupling:
        def scalar(weight):
            return None if weight is None else tf.cast(weight, self.compute_dtype)

        return MaskedCoupling(
            functools.partial(self.network, training=training),
            self.mask,
            self.coupling,
            scalar(self.log_scale_factor),
            scalar(self.log_scale_shift),
            name=self.name,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "mask": self.mask.to_dict(),
            "coupling": self.coupling,
            "hidden_channels": self.hidden_channels,
            "num_blocks": self.num_blocks,
            "skip": self.skip,
            "batch_norm": self.batch_norm,
            "l2_penalty": self.l2_penalty,
            "seed": self.seed,
        }
