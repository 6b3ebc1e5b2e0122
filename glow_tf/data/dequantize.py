"""Dequantisation: turn discrete pixel bins into a continuous variable."""

from __future__ import annotations

import inspect
import math

import keras
import tensorflow as tf

__all__ = [
    "UniformDequantization",
    "uniform_noise",
    "bin_centre_noise",
    "check_noise",
    "draws_seeded_noise",
]


def uniform_noise(shape, num_bits: int, seed=None) -> tf.Tensor:
    """u ~ U[0, 1 / 2**num_bits) of the given shape (OpenAI's dequantisation).

    With a two-int `seed` the draw is stateless and reproducible.
    """
    high = 1.0 / 2**num_bits
    if seed is None:
        return tf.random.uniform(shape, 0.0, high)
    return tf.random.stateless_uniform(shape, seed=seed, minval=0.0, maxval=high)


def check_noise(noise, shape, num_bits: int, batch=None) -> tf.Tensor:
    """Validates a given dequantisation noise: float, the images' shape, in [0, 1/n_bins).

    `shape` is the images' (static) shape; `batch`, their run-time batch size
    if it is not known statically (inside a `tf.function` with a dynamic batch).
    A noise of another batch size is an error, never broadcast over the images.
    """
    noise = tf.convert_to_tensor(noise)
    if not noise.dtype.is_floating:
        raise TypeError(f"noise must be a float tensor, got {noise.dtype.name}")
    noise = tf.cast(noise, tf.float32)
    shape = tf.TensorShape(shape)
    if noise.shape.rank is not None and not noise.shape.is_compatible_with(shape):
        raise ValueError(f"noise must have the images' shape {shape}, got {noise.shape}")
    high = 1.0 / 2**num_bits
    message = f"dequantisation noise must lie in [0, {high}) (1/n_bins)"
    if tf.executing_eagerly():
        values = noise.numpy()
        if not ((values >= 0).all() and (values < high).all()):
            raise ValueError(message)
        return noise
    checks = [
        tf.debugging.assert_greater_equal(noise, 0.0, message=message),
        tf.debugging.assert_less(noise, high, message=message),
    ]
    if batch is not None:
        checks.append(
            tf.debugging.assert_equal(
                tf.shape(noise)[0],
                tf.cast(batch, tf.int32),
                message="noise must have the images' batch size (one noise per image)",
            )
        )
    with tf.control_dependencies(checks):
        return tf.identity(noise)


def bin_centre_noise(images, num_bits: int) -> tf.Tensor:
    """The deterministic dequantisation u = 0.5 / n_bins (each bin's centre), float32
    of the images' shape: the same image always gives the same flow input."""
    return tf.fill(tf.shape(images), tf.constant(0.5 / 2**num_bits, tf.float32))


def draws_seeded_noise(dequantizer) -> bool:
    """Whether a dequantizer layer's `call` takes a `seed` for the noise it draws."""
    return "seed" in inspect.signature(dequantizer.call).parameters


@keras.saving.register_keras_serializable(package="glow_tf")
class UniformDequantization(keras.layers.Layer):
    """Uniform dequantisation of pixel bins (OpenAI's), as a layer of a `FlowModel`.

    On bins b in {0 .. n_bins - 1} with n_bins = 2**num_bits, per image of D
    values:

        u ~ U[0, 1/n_bins)^D                     (or the given noise)
        x = b / n_bins - 0.5 + u                 in [-0.5, 0.5)
        log q(u | b) = D log n_bins              (the density of u)

    so log p(x) - log q(u | b) is a lower bound of the discrete log P(b)
    (Theis et al. 2016). A learned dequantiser (Flow++) returns its own
    log q(u | b) through the same interface: `call(bins, noise=None,
    training=None, seed=None) -> (x, log_q [B])`, where `seed` (two ints)
    makes the noise it draws stateless and reproducible (a resumed run draws
    what the uninterrupted run drew; see `draws_seeded_noise`).

    Args:
      num_bits: bits per pixel value, 1..8.
    """

    def __init__(self, num_bits: int, **kwargs):
        super().__init__(**kwargs)
        self.num_bits = int(num_bits)

    def call(self, bins, noise=None, training=None, seed=None):
        bins = tf.cast(bins, tf.float32)
        if noise is None:
            noise = uniform_noise(tf.shape(bins), self.num_bits, seed=seed)
        else:
            noise = check_noise(noise, bins.shape, self.num_bits, batch=tf.shape(bins)[0])
        num_bins = 2**self.num_bits
        x = bins / num_bins - 0.5 + noise
        num_dims = math.prod(bins.shape[1:])
        log_q = tf.fill(tf.shape(bins)[:1], num_dims * math.log(num_bins))
        return x, log_q

    def get_config(self):
        return {**super().get_config(), "num_bits": self.num_bits}
