"""The official RealNVP coupling network: a weight-normalised ResNet with skips."""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.nn.weight_norm_conv import WeightNormConv2D
from glow_tf.seeds import seed_stream

__all__ = ["RealNVPResNet", "network_batch_norm"]

BATCH_NORM_EPSILON = 1e-4
BATCH_NORM_MOMENTUM = 0.9


def network_batch_norm(name: str, dtype=None) -> keras.layers.BatchNormalization:
    """The official network batch norm: (x - mean) / sqrt(var + 1e-4) + beta,
    no gain; batch moments over (batch, H, W) in training (all-reduced across
    replicas), moving averages new = 0.9 old + 0.1 batch otherwise."""
    return keras.layers.BatchNormalization(
        momentum=BATCH_NORM_MOMENTUM,
        epsilon=BATCH_NORM_EPSILON,
        center=True,
        scale=False,
        synchronized=True,
        dtype=dtype,
        name=name,
    )


@keras.saving.register_keras_serializable(package="glow_tf")
class RealNVPResNet(keras.layers.Layer):
    """The conditioner of a RealNVP coupling (the official `resnet`, with the
    coupling's input normalisation `bn_in` in front).

    Input: the kept part h [B, H, W, C] of the coupling's input, plus, with
    `mask_channel`, the keep-mask b as one more channel ([B, H, W, C + 1]).

        h = 2 * bn_in(h)                        (with batch norm; factor
                                                 `input_scale`, 2 for
                                                 checkerboard couplings)
        h = relu([h, -h] (+ [b]))
        res = conv3x3(h);  skips = conv1x1_skip_in(res)
        for each block:  t = conv3x3_out(relu(bn_1(conv3x3_h0(relu(bn_0(res))))))
                         res = res + t;  skips = skips + conv1x1_skip_b(res)
        out = conv1x1_out(relu(bn_pre_out(skips if skip else res)))

    Every convolution is weight-normalised (`WeightNormConv2D`); `h_in` and
    the blocks' first convolutions have no magnitude, and with batch norm the
    blocks' first convolutions have no bias. The batch norms have a bias and
    no gain (`network_batch_norm`). Without batch norm there is none of them
    and no input scaling.

    Args:
      hidden_channels: width of the residual blocks (official `dim`).
      output_channels: channels of the output.
      num_blocks: residual blocks (official `residual_blocks`).
      skip: sum 1x1 projections of every block (official `skip`).
      batch_norm: use the batch norms (official `use_batch_norm`).
      mask_channel: the input's last channel is the mask b (checkerboard).
      input_scale: factor after `bn_in` (2 for checkerboard couplings, 1 for
        channel couplings, as in the official code).
      magnitude_regularizer: regulariser of every `magnitude` (the official
        L2 penalty).
      seed: seed of the random initial kernels.

    References:
      Dinh et al. (2017), RealNVP, https://arxiv.org/abs/1605.08803
    """

    def __init__(
        self,
        hidden_channels: int,
        output_channels: int,
        num_blocks: int = 1,
        skip: bool = True,
        batch_norm: bool = True,
        mask_channel: bool = False,
        input_scale: float = 1.0,
        magnitude_regularizer=None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_channels = int(hidden_channels)
        self.output_channels = int(output_channels)
        self.num_blocks = int(num_blocks)
        self.skip = bool(skip)
        self.batch_norm = bool(batch_norm)
        self.mask_channel = bool(mask_channel)
        self.input_scale = float(input_scale)
        self.magnitude_regularizer = keras.regularizers.get(magnitude_regularizer)
        self.seed = seed
        dtype = self.dtype_policy
        seeds = seed_stream(seed, "realnvp_resnet")

        def conv(filters, size, name, magnitude=True, bias=True):
            return WeightNormConv2D(
                filters,
                size,
                use_magnitude=magnitude,
                use_bias=bias,
                magnitude_regularizer=self.magnitude_regularizer if magnitude else None,
                seed=seeds(),
                dtype=dtype,
                name=name,
            )

        def norm(name):
            return network_batch_norm(name, dtype) if self.batch_norm else None

        width = self.hidden_channels
        self.input_norm = norm("bn_in")
        self.h_in = conv(width, 3, "h_in", magnitude=False)
        self.skip_in = conv(width, 1, "skip_in") if self.skip else None
        for b in range(self.num_blocks):
            setattr(self, f"block_{b}_bn_in", norm(f"block_{b}_bn_in"))
            setattr(
                self,
                f"block_{b}_h_0",
                conv(width, 3, f"block_{b}_h_0", magnitude=False, bias=not self.batch_norm),
            )
            setattr(self, f"block_{b}_bn_0", norm(f"block_{b}_bn_0"))
            setattr(self, f"block_{b}_out", conv(width, 3, f"block_{b}_out"))
            setattr(self, f"skip_{b}", conv(width, 1, f"skip_{b}") if self.skip else None)
        self.pre_out_norm = norm("bn_pre_out")
        self.out = conv(self.output_channels, 1, "out")

    def build(self, input_shape):
        space = tuple(input_shape[:-1])
        channels = int(input_shape[-1]) - (1 if self.mask_channel else 0)
        if self.input_norm is not None:
            self.input_norm.build(space + (channels,))
        self.h_in.build(space + (2 * channels + (1 if self.mask_channel else 0),))
        hidden = space + (self.hidden_channels,)
        for layer in self._hidden_layers():
            layer.build(hidden)
        self.out.build(hidden)

    def block(self, b: int) -> dict:
        """The layers of residual block b: bn_in, h_0, bn_0, out, skip."""
        return {
            "bn_in": getattr(self, f"block_{b}_bn_in"),
            "h_0": getattr(self, f"block_{b}_h_0"),
            "bn_0": getattr(self, f"block_{b}_bn_0"),
            "out": getattr(self, f"block_{b}_out"),
            "skip": getattr(self, f"skip_{b}"),
        }

    def _hidden_layers(self):
        layers = [self.skip_in, self.pre_out_norm]
        for b in range(self.num_blocks):
            layers += list(self.block(b).values())
        return [layer for layer in layers if layer is not None]

    @staticmethod
    def _norm(layer, x, training):
        return x if layer is None else layer(x, training=training)

    def call(self, inputs, training=None):
        if self.mask_channel:
            h, mask = inputs[..., :-1], inputs[..., -1:]
        else:
            h, mask = inputs, None
        if self.input_norm is not None:
            h = self.input_norm(h, training=training) * self.input_scale
        parts = [h, -h] + ([mask] if mask is not None else [])
        res = self.h_in(tf.nn.relu(tf.concat(parts, axis=-1)))
        skips = self.skip_in(res) if self.skip else None
        for b in range(self.num_blocks):
            block = self.block(b)
            t = tf.nn.relu(self._norm(block["bn_in"], res, training))
            t = block["h_0"](t)
            t = tf.nn.relu(self._norm(block["bn_0"], t, training))
            res = res + block["out"](t)
            if self.skip:
                skips = skips + block["skip"](res)
        h = skips if self.skip else res
        h = tf.nn.relu(self._norm(self.pre_out_norm, h, training))
        return self.out(h)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_channels": self.hidden_channels,
            "output_channels": self.output_channels,
            "num_blocks": self.num_blocks,
            "skip": self.skip,
            "batch_norm": self.batch_norm,
            "mask_channel": self.mask_channel,
            "input_scale": self.input_scale,
            "magnitude_regularizer": keras.regularizers.serialize(self.magnitude_regularizer),
            "seed": self.seed,
        }
