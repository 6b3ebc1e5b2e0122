"""Geometry of dataset images: centre crops, resizing, padding (uint8 in, uint8 out)."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["center_crop", "center_crop_square", "resize", "pad_to"]


def center_crop(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """The central height x width window of an image [H, W, C]."""
    shape = tf.shape(image)
    top = (shape[0] - height) // 2
    left = (shape[1] - width) // 2
    return tf.image.crop_to_bounding_box(image, top, left, height, width)


def center_crop_square(image: tf.Tensor) -> tf.Tensor:
    """The largest central square of an image [H, W, C]."""
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    return center_crop(image, side, side)


def resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """Resizes [H, W, C] to [size, size, C], bilinear with an antialiasing
    filter when shrinking (close to OpenAI's "area downsampled" data), back to uint8."""
    resized = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def pad_to(image: tf.Tensor, size: int) -> tf.Tensor:
    """Zero-pads an image [h, w, C] (h, w <= size) evenly to [size, size, C]
    (OpenAI pads 28x28 MNIST to 32x32)."""
    shape = tf.shape(image)
    top = (size - shape[0]) // 2
    left = (size - shape[1]) // 2
    return tf.image.pad_to_bounding_box(image, top, left, size, size)
