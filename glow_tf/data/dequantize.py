"""Dequantisation: turn discrete pixel bins into a continuous variable."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["uniform_noise", "bin_centre_noise", "check_noise"]


def uniform_noise(shape, num_bits: int, seed=None) -> tf.Tensor:
    """u ~ U[0, 1 / 2**num_bits) of the given shape (OpenAI's dequantisation).

    With a two-int `seed` the draw is stateless and reproducible.
    """
    high = 1.0 / 2**num_bits
    if seed is None:
        return tf.random.uniform(shape, 0.0, high)
    return tf.random.stateless_uniform(shape, seed=seed, minval=0.0, maxval=high)


def check_noise(noise, shape, num_bits: int) -> tf.Tensor:
    """Validates a given dequantisation noise: float, the images' shape, in [0, 1/n_bins)."""
    noise = tf.convert_to_tensor(noise)
    if not noise.dtype.is_floating:
        raise TypeError(f"noise must be a float tensor, got {noise.dtype.name}")
    noise = tf.cast(noise, tf.float32)
    if noise.shape.rank is not None and tuple(noise.shape[1:]) != tuple(shape[1:]):
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
    with tf.control_dependencies(checks):
        return tf.identity(noise)


def bin_centre_noise(images, num_bits: int) -> tf.Tensor:
    """The deterministic dequantisation u = 0.5 / n_bins (each bin's centre), float32
    of the images' shape: the same image always gives the same flow input."""
    return tf.fill(tf.shape(images), tf.constant(0.5 / 2**num_bits, tf.float32))
