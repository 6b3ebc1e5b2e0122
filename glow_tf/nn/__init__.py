"""Networks inside the flow: edge-bias padding, ActNorm, zero-init convs, coupling networks (Glow, RealNVP)."""

from glow_tf.nn.act_norm import ActNormalization
from glow_tf.nn.conv import ConvActNorm, LinearZeros, ZeroConv2D
from glow_tf.nn.coupling_network import CouplingNetwork
from glow_tf.nn.edge_padding import edge_bias_pad
from glow_tf.nn.realnvp_resnet import RealNVPResNet
from glow_tf.nn.weight_norm_conv import WeightNormConv2D

__all__ = [
    "ActNormalization",
    "ConvActNorm",
    "CouplingNetwork",
    "LinearZeros",
    "RealNVPResNet",
    "WeightNormConv2D",
    "ZeroConv2D",
    "edge_bias_pad",
]
