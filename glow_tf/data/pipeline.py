"""Batched `tf.data` pipelines from a `DataSource`, ready for `GlowModel.fit`."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from glow_tf.data.source import DataSource

__all__ = ["training_dataset", "evaluation_dataset", "fixed_batch", "model_inputs"]

_AUTOTUNE = tf.data.AUTOTUNE


def model_inputs(example: dict, labels: bool):
    """An example dict -> what `GlowModel` takes: images, or (images, labels)."""
    if labels:
        return example["image"], example["label"]
    return example["image"]


def _check_labels(source: DataSource, labels: bool):
    if labels and not source.has_labels:
        raise ValueError(
            f"dataset {source.name!r} has no class labels, so it cannot train a "
            "class-conditional model; drop the conditional option (num_classes=0)"
        )


def training_dataset(
    source: DataSource,
    batch_size: int,
    labels: bool = False,
    shuffle_buffer: int = 10_000,
    seed: int | None = 0,
    repeat: bool = True,
) -> tf.data.Dataset:
    """Shuffled, repeated batches of the train split.

    The examples are repeated, then shuffled as one stream with a fixed seed,
    so every iterator of this dataset (Keras may create more than one, and
    every worker of a multi-worker run creates its own before sharding)
    yields the same sequence. `drop_remainder`: every batch has `batch_size`
    images, so replicas get equal shares.
    """
    _check_labels(source, labels)
    dataset = source.split("train")
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
    dataset = dataset.batch(batch_size, drop_remainder=True, num_parallel_calls=_AUTOTUNE)
    dataset = dataset.map(
        lambda example: model_inputs(example, labels), num_parallel_calls=_AUTOTUNE
    )
    return dataset.prefetch(_AUTOTUNE)


def evaluation_dataset(
    source: DataSource,
    batch_size: int,
    labels: bool = False,
    num_examples: int | None = None,
) -> tf.data.Dataset:
    """Batches of the test split in a fixed order (the first `num_examples`
    if given)."""
    _check_labels(source, labels)
    dataset = source.split("test")
    if num_examples is not None:
        dataset = dataset.take(num_examples)
    dataset = dataset.batch(batch_size, num_parallel_calls=_AUTOTUNE)
    dataset = dataset.map(
        lambda example: model_inputs(example, labels), num_parallel_calls=_AUTOTUNE
    )
    return dataset.prefetch(_AUTOTUNE)


def fixed_batch(
    source: DataSource, split: str, size: int, seed: int = 0, shuffle_buffer: int = 2048
) -> dict[str, np.ndarray]:
    """`size` examples of a split as numpy arrays, the same on every call and
    every worker (a seeded shuffle of the first `shuffle_buffer` examples, at least `size`).

    Used for the data-dependent init batch and the fixed batches of samples,
    reconstructions and the invertibility check.
    """
    buffer = max(shuffle_buffer, size)
    dataset = source.split(split).shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
    batch = next(iter(dataset.batch(size).take(1)), None)
    if batch is None:
        raise ValueError(f"dataset {source.name!r} has no {split} examples")
    return {key: value.numpy() for key, value in batch.items()}
