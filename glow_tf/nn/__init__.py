"""Networks inside the flow: edge-bias padding, ActNorm, zero-init convs, coupling network."""

from glow_tf.nn.act_norm import ActNormalization
from glow_tf.nn.conv import ConvActNorm, LinearZeros, ZeroConv2D
from glow_tf.nn.coupling_network import CouplingNetwork
from glow_tf.nn.edge_padding import edge_bias_pad

__all__ = [
    "ActNormalization",
    "ConvActNorm",
    "CouplingNetwork",
    "LinearZeros",
    "ZeroConv2D",
    "edge_bias_pad",
]
