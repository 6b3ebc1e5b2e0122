"""One RealNVP coupling layer: the masked coupling, then its flow batch norm."""

from __future__ import annotations

import keras

from glow_tf.flow.base import FlowLayer, member_bijector
from glow_tf.flow.coupling_mask import CouplingMask
from glow_tf.flow.flow_batch_norm import FlowBatchNormLayer
from glow_tf.flow.masked_coupling import MaskedCouplingLayer
from glow_tf.flow.sequence import FlowSequence

__all__ = ["RealNVPCouplingLayer"]


@keras.saving.register_keras_serializable(package="glow_tf")
class RealNVPCouplingLayer(FlowLayer):
    """A coupling layer of the official RealNVP code (`coupling_k`):

        forward:  y = batch_norm(coupling(x))     (batch_norm only with batch_norm=True)
        inverse:  x = coupling^-1(batch_norm^-1(y))
        log|det| = the coupling's + the batch norm's

    Both act on the transformed part of the mask only (`MaskedCouplingLayer`,
    `FlowBatchNormLayer`).

    Args:
      mask: a `CouplingMask` or its dict.
      coupling: "affine" or "additive".
      hidden_channels, num_blocks, skip, batch_norm, l2_penalty, seed: see
        `MaskedCouplingLayer`; `batch_norm` also adds the flow batch norm.
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
        self.coupling = MaskedCouplingLayer(
            mask,
            coupling,
            hidden_channels,
            num_blocks=num_blocks,
            skip=skip,
            batch_norm=batch_norm,
            l2_penalty=l2_penalty,
            seed=seed,
            dtype=self.dtype_policy,
            name="coupling",
        )
        self.batch_norm = None
        if batch_norm:
            self.batch_norm = FlowBatchNormLayer(
                self.coupling.mask, dtype=self.dtype_policy, name="batch_norm"
            )

    @property
    def mask(self) -> CouplingMask:
        return self.coupling.mask

    @property
    def layers(self):
        return [layer for layer in (self.coupling, self.batch_norm) if layer is not None]

    def build(self, input_shape):
        for layer in self.layers:
            layer.build(input_shape)

    def bijector(self, training: bool = False) -> FlowSequence:
        return FlowSequence(
            [member_bijector(layer, training) for layer in self.layers],
            names=[layer.name for layer in self.layers],
            name=self.name,
        )

    def get_config(self):
        coupling = self.coupling.get_config()
        return {
            **super().get_config(),
            **{
                key: coupling[key]
                for key in (
                    "mask",
                    "coupling",
                    "hidden_channels",
                    "num_blocks",
                    "skip",
                    "batch_norm",
                    "l2_penalty",
                    "seed",
                )
            },
        }
