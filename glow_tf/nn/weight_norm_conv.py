"""Weight-normalised convolution, the official RealNVP code's `conv_layer`."""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["WeightNormConv2D"]


@keras.saving.register_keras_serializable(package="glow_tf")
class WeightNormConv2D(keras.layers.Layer):
    """Stride-1, zero "SAME"-padded convolution with a weight-normalised kernel.

    With `kernel` v [k, k, C_in, C_out], optional `magnitude` g [C_out] and
    optional `bias` b [C_out]:

        w[..., o] = v[..., o] / ||v[..., o]||      (L2 norm over k, k, C_in)
        w[..., o] = g[o] * w[..., o]               (with a magnitude)
        y = conv(x, w) + b                         (with a bias)

    (the official RealNVP `conv_layer`: variables `weights`, `magnitude`,
    `biases`).

    Args:
      filters: C_out.
      kernel_size: k.
      use_magnitude: learn g (initialised to 1).
      use_bias: learn b (initialised to 0).
      seed: seed of v's random initial values, N(0, 0.05^2).

    References:
      Salimans & Kingma (2016), Weight normalization,
      https://arxiv.org/abs/1602.07868
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        use_magnitude: bool = True,
        use_bias: bool = True,
        magnitude_regularizer=None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.use_magnitude = bool(use_magnitude)
        self.use_bias = bool(use_bias)
        self.magnitude_regularizer = keras.regularizers.get(magnitude_regularizer)
        self.seed = seed

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(
            shape=(k, k, int(input_shape[-1]), self.filters),
            initializer=keras.initializers.RandomNormal(stddev=0.05, seed=self.seed),
            name="kernel",
        )
        self.magnitude = None
        if self.use_magnitude:
            self.magnitude = self.add_weight(
                shape=(self.filters,),
                initializer="ones",
                regularizer=self.magnitude_regularizer,
                name="magnitude",
            )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, inputs):
        kernel = tf.cast(self.kernel, self.compute_dtype)
        kernel = tf.nn.l2_normalize(kernel, axis=[0, 1, 2])
        if self.magnitude is not None:
            kernel = kernel * tf.cast(self.magnitude, self.compute_dtype)
        outputs = tf.nn.conv2d(inputs, kernel, 1, "SAME")
        if self.bias is not None:
            outputs = outputs + tf.cast(self.bias, self.compute_dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "use_magnitude": self.use_magnitude,
            "use_bias": self.use_bias,
            "magnitude_regularizer": keras.regularizers.serialize(self.magnitude_regularizer),
            "seed": self.seed,
        }
