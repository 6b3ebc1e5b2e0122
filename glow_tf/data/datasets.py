"""Dataset specs -> `DataSource`s: the one entry point of the training code.

digits                      scikit-learn's 8x8 digits (built in, no network)
mnist, fashion_mnist        tensorflow-datasets, padded to 32x32 like OpenAI
cifar10                     tensorflow-datasets, 32x32x3, 10 classes
celeb_a                     tensorflow-datasets, centre 148x148 crop resized, 40 attributes
imagenet_resized/32x32      tensorflow-datasets, 1000 classes
imagenet_resized/64x64
lsun/<category>             tensorflow-datasets, centre crop resized
folder:PATH                 any tree of PNG/JPEG files, centre crop resized
tfrecord:GLOB               OpenAI's TFRecord format (CelebA-HQ, LSUN, ImageNet)
"""

from __future__ import annotations

from glow_tf.data.digits import digits_source
from glow_tf.data.source import DataSource

__all__ = ["load_source", "DATASET_NAMES"]

DATASET_NAMES = (
    "digits",
    "mnist",
    "fashion_mnist",
    "cifar10",
    "celeb_a",
    "imagenet_resized/32x32",
    "imagenet_resized/64x64",
    "lsun/<category>",
    "folder:PATH",
    "tfrecord:GLOB",
)


def load_source(
    spec: str,
    image_size: int | None = None,
    data_dir: str | None = None,
    channels: int | None = None,
) -> DataSource:
    """The `DataSource` of a dataset spec (see the module docstring).

    Args:
      spec: dataset name or "folder:PATH" / "tfrecord:GLOB".
      image_size: square size to crop/resize (or pad) images to; None keeps
        the dataset's default size.
      data_dir: where tensorflow-datasets keeps (or downloads) its data.
      channels: 1 or 3 for folders of images (default 3).

    Raises:
      ValueError: for an unknown spec, or a dataset that cannot be used as
        asked (empty folder, no files matching the glob, ...).
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"dataset must be a non-empty string, got {spec!r}")
    if spec == "digits":
        if image_size not in (None, 8):
            raise ValueError(f"the digits are 8x8 images; image_size {image_size} is not supported")
        return digits_source()
    if spec.startswith("folder:"):
        from glow_tf.data.folder import folder_source

        return folder_source(spec[len("folder:") :], image_size=image_size, channels=channels or 3)
    if spec.startswith("tfrecord:"):
        from glow_tf.data.tfrecord import tfrecord_source

        return tfrecord_source(spec[len("tfrecord:") :], image_size=image_size)
    from glow_tf.data.tfds_sources import TFDS_DATASETS, tfds_source

    if spec in TFDS_DATASETS or spec.startswith("lsun/"):
        return tfds_source(spec, image_size=image_size, data_dir=data_dir)
    raise ValueError(f"unknown dataset {spec!r}; expected one of: {', '.join(DATASET_NAMES)}")
