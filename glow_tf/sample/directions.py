"""Attribute directions in latent space, and images moved along them.

    attribute_direction  mean(z | attribute) - mean(z | not attribute)
    save_direction       the direction [D] and its metadata -> .npz
    load_direction       .npz -> (direction, metadata), checked against the model
    manipulation         decode(z + s * direction) for a range of strengths s

References:
  Kingma & Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039 (section 5.3)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from glow_tf.sample.images import as_uint8_array
from glow_tf.sample.latent_space import encode_flat

__all__ = ["attribute_direction", "save_direction", "load_direction", "manipulation"]


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
    return as_uint8_array(model.decode(tf.constant(moved), y=labels))
