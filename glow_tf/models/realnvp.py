"""RealNVPModel: the official RealNVP architecture on the shared `FlowModel`."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from glow_tf.config import RealNVPConfig
from glow_tf.flow.coupling_mask import CouplingMask
from glow_tf.flow.data_constraint import DataConstraintLogitLayer, official_postprocess
from glow_tf.flow.level import Level, LevelLayer
from glow_tf.flow.multiscale import MultiScaleFlow, unflatten_latents
from glow_tf.flow.realnvp_coupling import RealNVPCouplingLayer
from glow_tf.flow.squeeze import SqueezeLayer
from glow_tf.models.flow_model import FlowModel
from glow_tf.seeds import seed_stream

__all__ = ["RealNVPModel", "realnvp_level", "official_postprocess"]

# The official coupling layers of a scale: name -> (mask, always affine).
# Checkerboard parity m: keep (m + i + j) mod 2; channel masks keep a half.
_CHECKERBOARD = {
    "coupling_0": (CouplingMask("checkerboard", parity=1), False),
    "coupling_1": (CouplingMask("checkerboard", parity=0), False),
    "coupling_2": (CouplingMask("checkerboard", parity=1), True),
    "coupling_3": (CouplingMask("checkerboard", parity=0), True),
}
_CHANNEL = {
    "coupling_4": (CouplingMask("channel", keep="first"), False),
    "coupling_5": (CouplingMask("channel", keep="second"), False),
    "coupling_6": (CouplingMask("channel", keep="first"), True),
}


def l2_penalty(config: RealNVPConfig) -> float:
    """The official `l2_coeff` (on a loss in nats) as a coefficient on the
    bits/dim loss: l2_coeff / (D log 2), so that the objective is the
    official one divided by D log 2."""
    return config.l2_coeff / (config.num_dims * math.log(2.0))


def realnvp_level(config: RealNVPConfig, index: int, seed: int | None, dtype=None) -> LevelLayer:
    """Scale `index` of the official RealNVP (`recursion_type` 2):

        scale 0 only:  the data-constraint logit (preprocessing)
        not last:      coupling_0, 1, 2 (checkerboard); squeeze (channel-major);
                       coupling_4, 5, 6 (channel); unsqueeze; squeeze
                       (diagonal-first), factoring out the last half of the
                       channels (the off-diagonal pixels)
        last:          coupling_0 .. coupling_3 (checkerboard)

    Every coupling is a `RealNVPCouplingLayer` named as in the official code.
    """
    last = index == config.num_levels - 1
    seeds = seed_stream(seed, "realnvp_level")
    width = config.hidden_channels * 2**index

    def coupling(name, mask, always_affine, hidden):
        return RealNVPCouplingLayer(
            mask,
            "affine" if always_affine else config.coupling,
            hidden,
            num_blocks=config.num_blocks,
            skip=config.skip,
            batch_norm=config.batch_norm,
            l2_penalty=l2_penalty(config),
            seed=seeds(),
            dtype=dtype,
            name=name,
        )

    steps = []
    if index == 0:
        steps.append(
            DataConstraintLogitLayer(config.data_constraint, dtype=dtype, name="preprocess")
        )
    if last:
        steps += [coupling(name, *spec, width) for name, spec in _CHECKERBOARD.items()]
    else:
        steps += [
            coupling(name, *spec, width) for name, spec in list(_CHECKERBOARD.items())[:3]
        ]
        steps.append(SqueezeLayer(dtype=dtype, name="squeeze"))
        steps += [coupling(name, *spec, 2 * width) for name, spec in _CHANNEL.items()]
        steps.append(SqueezeLayer(unsqueeze=True, dtype=dtype, name="unsqueeze"))
        steps.append(SqueezeLayer(order="diagonal_first", dtype=dtype, name="factor_squeeze"))
    return LevelLayer(
        steps, factor_out=0.0 if last else 0.5, dtype=dtype, name=f"scale_{index}"
    )


@keras.saving.register_keras_serializable(package="glow_tf")
class RealNVPModel(FlowModel):
    """RealNVP (Dinh, Sohl-Dickstein & Bengio, 2017) as the official
    TensorFlow code builds it, on channels-last images.

    Data flow (encode):

        x in [-0.5, 0.5) (FlowModel's dequantised input; the official
          x_in = (pixel + u) / 256 is x + 0.5)
        -> logit(0.05 + 0.9 x_in)               (`DataConstraintLogit`)
        -> scales 0 .. L-1 (`realnvp_level`), each factoring out half of its
           channels; the last scale's output is the top latent
        log p(x) = log N(latents; 0, I) + log|det|

    so bits/dim = (cost + D log 256) / (D log 2) with the official per-image
    cost, the official `bit_per_dim`. Latents are per scale (official z in
    image layout = the diagonal-first unsqueezes of them, see
    `glow_tf.porting.realnvp_check`). The loss adds the official L2 penalty
    (Keras regularisers on every `magnitude` and checkerboard rescaling
    scale). Batch norms use batch moments in training and moving averages
    otherwise; decoding always uses moving averages (the exact inverse of
    the evaluation-mode encoder).

    There is no data-dependent initialisation: a new model is ready to `fit`.

    Args:
      config: a `RealNVPConfig` (or its dict).

    References:
      Dinh et al. (2017), RealNVP, https://arxiv.org/abs/1605.08803
      https://github.com/tensorflow/models/tree/master/research/real_nvp
    """

    config_class = RealNVPConfig

    @classmethod
    def make_levels(cls, config: RealNVPConfig, dtype=None) -> list[LevelLayer]:
        seeds = seed_stream(config.seed, "realnvp")
        return [realnvp_level(config, i, seeds(), dtype=dtype) for i in range(config.num_levels)]

    def build(self, input_shape=None):
        if self.built:
            return
        super().build(input_shape)
        self.initialized.assign(1)  # nothing is initialised from data

    def logit_flow(self) -> MultiScaleFlow:
        """The flow without the data-constraint logit: logit-space images
        [H, W, C] <-> latents (the official `encoder` / `decoder(train=False)`)."""
        levels = [level.bijector() for level in self.levels]
        first = levels[0]
        levels[0] = Level(
            first.bijectors[1:],
            factor_out=first.factor_out,
            step_names=first.names[1:],
            name=first.name,
        )
        return MultiScaleFlow(self.config.image_shape, levels)

    def decode_logits(self, latents, temperature: float = 1.0) -> tf.Tensor:
        """Latents (per-scale list or flat [B, D]) -> the decoder's output in
        logit space, before the data-constraint logit is undone: the official
        `decoder(train=False)`. `official_postprocess` of it gives the images
        of the official sampler's post-processing; `decode` undoes the
        constraint exactly instead."""
        if not isinstance(latents, (list, tuple)):
            flat = tf.convert_to_tensor(latents, tf.float32)
            latents = unflatten_latents(flat, self.latent_shapes)
        latents = [tf.convert_to_tensor(eps, tf.float32) * temperature for eps in latents]
        return self.logit_flow().inverse_latents(latents)[0]
