"""Datasets of tensorflow-datasets, shaped as OpenAI trained on them.

    mnist, fashion_mnist      28x28x1 zero-padded to 32x32 (OpenAI), 10 classes
    cifar10                   32x32x3, 10 classes
    celeb_a                   centre 148x148 crop resized to 64 (or --image-size), 40 attributes
    imagenet_resized/32x32    1000 classes (test split: "validation")
    imagenet_resized/64x64
    lsun/<category>           centre square crop resized to 64 (test split: "validation")

The first use downloads and prepares the dataset in `data_dir` (tfds'
default: ~/tensorflow_datasets), as `tfds.load` does.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from glow_tf.data.image_ops import center_crop, center_crop_square, pad_to, resize
from glow_tf.data.source import DataSource

__all__ = ["TFDS_DATASETS", "tfds_source"]


@dataclasses.dataclass(frozen=True)
class _Spec:
    native_size: int | None  # square size of the stored images, None if they vary
    channels: int
    default_size: int
    num_classes: int = 0
    test_split: str = "test"
    geometry: str = "resize"  # "pad" (MNIST), "celeba" (148 crop) or "resize"
    attributes: bool = False


TFDS_DATASETS = {
    "mnist": _Spec(28, 1, 32, num_classes=10, geometry="pad"),
    "fashion_mnist": _Spec(28, 1, 32, num_classes=10, geometry="pad"),
    "cifar10": _Spec(32, 3, 32, num_classes=10),
    "celeb_a": _Spec(None, 3, 64, test_split="test", geometry="celeba", attributes=True),
    "imagenet_resized/32x32": _Spec(32, 3, 32, num_classes=1000, test_split="validation"),
    "imagenet_resized/64x64": _Spec(64, 3, 64, num_classes=1000, test_split="validation"),
}
_LSUN = _Spec(None, 3, 64, test_split="validation")
_CELEBA_CROP = 148


def _spec(name: str) -> _Spec:
    if name.startswith("lsun/"):
        if not name[len("lsun/") :]:
            raise ValueError("lsun needs a category, e.g. lsun/bedroom or lsun/church_outdoor")
        return _LSUN
    return TFDS_DATASETS[name]


def _geometry(spec: _Spec, size: int):
    def shape(image):
        if spec.geometry == "pad" and size >= spec.native_size:
            image = pad_to(image, size)
        elif spec.geometry == "celeba":
            image = resize(center_crop(image, _CELEBA_CROP, _CELEBA_CROP), size)
        elif spec.native_size != size:
            image = resize(center_crop_square(image), size)
        image.set_shape([size, size, spec.channels])
        return image

    return shape


def tfds_source(
    name: str, image_size: int | None = None, data_dir: str | None = None
) -> DataSource:
    """The `DataSource` of a tensorflow-datasets dataset (see the module docstring)."""
    import tensorflow_datasets as tfds

    spec = _spec(name)
    size = image_size or spec.default_size
    shape = _geometry(spec, size)
    builder = tfds.builder(name, data_dir=data_dir)
    attribute_names = tuple(builder.info.features["attributes"].keys()) if spec.attributes else ()
    splits = {"train": "train", "test": spec.test_split}

    def examples(split):
        try:
            dataset = tfds.load(name, split=splits[split], data_dir=data_dir, shuffle_files=False)
        except Exception as error:  # tfds raises many types for a failed download
            raise ValueError(
                f"could not load tensorflow-datasets {name!r} ({type(error).__name__}: {error}); "
                "check the network or pass --data-dir with a prepared copy"
            ) from error

        def convert(example):
            out = {"image": shape(example["image"])}
            if spec.num_classes:
                out["label"] = tf.cast(example["label"], tf.int32)
            if attribute_names:
                out["attributes"] = tf.stack(
                    [tf.cast(example["attributes"][key], tf.int32) for key in attribute_names]
                )
            return out

        return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    counts = {}
    for split, tfds_split in splits.items():
        try:
            counts[split] = builder.info.splits[tfds_split].num_examples or None
        except (KeyError, ValueError):
            counts[split] = None
    return DataSource(
        name=name,
        image_shape=(size, size, spec.channels),
        num_classes=spec.num_classes,
        attribute_names=attribute_names,
        examples=examples,
        num_examples=counts,
    )
