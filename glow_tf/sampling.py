"""The paper's qualitative experiments on a trained `GlowModel`, as images.

    temperature_grid     one row of samples per temperature T (eps ~ N(0, T^2 I))
    reconstructions      images next to decode(encode(images))
    interpolation        decode((1 - a) z_1 + a z_2) for a in [0, 1]
    attribute_direction  mean(z | attribute) - mean(z | not attribute)
    manipulation         decode(z + s * direction) for a range of strengths s

Latents z are the flat standardised latents of `GlowModel.encode` ([B, D]).
Every function returns uint8 images; `image_grid` tiles them and `write_png`
writes the tile with `tf.io.encode_png`.

References:
  Kingma & Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039 (sections 5.2-5.3)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = [
    "image_grid",
    "write_png",
    "temperature_grid",
    "reconstructions",
    "interpolation",
    "encode_flat",
    "attribute_direction",
    "save_direction",
    "load_direction",
    "manipulation",
]

DEFAULT_TEMPERATURES = (0.5, 0.7, 1.0)


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


def _as_numpy_uint8(images) -> np.ndarray:
    return np.asarray(images.numpy() if hasattr(images, "numpy") else images, np.uint8)


def temperature_grid(
    model,
    temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
    per_row: int = 8,
    seed: int = 0,
    y=None,
) -> np.ndarray:
    """Samples, one row per temperature, the same eps in every row.

    Row t holds decode(T_t * eps_j), j < per_row, for one fixed draw
    eps ~ N(0, I); for a class-conditional model `y` gives the labels of the
    columns (default: 0, 1, 2, ... cycling over the classes).

    Returns:
      uint8 [len(temperatures) * per_row, H, W, C].
    """
    config = model.config
    if config.conditional and y is None:
        y = np.arange(per_row) % config.num_classes
    eps = tf.random.stateless_normal([per_row, config.num_dims], seed=[seed, 0])
    rows = [_as_numpy_uint8(model.decode(eps, y=y, temperature=float(t))) for t in temperatures]
    return np.concatenate(rows, axis=0)


def encode_flat(model, images, y=None, batch_size: int = 256, seed: int = 0) -> np.ndarray:
    """Flat latents [N, D] of uint8 images, in batches, with a fixed
    dequantisation noise (the centre of each bin) so results are reproducible."""
    config = model.config
    images = np.asarray(images)
    flats = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        noise = np.full(batch.shape, 0.5 / config.num_bins, np.float32)
        labels = None if y is None else np.asarray(y)[start : start + batch_size]
        flats.append(model.encode(batch, y=labels, noise=noise).flat.numpy())
    if not flats:
        raise ValueError("encode_flat got no images")
    return np.concatenate(flats, axis=0)


def reconstructions(model, images, y=None) -> np.ndarray:
    """Pairs (image, decode(encode(image))): uint8 [2N, H, W, C], interleaved
    so that a grid with an even number of columns shows each pair side by side."""
    images = np.asarray(images)
    flat = encode_flat(model, images, y)
    decoded = _as_numpy_uint8(model.decode(tf.constant(flat), y=y))
    step = 256 // model.config.num_bins
    originals = (images.astype(np.int32) // step * step).astype(np.uint8)
    pairs = np.stack([originals, decoded], axis=1)
    return pairs.reshape((-1,) + images.shape[1:])


def interpolation(model, first, second, steps: int = 8, y=None) -> np.ndarray:
    """decode((1 - a) z_1 + a z_2) for `steps` values of a from 0 to 1, where
    z_i = encode(image_i): uint8 [steps, H, W, C], a strip from first to second.

    `first` and `second` are single images [H, W, C]; a conditional model
    needs one label `y` for both.
    """
    if steps < 2:
        raise ValueError(f"an interpolation needs steps >= 2, got {steps}")
    images = np.stack([np.asarray(first), np.asarray(second)])
    labels = None if y is None else np.array([y, y])
    z = encode_flat(model, images, labels)
    alphas = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    path = (1.0 - alphas) * z[0] + alphas * z[1]
    strip_labels = None if y is None else np.full([steps], y)
    return _as_numpy_uint8(model.decode(tf.constant(path), y=strip_labels))


def attribute_direction(model, images, has_attribute, y=None, batch_size: int = 256) -> np.ndarray:
    """The paper's manipulation vector: mean(z | attribute) - mean(z | not attribute).

    Args:
      model: a trained `GlowModel`.
      images: uint8 [N, H, W, C].
      has_attribute: bool [N] (e.g. CelebA "Smiling", or label == 3).
      y: labels for a class-conditional model.

    Returns:
      float32 [D], in the flat latent space of `GlowModel.encode`.
    """
    has_attribute = np.asarray(has_attribute).astype(bool).reshape(-1)
    if has_attribute.shape[0] != len(images):
        raise ValueError(f"got {has_attribute.shape[0]} attribute values for {len(images)} images")
    if has_attribute.all() or not has_attribute.any():
        raise ValueError(
            "an attribute direction needs images with and without the attribute; got "
            f"{int(has_attribute.sum())} of {len(has_attribute)} with it"
        )
    z = encode_flat(model, images, y, batch_size)
    return (z[has_attribute].mean(axis=0) - z[~has_attribute].mean(axis=0)).astype(np.float32)


def save_direction(path: str, direction, **metadata) -> str:
    """Saves a direction [D] and JSON-able metadata (attribute name, model
    config, counts) to an .npz file."""
    direction = np.asarray(direction, np.float32)
    if direction.ndim != 1:
        raise ValueError(f"a direction must have shape [D], got {direction.shape}")
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    np.savez(path, direction=direction, metadata=json.dumps(metadata))
    return path


def load_direction(path: str, num_dims: int | None = None) -> tuple[np.ndarray, dict]:
    """(direction [D], metadata) from `save_direction`'s file, checked against
    the model's `num_dims` when given."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no direction file at {path!r}")
    with np.load(path) as data:
        if "direction" not in data.files:
            raise ValueError(f"{path!r} is not a direction file (no 'direction' array)")
        direction = data["direction"]
        metadata = json.loads(str(data["metadata"])) if "metadata" in data.files else {}
    if num_dims is not None and direction.shape != (num_dims,):
        raise ValueError(
            f"the direction in {path!r} has shape {direction.shape}, but this model's "
            f"latents have {num_dims} dimensions (computed with another model?)"
        )
    return direction, metadata


def manipulation(model, images, direction, strengths: Sequence[float], y=None) -> np.ndarray:
    """decode(encode(image) + s * direction) for each image and strength s.

    Returns:
      uint8 [N * len(strengths), H, W, C]: one strip of len(strengths) images
      per input image, row after row.
    """
    direction = np.asarray(direction, np.float32)
    config = model.config
    if direction.shape != (config.num_dims,):
        raise ValueError(f"direction must have shape [{config.num_dims}], got {direction.shape}")
    strengths = np.asarray(strengths, np.float32)
    z = encode_flat(model, images, y)
    moved = z[:, None, :] + strengths[None, :, None] * direction[None, None, :]
    moved = moved.reshape(-1, config.num_dims)
    labels = None if y is None else np.repeat(np.asarray(y), len(strengths))
    return _as_numpy_uint8(model.decode(tf.constant(moved), y=labels))
