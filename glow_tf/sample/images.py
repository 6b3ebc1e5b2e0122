"""Tiling uint8 images into one grid and writing it as PNG."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

__all__ = ["image_grid", "write_png", "as_uint8_array"]


def image_grid(
    images, columns: int, padding: int = 1, pad_value: int = 128, scale: int = 1
) -> np.ndarray:
    """Tiles uint8 images [N, H, W, C] row by row into one image.

    Missing cells of the last row stay at `pad_value`; `scale` repeats every
    pixel (nearest neighbour) so small images stay visible.

    Returns:
      uint8 [rows * (H + padding) + padding, columns * (W + padding) + padding, C] * scale.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(
            f"image_grid needs uint8 images [N, H, W, C], got {images.dtype} {images.shape}"
        )
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    count, height, width, channels = images.shape
    rows = max(1, -(-count // columns))
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        pad_value,
        np.uint8,
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = image
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    return grid


def write_png(path: str, image) -> str:
    """Writes one uint8 image [H, W, C] (C = 1, 3 or 4) as PNG; returns the path."""
    image = np.asarray(image)
    if image.ndim != 3 or image.dtype != np.uint8 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"write_png needs a uint8 image [H, W, 1|3|4], got {image.dtype} {image.shape}"
        )
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(image))
    return path


def as_uint8_array(images) -> np.ndarray:
    """A tensor or array of images as a numpy uint8 array."""
    return np.asarray(images.numpy() if hasattr(images, "numpy") else images, np.uint8)
