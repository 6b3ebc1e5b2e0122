"""Convolutions of the coupling and prior networks, with OpenAI's numerics."""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.nn.act_norm import ActNormalization
from glow_tf.nn.edge_padding import edge_bias_pad
from glow_tf.nn.log_scale import StoredAsLogs
from glow_tf.nn.precision import in_precision_of

__all__ = ["ConvActNorm", "ZeroConv2D", "LinearZeros"]


def _edge_conv(x, kernel, kernel_size):
    return tf.nn.conv2d(edge_bias_pad(x, kernel_size), kernel, 1, "VALID")


def _kernel_shape(input_shape, kernel_size, filters):
    in_channels = int(input_shape[-1]) + (1 if kernel_size > 1 else 0)
    return (kernel_size, kernel_size, in_channels, filters)



@keras.saving.register_keras_serializable(package="glow_tf")
class ConvActNorm(keras.layers.Layer):
    """Edge-bias-padded convolution without bias, then ActNorm:

        y = actnorm(conv(edge_bias_pad(x), kernel))

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
        (kernel,) = in_precision_of(inputs, self.kernel)
        return self.norm(_edge_conv(inputs, kernel, self.kernel_size))

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
        return (_edge_conv(inputs, kernel, self.kernel_size) + bias) * tf.exp(log_scale)

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
