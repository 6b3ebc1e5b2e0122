"""Training with steps_per_execution: data positions, checkpoints and the
non-finite guard stay right when Keras runs several steps per call."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import GlowModel
from glow_tf.training import CheckpointStore, NonFiniteGuard, RunCheckpoint, TrainingStopped
from glow_tf.training import make_optimizer
from glow_tf.training.resume import check_steps_per_execution
from tests.conftest import TINY, tiny_images


def _data():
    return tf.data.Dataset.from_tensor_slices(tiny_images(32, TINY.image_shape, seed=9)).batch(4)


def _compiled(steps_per_execution):
    model = GlowModel(TINY.replace(seed=2))
    model.initialize(tiny_images(32, TINY.image_shape, seed=2))
    model.compile(make_optimizer("adamax", 1e-3), steps_per_execution=steps_per_execution)
    return model


def _state_of(store):
    return {c.position: (c.epoch, c.batch_in_epoch, c.step) for c in store.checkpoints()}


def test_four_steps_per_execution_train_checkpoint_and_stop_on_nan(tmp_path):
    model = _compiled(4)
    store = CheckpointStore(str(tmp_path / "checkpoints"), keep=10)
    guard = NonFiniteGuard()
    saver = RunCheckpoint(
        str(tmp_path), store, {"config": TINY.to_dict()}, every_steps=4, before_save=guard.check
    )
    history = model.fit(
        _data().repeat(), epochs=1, steps_per_epoch=8, verbose=0, callbacks=[guard, saver]
    )
    assert int(model.optimizer.iterations.numpy()) == 8
    assert np.isfinite(history.history["loss"][0])
    assert _state_of(store) == {4: (0, 4, 4), 8: (1, 0, 8)}
    assert guard.checks == 3  # before each checkpoint and at the epoch's end, not per step

    logs = model.levels[0].steps[1].act_norm.logs
    logs.assign(np.full(logs.shape, np.nan, np.float32))
    with pytest.raises(TrainingStopped, match=r"loss became nan at epoch 2, step 9; training"):
        model.fit(
            _data().repeat(),
            epochs=2,
            initial_epoch=1,
            steps_per_epoch=8,
            verbose=0,
            callbacks=[guard, saver],
        )
    assert _state_of(store) == {4: (0, 4, 4), 8: (1, 0, 8)}  # the save at 12 was refused
    assert int(model.optimizer.iterations.numpy()) == 8


def test_the_guard_reads_the_device_every_check_every_steps():
    model = _compiled(1)
    guard = NonFiniteGuard(check_every=3)
    model.fit(_data(), epochs=1, verbose=0, callbacks=[guard])
    assert guard.checks == 2 + 1  # after steps 3 and 6, then at the end of the epoch of 8
    with pytest.raises(ValueError, match="check_every must be >= 1"):
        NonFiniteGuard(check_every=0)


def test_steps_per_execution_must_divide_every_fit():
    check_steps_per_execution(4, 8, 4)
    with pytest.raises(ValueError, match="does not divide the 6 steps per epoch"):
        check_steps_per_execution(4, 6)
    with pytest.raises(ValueError, match="2 batches into its epoch"):
        check_steps_per_execution(4, 8, 2)
