"""One step of flow: ActNorm, then a channel permutation, then a coupling."""

from __future__ import annotations

import keras

from glow_tf.flow.act_norm import ActNormLayer
from glow_tf.flow.base import FlowLayer, member_bijector
from glow_tf.flow.conv1x1 import Conv1x1Layer, Conv1x1LULayer
from glow_tf.flow.coupling import CouplingLayer
from glow_tf.flow.permutation import ReverseLayer, ShuffleLayer
from glow_tf.flow.sequence import FlowSequence
from glow_tf.seeds import seed_stream

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
      seed: seed of the random initial weights of this step (the
        permutation's and the coupling network's derive from it).
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
        seeds = seed_stream(seed, "flow_step")
        self.act_norm = ActNormLayer(dtype=policy, name="act_norm")
        self.permutation = make_permutation(
            permutation, lu_decomposed, seed=seeds(), dtype=policy, name="permutation"
        )
        self.coupling = CouplingLayer(
            coupling,
            hidden_channels,
            network_dtype=network_dtype,
            seed=seeds(),
            dtype=policy,
            name="coupling",
        )

    def build(self, input_shape):
        for layer in (self.act_norm, self.permutation, self.coupling):
            layer.build(input_shape)

    @property
    def layers(self):
        return [self.act_norm, self.permutation, self.coupling]

    def bijector(self, training: bool = False) -> FlowSequence:
        return FlowSequence(
            [member_bijector(layer, training) for layer in self.layers],
            names=[layer.name for layer in self.layers],
            name=self.name,
        )

    def get_config(self):
        return {**super().get_config(), **self.config_}
