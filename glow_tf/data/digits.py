"""The built-in dataset: scikit-learn's 1,797 real 8x8 handwritten digits."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from glow_tf.data.source import DataSource

__all__ = ["digits_arrays", "digits_source", "DIGITS_TEST_SIZE"]

DIGITS_TEST_SIZE = 297
_SPLIT_SEED = 0


def digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 8, 8, 1], labels int32 [N]) of one split.

    The values 0..16 of `sklearn.datasets.load_digits` become
    round(v * 255 / 16). A fixed permutation (seed 0) holds out 297 images
    as "test"; the other 1,500 are "train".
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., np.newaxis]
    labels = digits.target.astype(np.int32)
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(images))
    if split == "test":
        index = order[:DIGITS_TEST_SIZE]
    elif split == "train":
        index = order[DIGITS_TEST_SIZE:]
    else:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    return images[index], labels[index]


def digits_source() -> DataSource:
    """The digits as a `DataSource`: 8x8x1 images with 10 classes, no network."""

    def examples(split):
        images, labels = digits_arrays(split)
        return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})

    return DataSource(
        name="digits",
        image_shape=(8, 8, 1),
        num_classes=10,
        attribute_names=(),
        examples=examples,
        num_examples={"train": 1797 - DIGITS_TEST_SIZE, "test": DIGITS_TEST_SIZE},
    )
