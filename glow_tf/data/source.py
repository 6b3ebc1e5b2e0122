"""What a dataset is to the training code: a `DataSource`.

A source describes its images (shape, labels, attributes) and yields
unbatched examples as dicts, the same for every dataset:

    {"image": uint8 [H, W, C],
     "label": int32 []            (sources with classes),
     "attributes": int32 [A]}     (sources with binary attributes, 0/1)

`glow_tf.data.pipeline` batches them for `GlowModel.fit`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

__all__ = ["DataSource", "SPLITS"]

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class DataSource:
    """A dataset of images, split in train and test.

    Attributes:
      name: the spec it was loaded from, e.g. "digits" or "folder:/data/faces".
      image_shape: (H, W, C) of every image.
      num_classes: number of classes of "label", 0 if the source has no labels.
      attribute_names: names of the binary "attributes", () if none.
      examples: split name ("train" or "test") -> a fresh unbatched
        `tf.data.Dataset` of example dicts (see the module docstring), in a
        fixed order (the pipeline shuffles).
      num_examples: split name -> number of examples, or None if unknown.
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    attribute_names: tuple[str, ...]
    examples: Callable[[str], tf.data.Dataset]
    num_examples: dict[str, int | None] = dataclasses.field(default_factory=dict)

    def split(self, split: str) -> tf.data.Dataset:
        """The unbatched examples of `split` ("train" or "test")."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return self.examples(split)

    @property
    def has_labels(self) -> bool:
        return self.num_classes > 0

    @property
    def has_attributes(self) -> bool:
        return bool(self.attribute_names)
