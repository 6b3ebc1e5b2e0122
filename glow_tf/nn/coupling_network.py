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
    identity.

    Precision. The weights are float32. With a mixed dtype policy
    ("mixed_bfloat16" / "mixed_float16") the network computes in that half
    precision only in training passes (`training=True`: the gradient steps
    of `fit`); every other pass (encode, decode, sample, evaluate, export)
    computes in float32 on the same float32 weights:

        training=True:   out = f(x; cast(w, compute_dtype)) in compute_dtype
        otherwise:       out = f(x; w) in float32

    because a coupling inverts exactly only if the network gives the same
    output in both directions, and a half-precision network does not: the
    inverse sees its input after a float32 round trip through the later
    steps, a few float32 ulps away from the forward's, and rounding that to
    bfloat16 (8 bits of mantissa) or float16 sometimes lands on the
    neighbouring value, a jump of 2**-8 relative that the next steps amplify
    (K = 32, trained-like weights: errors of 1e-2 to 0.5 on the flow input,
    up to 3/4 of the pixels off). In float32 the same perturbation stays a
    few ulps. The cost is inference at float32 speed (bench/
    inference_precision.py, docs/training.md). The output is in the
    precision computed; the coupling casts it to float32.
    """

    def __init__(self, hidden_channels: int, out_channels: int, seed: int | None = None, **kwargs):
        # no autocasting: `call` chooses the precision of the input and the
        # layers below compute in it (glow_tf.nn.precision)
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.seed = seed
        seeds = seed_stream(seed, "coupling_network")
        inner = dict(dtype=self.dtype_policy, autocast=False)
        self.conv_in = ConvActNorm(hidden_channels, 3, seed=seeds(), name="conv_in", **inner)
        self.conv_hidden = ConvActNorm(
            hidden_channels, 1, seed=seeds(), name="conv_hidden", **inner
        )
        self.conv_out = ZeroConv2D(out_channels, 3, name="conv_out", **inner)

    def build(self, input_shape):
        hidden_shape = tuple(input_shape[:-1]) + (self.hidden_channels,)
        self.conv_in.build(input_shape)
        self.conv_hidden.build(hidden_shape)
        self.conv_out.build(hidden_shape)

    def precision(self, training=None) -> str:
        """The dtype this network computes in for a pass with `training`."""
        return self.compute_dtype if training else "float32"

    def call(self, inputs, training=None):
        h = tf.cast(inputs, self.precision(training))
        h = tf.nn.relu(self.conv_in(h))
        h = tf.nn.relu(self.conv_hidden(h))
        return self.conv_out(h)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_channels": self.hidden_channels,
            "out_channels": self.out_channels,
            "seed": self.seed,
        }
