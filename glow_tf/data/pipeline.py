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
    position: int = 0,
) -> tf.data.Dataset:
    """Shuffled, repeated batches of the train split, from batch `position` on.

    The stream is a sequence of passes over the train split; each pass is
    cut into windows of `shuffle_buffer` consecutive examples and every
    window is permuted by a stateless draw seeded by (seed, pass, window)
    (so nothing depends on TensorFlow's global seed or on how many passes an
    iterator made before). The passes are batched as one stream (a batch may
    span two passes):

        stream = shuffled pass 0 ++ shuffled pass 1 ++ ...
        batch n = stream[n * batch_size : (n + 1) * batch_size]

    so every iterator of this dataset (Keras may create more than one, and
    every worker of a multi-worker run creates its own before sharding)
    yields the same sequence, and `position=n` yields exactly the batches
    n, n + 1, ... of the stream from 0: a resumed run sees the batches the
    uninterrupted run would have seen. Skipping reads the skipped examples
    of the current pass (at most one pass; a source of unknown size is
    counted once). `drop_remainder`: every batch has `batch_size` images, so
    replicas get equal shares. `seed=None`: an unseeded shuffle (not
    reproducible, not resumable to the same batches).
    """
    _check_labels(source, labels)
    if position < 0:
        raise ValueError(f"position must be >= 0, got {position}")
    split = source.split("train")
    first_pass, skipped = 0, position * batch_size
    if skipped and repeat:
        first_pass, skipped = divmod(skipped, _examples_per_pass(source, split))
    passes = tf.data.Dataset.range(first_pass, _NUM_PASSES if repeat else 1)
    if seed is None:
        dataset = passes.flat_map(lambda index: split.shuffle(shuffle_buffer))
    else:
        dataset = passes.flat_map(lambda index: _shuffled_pass(split, shuffle_buffer, seed, index))
    if skipped:
        dataset = dataset.skip(skipped)
    dataset = dataset.batch(batch_size, drop_remainder=True, num_parallel_calls=_AUTOTUNE)
    dataset = dataset.map(
        lambda example: model_inputs(example, labels), num_parallel_calls=_AUTOTUNE
    )
    return dataset.prefetch(_AUTOTUNE)


_NUM_PASSES = 2**62  # "forever"; range() needs an end


def _shuffled_pass(split: tf.data.Dataset, window: int, seed: int, index) -> tf.data.Dataset:
    """One pass over `split`, each window of `window` examples permuted by a
    stateless draw keyed by (seed, pass index, window index)."""
    pass_key = tf.random.experimental.stateless_fold_in(
        tf.constant([0, int(seed)], tf.int64), index
    )

    def permute(window_index, examples):
        count = tf.shape(tf.nest.flatten(examples)[0])[0]
        key = tf.random.experimental.stateless_fold_in(pass_key, window_index)
        order = tf.random.experimental.stateless_shuffle(tf.range(count), seed=key)
        return tf.nest.map_structure(lambda values: tf.gather(values, order), examples)

    return split.batch(window).enumerate().map(permute).unbatch()


def _examples_per_pass(source: DataSource, split: tf.data.Dataset) -> int:
    count = source.num_examples.get("train")
    if count is None:
        cardinality = int(split.cardinality())
        count = cardinality if cardinality >= 0 else int(split.reduce(0, lambda n, _: n + 1))
    if count < 1:
        raise ValueError(f"dataset {source.name!r} has no training examples")
    return count


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
