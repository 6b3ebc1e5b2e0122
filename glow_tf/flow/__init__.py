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
from glow_tf.flow.intermediates import recording_intermediates
from glow_tf.flow.level import Level, LevelLayer
from glow_tf.flow.multiscale import (
    MultiScaleFlow,
    flatten_latents,
    latent_shapes,
    unflatten_latents,
)
from glow_tf.flow.permutation import ChannelPermutation, ReverseLayer, ShuffleLayer
from glow_tf.flow.sequence import FlowSequence
from glow_tf.flow.split import Split, SplitLayer
from glow_tf.flow.squeeze import Squeeze, SqueezeLayer, squeeze2d, unsqueeze2d
from glow_tf.flow.standardize import Standardize
from glow_tf.flow.step import FlowStepLayer

__all__ = [
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
