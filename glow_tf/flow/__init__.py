"""Invertible transforms: each a one-pass `tfb.Bijector` and the Keras layer owning its weights."""

from glow_tf.flow.act_norm import ActNorm, ActNormLayer, data_dependent_init
from glow_tf.flow.base import FlowLayer, GlowBijector, LayerCall
from glow_tf.flow.conv1x1 import (
    Conv1x1Layer,
    Conv1x1LULayer,
    InvertibleConv1x1,
    precomputed_inverses,
)
from glow_tf.flow.conditional_coupling import ConditionalCouplingLayer
from glow_tf.flow.coupling import AdditiveCoupling, AffineCoupling, CouplingLayer
from glow_tf.flow.coupling_mask import CouplingMask
from glow_tf.flow.data_constraint import (
    DataConstraintLogit,
    DataConstraintLogitLayer,
    official_postprocess,
)
from glow_tf.flow.flow_batch_norm import FlowBatchNorm, FlowBatchNormLayer
from glow_tf.flow.intermediates import recording_intermediates
from glow_tf.flow.level import Level, LevelLayer
from glow_tf.flow.multiscale import (
    MultiScaleFlow,
    flatten_latents,
    latent_shapes,
    unflatten_latents,
)
from glow_tf.flow.masked_coupling import MaskedCoupling, MaskedCouplingLayer
from glow_tf.flow.permutation import ChannelPermutation, ReverseLayer, ShuffleLayer
from glow_tf.flow.realnvp_coupling import RealNVPCouplingLayer
from glow_tf.flow.sequence import FlowSequence
from glow_tf.flow.split import Split, SplitLayer
from glow_tf.flow.squeeze import (
    Squeeze,
    SqueezeLayer,
    Unsqueeze,
    squeeze2d,
    squeeze2d_diagonal_first,
    unsqueeze2d,
    unsqueeze2d_diagonal_first,
)
from glow_tf.flow.standardize import Standardize
from glow_tf.flow.step import FlowStepLayer
from glow_tf.flow.step_loop import StepLoop

__all__ = [
    "unsqueeze2d_diagonal_first",
    "squeeze2d_diagonal_first",
    "official_postprocess",
    "Unsqueeze",
    "RealNVPCouplingLayer",
    "MaskedCouplingLayer",
    "MaskedCoupling",
    "FlowBatchNormLayer",
    "FlowBatchNorm",
    "DataConstraintLogitLayer",
    "DataConstraintLogit",
    "CouplingMask",
    "ActNorm",
    "ActNormLayer",
    "AdditiveCoupling",
    "AffineCoupling",
    "ChannelPermutation",
    "ConditionalCouplingLayer",
    "Conv1x1LULayer",
    "Conv1x1Layer",
    "CouplingLayer",
    "FlowLayer",
    "FlowSequence",
    "FlowStepLayer",
    "StepLoop",
    "GlowBijector",
    "InvertibleConv1x1",
    "LayerCall",
    "Level",
    "LevelLayer",
    "MultiScaleFlow",
    "ReverseLayer",
    "ShuffleLayer",
    "Split",
    "SplitLayer",
    "Squeeze",
    "SqueezeLayer",
    "Standardize",
    "data_dependent_init",
    "flatten_latents",
    "latent_shapes",
    "precomputed_inverses",
    "recording_intermediates",
    "squeeze2d",
    "unflatten_latents",
    "unsqueeze2d",
]
