"""`tfrecord:GLOB`: OpenAI's TFRecord format (CelebA-HQ, LSUN, ImageNet).

Each record is a `tf.train.Example` with

    shape  int64 [3]       (H, W, C)
    data   bytes           the raw uint8 pixels, H * W * C of them
    label  int64 [1]       (optional; OpenAI writes 0 for unlabelled data)
    attr   int64 [40]      (optional; CelebA attributes as 0/1 or -1/1)

The two splits: a `{split}` in GLOB is replaced by "train" and "validation"
(OpenAI's layout: `celeba-tfr/{split}/*-r08-*.tfrecords`); else, when GLOB
has a path component "train" and the same files exist under "validation",
those; else every 20th record is held out as "test".

Labels of these files are not used for conditional training (their class
count is not stored); attributes are.
"""

from __future__ import annotations

import glob as globlib
import os

import numpy as np
import tensorflow as tf

from glow_tf.data.image_ops import center_crop_square, resize
from glow_tf.data.source import DataSource

__all__ = ["tfrecord_source", "write_openai_tfrecord", "CELEBA_ATTRIBUTES"]

HOLDOUT_EVERY = 20

# The 40 CelebA attributes in their standard order (list_attr_celeba.txt).
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)


def write_openai_tfrecord(path: str, images, labels=None, attributes=None) -> str:
    """Writes uint8 images [N, H, W, C] (and optional labels [N], attributes
    [N, A]) as one TFRecord file in OpenAI's format."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
    with tf.io.TFRecordWriter(path) as writer:
        for i, image in enumerate(images):
            feature = {
                "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=list(image.shape))),
                "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
                "label": tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[0 if labels is None else int(labels[i])])
                ),
            }
            if attributes is not None:
                feature["attr"] = tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[int(a) for a in attributes[i]])
                )
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    return path


def _split_files(pattern: str) -> dict[str, list[str] | None]:
    if "{split}" in pattern:
        return {
            "train": sorted(globlib.glob(pattern.replace("{split}", "train"))),
            "test": sorted(globlib.glob(pattern.replace("{split}", "validation"))),
        }
    train = sorted(globlib.glob(pattern))
    parts = pattern.split(os.sep)
    if "train" in parts:
        parts[len(parts) - 1 - parts[::-1].index("train")] = "validation"
        test = sorted(globlib.glob(os.sep.join(parts)))
        if test:
            return {"train": train, "test": test}
    return {"train": train, "test": None}


def _probe(path: str) -> tf.train.Example:
    for record in tf.data.TFRecordDataset(path).take(1):
        return tf.train.Example.FromString(record.numpy())
    raise ValueError(f"TFRecord file {path!r} holds no records")


def tfrecord_source(pattern: str, image_size: int | None = None) -> DataSource:
    """The `DataSource` of OpenAI-format TFRecord files (see the module docstring)."""
    files = _split_files(pattern)
    if not files["train"]:
        raise ValueError(f"tfrecord dataset: no files match {pattern!r}")
    example = _probe(files["train"][0])
    features = example.features.feature
    for key in ("shape", "data"):
        if key not in features:
            raise ValueError(
                f"{files['train'][0]!r} is not in OpenAI's TFRecord format (no {key!r} feature; "
                "expected 'shape', 'data' and optionally 'label', 'attr')"
            )
    stored_shape = tuple(int(d) for d in features["shape"].int64_list.value)
    if len(stored_shape) != 3:
        raise ValueError(f"'shape' of {files['train'][0]!r} is {stored_shape}, expected (H, W, C)")
    num_attributes = len(features["attr"].int64_list.value) if "attr" in features else 0
    attribute_names = (
        CELEBA_ATTRIBUTES
        if num_attributes == len(CELEBA_ATTRIBUTES)
        else tuple(f"attr_{i}" for i in range(num_attributes))
    )
    height, width, channels = stored_shape
    size = image_size
    if size is None and height != width:
        size = min(height, width)
    image_shape = (size, size, channels) if size else stored_shape
    spec = {
        "shape": tf.io.FixedLenFeature([3], tf.int64),
        "data": tf.io.FixedLenFeature([], tf.string),
    }
    if num_attributes:
        spec["attr"] = tf.io.FixedLenFeature([num_attributes], tf.int64)

    def parse(record):
        parsed = tf.io.parse_single_example(record, spec)
        image = tf.reshape(tf.io.decode_raw(parsed["data"], tf.uint8), parsed["shape"])
        if size:
            image = resize(center_crop_square(image), size)
        image.set_shape(image_shape)
        out = {"image": image}
        if num_attributes:
            out["attributes"] = tf.cast(parsed["attr"] > 0, tf.int32)
        return out

    def examples(split):
        paths = files[split] if files["test"] is not None else files["train"]
        if split == "test" and not paths:
            raise ValueError(f"tfrecord dataset: no validation files for {pattern!r}")
        dataset = tf.data.TFRecordDataset(paths)
        if files["test"] is None:
            dataset = (
                dataset.enumerate()
                .filter(
                    (lambda i, _: i % HOLDOUT_EVERY == 0)
                    if split == "test"
                    else (lambda i, _: i % HOLDOUT_EVERY != 0)
                )
                .map(lambda _, record: record)
            )
        return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return DataSource(
        name=f"tfrecord:{pattern}",
        image_shape=image_shape,
        num_classes=0,
        attribute_names=attribute_names,
        examples=examples,
        num_examples={"train": None, "test": None},
    )
