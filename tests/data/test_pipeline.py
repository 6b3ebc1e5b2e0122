"""The training stream: seeded passes, the same batches from any position."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.data.pipeline import training_dataset
from glow_tf.data.source import DataSource

NUM_EXAMPLES = 37  # batches of 5 straddle the passes


def _numbered_source(known_size=True):
    """Example i is a 1x1 image of value i (so a batch shows which examples it holds)."""

    def examples(split):
        ids = np.arange(NUM_EXAMPLES, dtype=np.uint8).reshape(-1, 1, 1, 1)
        labels = np.arange(NUM_EXAMPLES, dtype=np.int32) % 10
        return tf.data.Dataset.from_tensor_slices({"image": ids, "label": labels})

    count = NUM_EXAMPLES if known_size else None
    return DataSource("numbers", (1, 1, 1), 10, (), examples, {"train": count, "test": count})


def _ids(dataset, batches):
    return [batch.numpy().reshape(-1).tolist() for batch in dataset.take(batches)]


def test_every_pass_is_a_new_permutation_of_the_training_set():
    stream = sum(_ids(training_dataset(_numbered_source(), 1, shuffle_buffer=16, seed=3), 111), [])
    passes = [stream[i * NUM_EXAMPLES : (i + 1) * NUM_EXAMPLES] for i in range(3)]
    for order in passes:
        assert sorted(order) == list(range(NUM_EXAMPLES))
    assert passes[0] != passes[1] != passes[2] and passes[0] != list(range(NUM_EXAMPLES))
    other = sum(_ids(training_dataset(_numbered_source(), 1, shuffle_buffer=16, seed=4), 37), [])
    assert other != passes[0]


@pytest.mark.parametrize("known_size", [True, False])
def test_a_stream_from_a_position_continues_the_stream_from_zero(known_size):
    source = _numbered_source(known_size)
    full = _ids(training_dataset(source, 5, shuffle_buffer=16, seed=3), 30)
    for position in (1, 7, 8, 22):  # 7 * 5 = 35: batch 7 holds both passes
        resumed = _ids(training_dataset(source, 5, shuffle_buffer=16, seed=3, position=position), 8)
        assert resumed == full[position : position + 8], position


def test_the_order_does_not_depend_on_the_global_seed():
    source = _numbered_source()
    try:
        tf.random.set_seed(0)
        first = _ids(training_dataset(source, 5, shuffle_buffer=16, seed=3, position=9), 4)
        tf.random.set_seed(123)
        second = _ids(training_dataset(source, 5, shuffle_buffer=16, seed=3, position=9), 4)
    finally:
        tf.random.set_seed(None)
    assert first == second
    with pytest.raises(ValueError, match="position must be >= 0"):
        training_dataset(source, 5, position=-1)
