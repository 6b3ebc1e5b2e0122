"""In-graph checks of served inputs: a bad request fails with InvalidArgument, never silently.

A SavedModel signature declares its input shapes and dtypes, but neither TF
Serving nor TensorFlow's own signature functions check a fed tensor's shape
against them. These checks are graph ops that run on every request:

    shapes       tf.ensure_shape (an EnsureShape op, kept by Grappler), e.g.
                 "Shape of tensor eps [3,60] is not compatible with expected shape [?,64]"
    values       tf.debugging asserts with a readable message, e.g.
                 "temperature must be a finite number >= 0"

Dtypes are checked by the runtime itself ("expected a float tensor but is a
double tensor"). Label ranges and counts are checked by `GlowModel` itself
(`glow_tf.data.check_labels`, which asserts in graph mode).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

__all__ = [
    "check_shape",
    "check_finite",
    "check_temperature",
    "check_num_samples",
    "check_noise_range",
]


def check_shape(tensor: tf.Tensor, shape: Sequence[int | None]) -> tf.Tensor:
    """`tensor`, with its run-time shape checked against `shape` (None = any size)."""
    return tf.ensure_shape(tensor, shape)


def check_finite(tensor: tf.Tensor, name: str) -> tf.Tensor:
    """`tensor`, failing on NaN or Inf values."""
    return tf.debugging.assert_all_finite(tensor, f"{name} must not contain NaN or Inf")


def check_temperature(temperature: tf.Tensor) -> tf.Tensor:
    """A float32 scalar temperature T >= 0 (finite); T = 0 decodes the zero latents."""
    message = "temperature must be a finite number >= 0"
    temperature = tf.debugging.assert_all_finite(temperature, message)
    with tf.control_dependencies(
        [tf.debugging.assert_greater_equal(temperature, 0.0, message=message)]
    ):
        return tf.identity(temperature)


def check_num_samples(
    num_samples: tf.Tensor, max_num_samples: int, batch_size: int | None = None
) -> tf.Tensor:
    """An int32 scalar in [1, max_num_samples] (and equal to a fixed batch size)."""
    checks = [
        tf.debugging.assert_greater_equal(num_samples, 1, message="num_samples must be >= 1"),
        tf.debugging.assert_less_equal(
            num_samples,
            max_num_samples,
            message=f"num_samples must be <= {max_num_samples} (this export's cap)",
        ),
    ]
    if batch_size is not None:
        checks.append(
            tf.debugging.assert_equal(
                num_samples,
                batch_size,
                message=f"this export has a fixed batch size: num_samples must be {batch_size}",
            )
        )
    with tf.control_dependencies(checks):
        return tf.identity(num_samples)


def check_noise_range(noise: tf.Tensor, num_bits: int) -> tf.Tensor:
    """Dequantisation noise u in [0, 1 / 2**num_bits) (NaN fails too)."""
    high = 1.0 / 2**num_bits
    message = f"noise must lie in [0, {high}) (1 / n_bins of this {num_bits}-bit model)"
    checks = [
        tf.debugging.assert_greater_equal(noise, 0.0, message=message),
        tf.debugging.assert_less(noise, high, message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(noise)
