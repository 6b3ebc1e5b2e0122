"""Images <-> the flow's continuous input: bit reduction, scaling, postprocessing."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = ["check_images", "check_labels", "quantize", "postprocess"]


def check_images(images, image_shape: Sequence[int]) -> tf.Tensor:
    """Validates a batch of images [B, H, W, C] with values in [0, 255].

    Accepts uint8 or any int / float dtype holding pixel values. Raises
    TypeError for other dtypes and ValueError for a wrong shape, NaN/Inf or
    values outside [0, 255] (checked eagerly; inside a `tf.function` the
    value checks become assertions that fail with the same message).
    """
    images = tf.convert_to_tensor(images)
    if not (images.dtype.is_integer or images.dtype.is_floating):
        raise TypeError(f"images must be uint8, int or float pixel values, got {images.dtype.name}")
    expected = tuple(int(d) for d in image_shape)
    if images.shape.rank != 4:
        raise ValueError(
            f"images must have shape [batch, {', '.join(map(str, expected))}] (rank 4), "
            f"got shape {images.shape}"
        )
    got = tuple(images.shape[1:])
    if any(g is not None and g != e for g, e in zip(got, expected)):
        hint = ""
        if got[:2] == expected[:2] and got[2] != expected[2]:
            hint = f" (wrong channel count: {got[2]} instead of {expected[2]})"
        raise ValueError(
            f"images must have shape [batch, {', '.join(map(str, expected))}], got "
            f"{images.shape}{hint}"
        )
    if images.dtype == tf.uint8:
        return images
    if tf.executing_eagerly():
        values = images.numpy()
        if images.dtype.is_floating and not np.all(np.isfinite(values)):
            raise ValueError("images contain NaN or Inf pixel values")
        if values.size and (values.min() < 0 or values.max() > 255):
            raise ValueError(
                f"pixel values must lie in [0, 255], got range [{values.min()}, {values.max()}]"
            )
        return images
    if images.dtype.is_floating:
        images = tf.debugging.assert_all_finite(images, "images contain NaN or Inf pixel values")
    checks = [
        tf.debugging.assert_greater_equal(
            images, tf.cast(0, images.dtype), message="pixel values must lie in [0, 255]"
        ),
        tf.debugging.assert_less_equal(
            images, tf.cast(255, images.dtype), message="pixel values must lie in [0, 255]"
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(images)


def check_labels(labels, num_classes: int, batch) -> tf.Tensor:
    """Validates integer class labels [B] in [0, num_classes)."""
    labels = tf.convert_to_tensor(labels)
    if not labels.dtype.is_integer:
        raise TypeError(f"labels must be integers, got {labels.dtype.name}")
    if labels.shape.rank != 1:
        raise ValueError(f"labels must have shape [batch], got {labels.shape}")
    labels = tf.cast(labels, tf.int32)
    if tf.executing_eagerly():
        values = labels.numpy()
        if values.shape[0] != int(batch):
            raise ValueError(f"got {values.shape[0]} labels for a batch of {int(batch)}")
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"labels must lie in [0, {num_classes}), got range [{values.min()}, {values.max()}]"
            )
        return labels
    checks = [
        tf.debugging.assert_equal(tf.shape(labels)[0], batch, message="one label per image"),
        tf.debugging.assert_greater_equal(labels, 0, message=f"labels must lie in [0, {num_classes})"),
        tf.debugging.assert_less(labels, num_classes, message=f"labels must lie in [0, {num_classes})"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(labels)


def quantize(images: tf.Tensor, num_bits: int) -> tf.Tensor:
    """Pixel values [0, 255] -> float bin indices 0 .. 2**num_bits - 1.

        bins = floor(x / 2**(8 - num_bits))
    """
    images = tf.cast(images, tf.float32)
    if num_bits < 8:
        images = tf.floor(images / 2 ** (8 - num_bits))
    return images


def postprocess(x: tf.Tensor, num_bits: int) -> tf.Tensor:
    """The flow's output -> uint8 images (OpenAI's `postprocess`):

        uint8(clip(floor((x + 0.5) * n_bins) * 256 / n_bins, 0, 255))
    """
    num_bins = 2**num_bits
    x = tf.floor((tf.cast(x, tf.float32) + 0.5) * num_bins) * (256.0 / num_bins)
    return tf.cast(tf.clip_by_value(x, 0.0, 255.0), tf.uint8)
