"""The top prior: a learned, optionally class-conditional diagonal Gaussian; the temperature."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from glow_tf.flow.standardize import Standardize
from glow_tf.nn.conv import LinearZeros, ZeroConv2D

__all__ = ["TopPriorLayer", "check_temperature"]

TEMPERATURE_MESSAGE = "temperature must be >= 0 and finite"


def check_temperature(temperature) -> tf.Tensor:
    """The sampling temperature T as a float32 scalar, checked: T >= 0 and finite.

    Latents are multiplied by T before the inverse flow (OpenAI's eps_std),
    so T = 0 decodes each level's prior mean. Checked eagerly (ValueError),
    or by assert ops inside a tf.function (InvalidArgumentError).
    """
    temperature = tf.cast(tf.convert_to_tensor(temperature), tf.float32)
    if temperature.shape.rank not in (0, None):
        raise ValueError(f"temperature must be a scalar, got shape {temperature.shape}")
    if tf.executing_eagerly():
        value = float(temperature)
        if not (value >= 0 and value != float("inf")):
            raise ValueError(f"{TEMPERATURE_MESSAGE}, got {value}")
        return temperature
    checks = [
        tf.debugging.assert_all_finite(temperature, TEMPERATURE_MESSAGE),
        tf.debugging.assert_greater_equal(temperature, 0.0, message=TEMPERATURE_MESSAGE),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(temperature)


@keras.saving.register_keras_serializable(package="glow_tf")
class TopPriorLayer(keras.layers.Layer):
    """N(mean, exp(log_scale)^2) over the top latent [h, w, c] (OpenAI's `prior`):

        p = zeros [1, h, w, 2c]
        if learn_top:  p = zero_conv3x3(p)                 (OpenAI `prior/p`)
        if classes:    p += linear_zeros(one_hot(y))        (OpenAI `prior/y_emb`)
        mean = p[..., :c],  log_scale = p[..., c:]          (halves, not interleaved)

    Without `learn_top` and classes this is the standard normal. `bijector(y)`
    standardises the top latent under it (see `Standardize`).

    Args:
      top_shape: [h, w, c] of the top latent.
      learn_top: learn a (spatially varying) mean and log-scale.
      num_classes: > 0 for a class-conditional prior.
    """

    def __init__(
        self, top_shape: Sequence[int], learn_top: bool = True, num_classes: int = 0, **kwargs
    ):
        super().__init__(**kwargs)
        self.top_shape = tuple(int(d) for d in top_shape)
        self.learn_top = learn_top
        self.num_classes = num_classes
        channels = self.top_shape[-1]
        policy = self.dtype_policy
        self.learned = (
            ZeroConv2D(2 * channels, 3, dtype=policy, name="learned") if learn_top else None
        )
        self.class_embedding = (
            LinearZeros(2 * channels, dtype=policy, name="class_embedding") if num_classes else None
        )

    def build(self, input_shape=None):
        height, width, channels = self.top_shape
        if self.learned is not None:
            self.learned.build((None, height, width, 2 * channels))
        if self.class_embedding is not None:
            self.class_embedding.build((None, self.num_classes))

    def gaussian(self, y=None) -> tuple[tf.Tensor, tf.Tensor]:
        """(mean, log_scale), each [1 or B, h, w, c], for labels y of shape
        [B] or [] (one class for every example)."""
        height, width, channels = self.top_shape
        params = tf.zeros([1, height, width, 2 * channels], self.compute_dtype)
        if self.learned is not None:
            params = self.learned(params)
        if self.class_embedding is not None:
            if y is None:
                raise ValueError("this class-conditional prior needs labels y")
            y = tf.reshape(tf.cast(y, tf.int32), [-1])
            one_hot = tf.one_hot(y, self.num_classes, dtype=self.compute_dtype)
            params += self.class_embedding(one_hot)[:, tf.newaxis, tf.newaxis, :]
        elif y is not None:
            raise ValueError("labels y were passed to an unconditional prior (num_classes=0)")
        return params[..., :channels], params[..., channels:]

    def bijector(self, y=None) -> Standardize:
        mean, log_scale = self.gaussian(y)
        return Standardize(mean, log_scale, name="top_prior")

    def get_config(self):
        return {
            **super().get_config(),
            "top_shape": list(self.top_shape),
            "learn_top": self.learn_top,
            "num_classes": self.num_classes,
        }
