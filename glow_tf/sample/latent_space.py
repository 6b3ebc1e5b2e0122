"""Sampling, encoding and walking the latent space of a trained `GlowModel`.

    temperature_grid   one row of samples per temperature T (eps ~ N(0, T^2 I))
    encode_flat        images -> flat latents z [N, D], bin-centre dequantisation
    reconstructions    images next to decode(encode(images))
    interpolation      decode((1 - a) z_1 + a z_2) for a in [0, 1]

Latents z are the flat standardised latents of `GlowModel.encode` ([B, D]).
Every image-returning function returns uint8 images.

References:
  Kingma & Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039 (sections 5.2-5.3)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from glow_tf.data.dequantize import bin_centre_noise
from glow_tf.sample.images import as_uint8_array

__all__ = [
    "DEFAULT_TEMPERATURES",
    "temperature_grid",
    "encode_flat",
    "reconstructions",
    "interpolation",
]

DEFAULT_TEMPERATURES = (0.5, 0.7, 1.0)


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
    rows = [as_uint8_array(model.decode(eps, y=y, temperature=float(t))) for t in temperatures]
    return np.concatenate(rows, axis=0)


def encode_flat(model, images, y=None, batch_size: int = 256, seed: int = 0) -> np.ndarray:
    """Flat latents [N, D] of uint8 images, in batches, dequantised at each
    bin's centre (`bin_centre_noise`) so results are reproducible."""
    config = model.config
    images = np.asarray(images)
    flats = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        noise = bin_centre_noise(batch, config.num_bits)
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
    decoded = as_uint8_array(model.decode(tf.constant(flat), y=y))
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
    return as_uint8_array(model.decode(tf.constant(path), y=strip_labels))
