"""Checkpoints keep the whole training state; guards stop bad runs and spare the last good one."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import GlowModel
from glow_tf.training import (
    CheckpointStore,
    InvertibilityGuard,
    NonFiniteGuard,
    RunCheckpoint,
    TrainingStopped,
    make_optimizer,
)
from tests.conftest import TINY, tiny_images


def _compiled(seed=2, ema=None):
    model = GlowModel(TINY.replace(seed=seed))
    model.initialize(tiny_images(32, TINY.image_shape, seed=seed))
    model.compile(make_optimizer("adamax", 1e-3, warmup_steps=3, ema_decay=ema))
    model.optimizer.build(model.trainable_variables)
    return model


def _data():
    return tf.data.Dataset.from_tensor_slices(tiny_images(32, TINY.image_shape, seed=9)).batch(8)


def test_checkpoint_restores_weights_optimizer_slots_and_step(tmp_path):
    model = _compiled(ema=0.9)
    model.fit(_data(), epochs=1, verbose=0)
    store = CheckpointStore(str(tmp_path), keep=2)
    for epoch in (1, 2, 3):
        store.save(model, epoch, {"config": TINY.to_dict()})
    assert [c.epoch for c in store.checkpoints()] == [2, 3]
    latest = store.latest()
    assert latest.state["epoch"] == 3
    fresh = _compiled(seed=5, ema=0.9)
    fresh.load_weights(latest.model_path)
    assert int(fresh.optimizer.iterations.numpy()) == 4
    for saved, restored in zip(
        model.optimizer.variables + model.weights,
        fresh.optimizer.variables + fresh.weights,
        strict=True,
    ):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())


def test_partial_checkpoints_are_ignored(tmp_path):
    os.makedirs(tmp_path / ".partial-epoch-0009")
    os.makedirs(tmp_path / "epoch-0008")  # no state.json: an interrupted copy
    assert CheckpointStore(str(tmp_path)).latest() is None


def test_nan_weights_stop_fit_before_the_checkpoint_is_overwritten(tmp_path):
    model = _compiled()
    store = CheckpointStore(str(tmp_path / "checkpoints"))
    saver = RunCheckpoint(str(tmp_path), store, {"config": TINY.to_dict()})
    callbacks = [NonFiniteGuard(), saver]
    model.fit(_data(), epochs=1, verbose=0, callbacks=callbacks)
    good = store.latest()
    with open(good.model_path, "rb") as file:
        good_bytes = file.read()
    kernel = model.levels[0].steps[0].act_norm.logs
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    with pytest.raises(TrainingStopped, match=r"loss became nan at epoch 2, step 5"):
        model.fit(_data(), epochs=2, initial_epoch=1, verbose=0, callbacks=callbacks)
    assert [c.epoch for c in store.checkpoints()] == [1]
    with open(good.model_path, "rb") as file:
        assert file.read() == good_bytes


def test_invertibility_guard_catches_a_singular_flow(tmp_path):
    model = _compiled()
    guard = InvertibilityGuard(tiny_images(4, TINY.image_shape), tolerance=1e-3)
    guard.set_model(model)
    guard.on_epoch_end(0)
    assert guard.last_error < 1e-4
    kernel = model.levels[1].steps[0].permutation.kernel
    kernel.assign(np.zeros(kernel.shape, np.float32))
    with pytest.raises(TrainingStopped, match="invertibility check failed at epoch 1"):
        guard.on_epoch_end(0)
