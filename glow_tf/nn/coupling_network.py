"""The network of a coupling layer: 3x3 conv, 1x1 conv, zero-initialised 3x3 conv."""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.nn.conv import ConvActNorm, ZeroConv2D
from glow_tf.seeds import seed_stream

__all__ = ["CouplingNetwork"]


@keras.saving.register_keras_serializable(package="glow_tf")
class CouplingNetwork(keras.layers.Layer):
    """OpenAI's coupling network `f`, on channels-last activations:

        h = relu(actnorm(conv3x3(edge_bias_pad(x))))       hidden_channels
        h = relu(actnorm(conv1x1(h)))                       hidden_channels
        out = (conv3x3(edge_bias_pad(h)) + b) * exp(s)      out_channels, zero init

    The zero-initialised last layer makes every coupling start as the
    identity. The network may compute in a lower precision (its dtype
    policy); its output is cast back to float32 for the flow.
    """

    def __init__(self, hidden_channels: int, out_channels: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.seed = seed
        policy = self.dtype_policy
        seeds = seed_stream(seed, "coupling_network")
        self.conv_in = ConvActNorm(hidden_channels, 3, seed=seeds(), dtype=policy, name="conv_in")
        self.conv_hidden = ConvActNorm(
            hidden_channels, 1, seed=seeds(), dtype=policy, name="conv_hidden"
        )
        self.conv_out = ZeroConv2D(out_channels, 3, dtype=policy, name="conv_out")

    def build(self, input_shape):
        hidden_shape = tuple(input_shape[:-1]) + (self.hidden_channels,)
        self.conv_in.build(input_shape)
        self.conv_hidden.build(hidden_shape)
        self.conv_out.build(hidden_shape)

    def call(self, inputs, training=None):
        h = tf.nn.relu(self.conv_in(inputs))
        h = tf.nn.relu(self.conv_hidden(h))
        return self.conv_out(h)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_channels": self.hidden_channels,
            "out_channels": self.out_channels,
            "seed": self.seed,
        }
