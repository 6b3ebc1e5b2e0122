"""`folder:PATH`: any tree of PNG/JPEG files as a dataset.

    PATH/train/..., PATH/test/... (or validation/)   used as the two splits
    otherwise                                          every 20th file (sorted) is "test"
    <split root>/<class>/<image>                       one sub-directory per class: labels

Images are decoded to `channels` channels, centre-cropped to a square and
resized to `image_size`. Files that are not PNG/JPEG (by their first bytes)
are skipped and counted when the folder is listed; files that still fail to
decode are dropped by the pipeline.
"""

from __future__ import annotations

import os

import tensorflow as tf

from glow_tf.data.image_ops import center_crop_square, resize
from glow_tf.data.source import DataSource

__all__ = ["folder_source", "list_images", "IMAGE_EXTENSIONS", "DEFAULT_FOLDER_IMAGE_SIZE"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
DEFAULT_FOLDER_IMAGE_SIZE = 64
HOLDOUT_EVERY = 20
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def _is_image(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError:
        return False
    return any(head.startswith(signature) for signature in _SIGNATURES)


def list_images(root: str) -> tuple[list[str], list[str]]:
    """(readable image files, skipped files) under `root`, sorted; only files
    with a PNG/JPEG extension are considered, and they must start with a
    PNG/JPEG signature."""
    found, skipped = [], []
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                path = os.path.join(directory, name)
                (found if _is_image(path) else skipped).append(path)
    return found, skipped


def _class_of(path: str, root: str) -> str | None:
    parts = os.path.relpath(path, root).split(os.sep)
    return parts[0] if len(parts) == 2 else None


def folder_source(path: str, image_size: int | None = None, channels: int = 3) -> DataSource:
    """The `DataSource` of a folder of images (see the module docstring)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if not os.path.isdir(path):
        raise ValueError(f"folder dataset: {path!r} is not a directory")
    size = image_size or DEFAULT_FOLDER_IMAGE_SIZE
    split_dirs = {"train": os.path.join(path, "train")}
    for name in ("test", "validation"):
        if os.path.isdir(os.path.join(path, name)):
            split_dirs["test"] = os.path.join(path, name)
            break
    files, skipped = {}, []
    if os.path.isdir(split_dirs["train"]) and "test" in split_dirs:
        roots = split_dirs
        for split, root in roots.items():
            files[split], bad = list_images(root)
            skipped += bad
    else:
        roots = {"train": path, "test": path}
        every, bad = list_images(path)
        skipped += bad
        files["test"] = every[::HOLDOUT_EVERY]
        files["train"] = [f for i, f in enumerate(every) if i % HOLDOUT_EVERY]
    if skipped:
        shown = ", ".join(os.path.relpath(f, path) for f in skipped[:3])
        print(
            f"folder dataset {path}: skipped {len(skipped)} unreadable file(s) that are not "
            f"PNG/JPEG images ({shown}{', ...' if len(skipped) > 3 else ''})",
            flush=True,
        )
    if not files["train"]:
        raise ValueError(
            f"folder dataset {path!r} has no readable PNG/JPEG images for training"
            + (f" ({len(skipped)} unreadable file(s) skipped)" if skipped else "")
        )
    if not files["test"]:
        raise ValueError(
            f"folder dataset {path!r} has no test images (add more images or a test/ folder)"
        )

    classes = sorted({_class_of(f, roots["train"]) for f in files["train"]} - {None})
    all_in_classes = classes and all(
        _class_of(f, roots[split]) in classes for split in files for f in files[split]
    )
    classes = classes if all_in_classes and len(classes) > 1 else []
    index = {name: i for i, name in enumerate(classes)}

    def decode(file_path):
        data = tf.io.read_file(file_path)
        image = tf.io.decode_image(data, channels=channels, expand_animations=False, dtype=tf.uint8)
        image = resize(center_crop_square(image), size)
        image.set_shape([size, size, channels])
        return image

    def examples(split):
        paths = files[split]
        columns = {"path": paths}
        if classes:
            columns["label"] = [index[_class_of(f, roots[split])] for f in paths]
        dataset = tf.data.Dataset.from_tensor_slices(columns)

        def load(example):
            out = {"image": decode(example["path"])}
            if classes:
                out["label"] = tf.cast(example["label"], tf.int32)
            return out

        dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.ignore_errors()

    return DataSource(
        name=f"folder:{path}",
        image_shape=(size, size, channels),
        num_classes=len(classes),
        attribute_names=(),
        examples=examples,
        num_examples={split: len(names) for split, names in files.items()},
    )
