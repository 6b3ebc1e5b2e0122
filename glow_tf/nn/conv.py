"""Convolutions of the coupling and prior networks, with OpenAI's numerics."""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.nn.act_norm import ActNormalization
from glow_tf.nn.edge_padding import border_indicator
from glow_tf.nn.init_mode import data_dependent_init_active
from glow_tf.nn.log_scale import StoredAsLogs
from glow_tf.nn.precision import in_precision_of

__all__ = [
    "ConvActNorm",
    "ZeroConv2D",
    "LinearZeros",
    "edge_bias_conv",
    "pointwise_conv",
    "shifted_matmul_conv",
    "split_edge_bias_conv",
    "edge_bias_term",
]


def edge_bias_conv(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """conv(edge_bias_pad(x), kernel, VALID), in the form that is cheapest for
    the kernel's shape. With x [B, H, W, C] and kernel [k, k, C + 1, F]
    ([1, 1, C, F] for k = 1):

      k = 1            a matrix product: x [B*H*W, C] @ kernel [C, F]
      k*k*F <= C       narrow output (the coupling networks' last conv):
                       `shifted_matmul_conv`, one matrix product to k*k*F
                       channels and k*k shifted adds
      otherwise        `split_edge_bias_conv`: a SAME k x k convolution of x
                       with the kernel's first C input channels, plus the
                       border channel's constant [H, W, F] term

    No form copies x into a padded, concatenated tensor: the convolution is
    linear, so the border-indicator channel's contribution is computed from
    the kernel alone (`edge_bias_term`). The rule depends on shapes only, not
    on the device: every form does the same multiply-adds as the convolution
    (the narrow form adds k*k shifted copies of a k*k*F-channel tensor, no
    wider than x), and each is one large matrix product on any device. The
    forms agree to float rounding (they sum the same products in another
    order); bench/conv_shapes.py times them.
    """
    kernel_size = int(kernel.shape[0])
    if kernel_size == 1:
        return pointwise_conv(x, kernel)
    if kernel_size * kernel_size * int(kernel.shape[-1]) <= int(x.shape[-1]):
        return shifted_matmul_conv(x, kernel)
    return split_edge_bias_conv(x, kernel)


def edge_bias_term(shape, kernel: tf.Tensor) -> tf.Tensor:
    """The border-indicator channel's part of conv(edge_bias_pad(x), kernel, VALID),
    for inputs of `shape` [B, H, W, C] (static H, W) and kernel [k, k, C + 1, F]:

        conv(border_indicator, kernel[:, :, C:, :], VALID)     [1, H, W, F]

    the same for every image (it does not depend on x); non-zero only
    within (k - 1) / 2 pixels of the border.
    """
    kernel_size, channels = int(kernel.shape[0]), int(shape[-1])
    border = border_indicator(shape, kernel_size, kernel.dtype)
    return tf.nn.conv2d(border, kernel[:, :, channels:, :], 1, "VALID")


def split_edge_bias_conv(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """conv(edge_bias_pad(x), kernel, VALID) without building the padded,
    concatenated input. A convolution is linear in its input channels, so
    with x [B, H, W, C] and kernel [k, k, C + 1, F]:

        conv(concat(pad(x), border), kernel, VALID)
          = conv(x, kernel[:, :, :C, :], SAME)             (zero padding)
          + conv(border, kernel[:, :, C:, :], VALID)       `edge_bias_term`, [1, H, W, F]
    """
    channels = int(x.shape[-1])
    return tf.nn.conv2d(x, kernel[:, :, :channels, :], 1, "SAME") + edge_bias_term(
        x.shape, kernel
    )


def pointwise_conv(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """A 1x1 convolution as one matrix product:

        y[b, i, j] = x[b, i, j] @ kernel[0, 0]       kernel [1, 1, C, F]
    """
    channels, filters = int(kernel.shape[-2]), int(kernel.shape[-1])
    flat = tf.matmul(tf.reshape(x, [-1, channels]), tf.reshape(kernel, [channels, filters]))
    return tf.reshape(flat, tf.concat([tf.shape(x)[:-1], [filters]], 0))


def shifted_matmul_conv(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """conv(edge_bias_pad(x), kernel, VALID) as a matrix product then shifted adds.

    With x [B, H, W, C], kernel [k, k, C + 1, F] and p = (k - 1) / 2:

        taps[b, i, j, (u, v, f)] = sum_c x[b, i, j, c] * kernel[u, v, c, f]
        y[b, i, j, f] = sum_{u, v} pad_p(taps)[b, i + u, j + v, (u, v, f)]
                        + border[i, j, f]
        border = conv(border_indicator, kernel[:, :, C:, :], VALID)   [1, H, W, F]

    i.e. the zero padding moves from x (C channels) to taps (k*k*F channels)
    and the border-indicator channel, the same for every image, becomes a
    constant per-pixel term. Cheaper than the convolution when k*k*F <= C.
    """
    kernel_size, channels, filters = int(kernel.shape[0]), int(x.shape[-1]), int(kernel.shape[-1])
    weights = tf.reshape(
        tf.transpose(kernel[:, :, :channels, :], [2, 0, 1, 3]),
        [channels, kernel_size * kernel_size * filters],
    )
    taps = pointwise_conv(x, weights[tf.newaxis, tf.newaxis])
    return _shifted_add(taps, kernel_size) + edge_bias_term(x.shape, kernel)


def _shifted_add(taps: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """The k*k shifted adds of `shifted_matmul_conv`, with a gradient of its own.

    With taps [B, H, W, k*k*F] and p = (k - 1) / 2:

        y[b, i, j, f] = sum_{u, v} pad_p(taps)[b, i + u, j + v, (u, v, f)]
        d_taps[b, i, j, (u, v, f)] = pad_p(dy)[b, i + 2p - u, j + 2p - v, f]

    The backward is one pad of dy, k*k slices and one concat; autodiff of the
    slices would write a zero-filled [B, H + 2p, W + 2p, k*k*F] tensor per
    tap and sum them (the costliest op of a training step). The backward is
    itself made of differentiable ops, so higher derivatives work too.
    """
    _, height, width, tap_channels = taps.shape
    pad = (kernel_size - 1) // 2
    filters = int(tap_channels) // (kernel_size * kernel_size)
    offsets = [(u, v) for u in range(kernel_size) for v in range(kernel_size)]
    padding = [[0, 0], [pad, pad], [pad, pad], [0, 0]]

    @tf.custom_gradient
    def shifted_add(taps):
        padded = tf.pad(taps, padding)
        shifted = [
            padded[:, u : u + height, v : v + width, tap * filters : (tap + 1) * filters]
            for tap, (u, v) in enumerate(offsets)
        ]

        def gradient(dy):
            padded_dy = tf.pad(dy, padding)
            windows = [
                padded_dy[:, 2 * pad - u : 2 * pad - u + height, 2 * pad - v : 2 * pad - v + width]
                for u, v in offsets
            ]
            return tf.concat(windows, axis=-1)

        return tf.add_n(shifted), gradient

    return shifted_add(taps)


def _kernel_shape(input_shape, kernel_size, filters):
    in_channels = int(input_shape[-1]) + (1 if kernel_size > 1 else 0)
    return (kernel_size, kernel_size, in_channels, filters)



@keras.saving.register_keras_serializable(package="glow_tf")
class ConvActNorm(keras.layers.Layer):
    """Edge-bias-padded convolution without bias, then ActNorm:

        y = actnorm(conv(edge_bias_pad(x), kernel))
          = (conv(edge_bias_pad(x), kernel) + bias) * exp(log_scale)
          = conv(edge_bias_pad(x), kernel * exp(log_scale)) + bias * exp(log_scale)

    computed in the last form (a per-channel scale of the kernel, not of the
    activations, and one bias add) except during data-dependent init, where
    the ActNorm needs the convolution's output.

    `kernel` is [k, k, C_in + 1, filters] for k > 1 (the extra input channel
    is the border indicator) and [1, 1, C_in, filters] for k = 1; it starts
    from N(0, 0.05^2) like OpenAI's `conv2d`. The ActNorm is initialised from
    data by `GlowModel.initialize`.
    """

    def __init__(self, filters: int, kernel_size: int = 3, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.seed = seed
        self.norm = ActNormalization(
            dtype=self.dtype_policy, autocast=self.autocast, name="act_norm"
        )

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=_kernel_shape(input_shape, self.kernel_size, self.filters),
            initializer=keras.initializers.RandomNormal(stddev=0.05, seed=self.seed),
            name="kernel",
            autocast=False,
        )
        self.norm.build(tuple(input_shape[:-1]) + (self.filters,))

    def call(self, inputs):
        if data_dependent_init_active():
            (kernel,) = in_precision_of(inputs, self.kernel)
            return self.norm(edge_bias_conv(inputs, kernel))
        # ActNorm folded into the conv, its scale applied to the kernel (k*k*C*F
        # products) instead of the output (B*H*W*F); equal up to float rounding.
        # Folded in float32 (the stored weights), then cast to the input's precision.
        scale = tf.exp(tf.convert_to_tensor(self.norm.log_scale))
        kernel, bias = in_precision_of(
            inputs,
            tf.convert_to_tensor(self.kernel) * scale,
            tf.convert_to_tensor(self.norm.bias) * scale,
        )
        return tf.nn.bias_add(edge_bias_conv(inputs, kernel), bias)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="glow_tf")
class ZeroConv2D(StoredAsLogs, keras.layers.Layer):
    """Zero-initialised edge-bias convolution with bias and output scale:

        y = (conv(edge_bias_pad(x), kernel) + bias) * exp(log_scale)
        log_scale = 3 * logs

    All of `kernel` [k, k, C_in + 1, filters], `bias` [filters] and
    `logs` [filters] start at zero, so the layer starts as the zero map.
    The weights are OpenAI's `conv2d_zeros` variables W, b, logs.
    """

    def __init__(self, filters: int, kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=_kernel_shape(input_shape, self.kernel_size, self.filters),
            initializer="zeros",
            name="kernel",
            autocast=False,
        )
        self.bias = self.add_weight(
            shape=(self.filters,), initializer="zeros", name="bias", autocast=False
        )
        self.add_logs_weight(self.filters)

    def call(self, inputs):
        kernel, bias, log_scale = in_precision_of(inputs, self.kernel, self.bias, self.log_scale)
        return (edge_bias_conv(inputs, kernel) + bias) * tf.exp(log_scale)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="glow_tf")
class LinearZeros(StoredAsLogs, keras.layers.Layer):
    """Zero-initialised dense layer with output scale:

        y = (x @ kernel + bias) * exp(log_scale)
        log_scale = 3 * logs

    All weights start at zero; they are OpenAI's `linear_zeros` W, b, logs.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(int(input_shape[-1]), self.units),
            initializer="zeros",
            name="kernel",
            autocast=False,
        )
        self.bias = self.add_weight(
            shape=(self.units,), initializer="zeros", name="bias", autocast=False
        )
        self.add_logs_weight(self.units)

    def call(self, inputs):
        kernel, bias, log_scale = in_precision_of(inputs, self.kernel, self.bias, self.log_scale)
        return (tf.matmul(inputs, kernel) + bias) * tf.exp(log_scale)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
