"""One step of flow: ActNorm, then a channel permutation, then a coupling."""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.flow.act_norm import ActNormLayer, data_dependent_init_active
from glow_tf.flow.base import FlowLayer, GlowBijector
from glow_tf.flow.conv1x1 import Conv1x1Layer, Conv1x1LULayer
from glow_tf.flow.coupling import CouplingLayer
from glow_tf.flow.permutation import ReverseLayer, ShuffleLayer
from glow_tf.flow.sequence import FlowSequence

__all__ = ["FlowStepLayer", "make_permutation"]


def make_permutation(
    permutation: str, lu_decomposed: bool = False, seed: int | None = None, **kwargs
) -> FlowLayer:
    """The layer for a permutation name: "conv1x1" (dense or LU), "shuffle", "reverse"."""
    if permutation == "conv1x1":
        layer = Conv1x1LULayer if lu_decomposed else Conv1x1Layer
        return layer(seed=seed, **kwargs)
    if permutation == "shuffle":
        return ShuffleLayer(seed=seed, **kwargs)
    if permutation == "reverse":
        return ReverseLayer(**kwargs)
    raise ValueError(
        f"unknown permutation {permutation!r}; expected 'conv1x1', 'shuffle' or 'reverse'"
    )


@keras.saving.register_keras_serializable(package="glow_tf")
class FlowStepLayer(FlowLayer):
    """Glow's step of flow on events [H, W, C] (OpenAI's `revnet2d_step`):

        forward:  y = coupling(permutation(actnorm(x)))
        inverse:  x = actnorm^-1(permutation^-1(coupling^-1(y)))
        log|det| = sum of the three

    Args:
      coupling: "affine" or "additive".
      permutation: "conv1x1", "shuffle" or "reverse".
      lu_decomposed: LU form of the 1x1 conv.
      hidden_channels: width of the coupling network.
      network_dtype: dtype policy of the coupling network.
      seed: seed of the random initial weights of this step.
    """

    def __init__(
        self,
        coupling: str = "affine",
        permutation: str = "conv1x1",
        lu_decomposed: bool = False,
        hidden_channels: int = 512,
        network_dtype: str | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.config_ = dict(
            coupling=coupling,
            permutation=permutation,
            lu_decomposed=lu_decomposed,
            hidden_channels=hidden_channels,
            network_dtype=network_dtype,
            seed=seed,
        )
        policy = self.dtype_policy
        self.act_norm = ActNormLayer(dtype=policy, name="act_norm")
        self.permutation = make_permutation(
            permutation, lu_decomposed, seed=seed, dtype=policy, name="permutation"
        )
        self.coupling = CouplingLayer(
            coupling,
            hidden_channels,
            network_dtype=network_dtype,
            seed=None if seed is None else seed + 7,
            dtype=policy,
            name="coupling",
        )

    def build(self, input_shape):
        for layer in (self.act_norm, self.permutation, self.coupling):
            layer.build(input_shape)

    @property
    def layers(self):
        return [self.act_norm, self.permutation, self.coupling]

    def bijector(self) -> GlowBijector:
        if data_dependent_init_active():
            return _CallsLayer(self)
        return FlowSequence([layer.bijector() for layer in self.layers], name="flow_step")

    def call(self, inputs, inverse: bool = False):
        layers = reversed(self.layers) if inverse else self.layers
        total = tf.zeros(tf.shape(inputs)[:1], inputs.dtype)
        for layer in layers:
            inputs, log_det = layer(inputs, inverse=inverse)
            total += log_det
        return inputs, total

    def get_config(self):
        return {**super().get_config(), **self.config_}


class _CallsLayer(GlowBijector):
    """Bridge for data-dependent init while the containers still build
    bijectors up front: a bijector that runs `layer`'s call, so that each
    ActNormLayer inside sees its input (`ActNormLayer.call` initialises it).
    Only `FlowStepLayer.bijector()` inside `data_dependent_init()` builds one.
    """

    def __init__(self, layer: FlowLayer, validate_args=False, name="calls_layer"):
        parameters = dict(locals())
        self.layer = layer
        super().__init__(validate_args=validate_args, parameters=parameters, name=name)

    def _forward_and_log_det(self, x):
        return self.layer(x)

    def _inverse_and_log_det(self, y):
        return self.layer(y, inverse=True)
