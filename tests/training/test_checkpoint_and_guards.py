"""Checkpoints keep the whole training state; guards stop bad runs and spare the last good one."""

from __future__ import annotations

import os
import signal

import keras
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
from glow_tf.training.callbacks import StopOnSignal
from glow_tf.training.checkpoint import checkpoint_problem
from glow_tf.training.errors import TrainingInterrupted
from glow_tf.training.optimizers import initial_loss_scale
from glow_tf.training.resume import load_resume_checkpoint
from glow_tf.training.signals import StopRequest
from tests.conftest import DEEP, TINY, tiny_images


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
    for position in (1, 2, 3):
        store.save(model, position, {"config": TINY.to_dict(), "epoch": position})
    assert [c.position for c in store.checkpoints()] == [2, 3]
    assert sorted(os.listdir(tmp_path)) == ["step-00000002", "step-00000003"]
    latest = store.latest()
    assert latest.state["epoch"] == 3 and latest.state["data_position"] == 3
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
    os.makedirs(tmp_path / "step-00000012")
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


def test_invertibility_guard_passes_a_deep_half_precision_model(deep_models, eagerly):
    """K = 32, trained-like weights, bfloat16 networks (a round trip computed in
    bfloat16 misses by more than 1e-3: tests/models/test_deep_round_trip.py)."""
    guard = InvertibilityGuard(tiny_images(4, DEEP.image_shape, seed=4), tolerance=1e-3)
    guard.set_model(deep_models["bfloat16"])
    guard.on_epoch_end(0)
    assert guard.last_error < 1e-4


# ------------------------------------------------- float16 loss scaling vs the guard


class _OverflowAt(keras.callbacks.Callback):
    """Makes the float16 coupling network overflow during the given steps (counted
    over the whole fit): its float32 kernel is set to 1e5 (inf once cast to
    float16, so the loss is NaN), then restored, as a transient overflow would be."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps
        self._step = -1
        self._saved = None

    def _kernel(self):
        return self.model.levels[0].steps[0].coupling.network.conv_in.kernel

    def on_train_batch_begin(self, batch, logs=None):
        self._step += 1
        if self._step in self.steps:
            self._saved = self._kernel().numpy()
            self._kernel().assign(np.full(self._saved.shape, 1e5, np.float32))

    def on_train_batch_end(self, batch, logs=None):
        if self._step in self.steps:
            self._kernel().assign(self._saved)


def _float16_compiled(seed=2):
    config = TINY.replace(network_dtype="float16", seed=seed)
    model = GlowModel(config)
    model.initialize(tiny_images(32, TINY.image_shape, seed=seed))
    model.compile(make_optimizer("adamax", 1e-3, loss_scale=initial_loss_scale(config.num_dims)))
    return model


def test_one_step_skipped_by_the_loss_scaler_does_not_stop_training():
    model = _float16_compiled()
    guard = NonFiniteGuard()
    scale = initial_loss_scale(TINY.num_dims)
    history = model.fit(_data(), epochs=2, verbose=0, callbacks=[_OverflowAt({1}), guard])
    assert guard.skipped_steps == 1
    assert int(model.optimizer.iterations.numpy()) == 2 * 4 - 1  # that step was not applied
    assert float(model.optimizer.dynamic_scale.numpy()) == scale / 2
    assert np.isnan(history.history["loss"][0])  # the epoch's running mean saw the NaN
    assert np.isfinite(history.history["loss"][1])
    assert all(np.all(np.isfinite(w.numpy())) for w in model.weights)


def test_a_run_of_skipped_steps_stops_training_and_keeps_the_checkpoint(tmp_path):
    model = _float16_compiled()
    store = CheckpointStore(str(tmp_path / "checkpoints"))
    saver = RunCheckpoint(str(tmp_path), store, {"config": TINY.to_dict()})
    guard = NonFiniteGuard(max_skipped_steps=3, check_every=1)
    model.fit(_data(), epochs=1, verbose=0, callbacks=[guard, saver])
    with pytest.raises(
        TrainingStopped,
        match=r"3 consecutive training steps had a non-finite loss or gradients and were "
        r"skipped by the loss scaler .* at epoch 2, step 4",
    ):
        model.fit(
            _data(),
            epochs=2,
            initial_epoch=1,
            verbose=0,
            callbacks=[_OverflowAt(set(range(4))), guard, saver],
        )
    assert guard.consecutive_skipped_steps == 3
    assert [c.epoch for c in store.checkpoints()] == [1]


def test_nan_weights_stop_a_loss_scaled_run_at_the_first_skipped_step():
    model = _float16_compiled()
    logs = model.levels[0].steps[1].act_norm.logs
    logs.assign(np.full(logs.shape, np.nan, np.float32))
    with pytest.raises(
        TrainingStopped, match=rf"weight {logs.path} is not finite at epoch 1, step 0"
    ):
        model.fit(_data(), epochs=1, verbose=0, callbacks=[NonFiniteGuard()])


def test_max_skipped_steps_must_be_positive():
    with pytest.raises(ValueError, match="max_skipped_steps must be >= 1"):
        NonFiniteGuard(max_skipped_steps=0)


# ------------------------------------------------- checkpoints within an epoch, signals


def _state_of(store):
    return {c.position: (c.epoch, c.batch_in_epoch, c.step) for c in store.checkpoints()}


def test_step_checkpoints_within_an_epoch_record_the_data_position(tmp_path):
    model = _compiled()
    store = CheckpointStore(str(tmp_path / "checkpoints"), keep=10)
    saver = RunCheckpoint(str(tmp_path), store, {"config": TINY.to_dict()}, every_steps=3)
    model.fit(_data().repeat(), epochs=2, steps_per_epoch=4, verbose=0, callbacks=[saver])
    # (finished epochs, batches of the next, optimizer step) by position; 4 and 8 end epochs
    assert _state_of(store) == {3: (0, 3, 3), 4: (1, 0, 4), 7: (1, 3, 7), 8: (2, 0, 8)}
    assert os.path.isfile(tmp_path / "model.keras")
    # time-based: every step is due; a resumed position carries on
    store = CheckpointStore(str(tmp_path / "timed"), keep=10)
    saver = RunCheckpoint(
        str(tmp_path), store, {}, position=8, batch_in_epoch=2, every_seconds=1e-9
    )
    model.fit(_data(), epochs=3, initial_epoch=2, steps_per_epoch=2, verbose=0, callbacks=[saver])
    assert _state_of(store) == {9: (2, 3, 9), 10: (3, 0, 10)}


class _SignalAt(keras.callbacks.Callback):
    """Plays the signal handler: records SIGTERM after the given batch."""

    def __init__(self, stop, batch):
        super().__init__()
        self.stop, self.batch = stop, batch

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch:
            self.stop.signal_number = signal.SIGTERM


def test_a_stop_signal_checkpoints_the_step_and_raises_with_exit_code_143(tmp_path):
    model = _compiled()
    store = CheckpointStore(str(tmp_path / "checkpoints"))
    saver = RunCheckpoint(str(tmp_path), store, {})
    stop = StopRequest()
    callbacks = [_SignalAt(stop, 1), saver, StopOnSignal(stop, saver)]
    with pytest.raises(TrainingInterrupted, match="SIGTERM received: stopped at step 2") as info:
        model.fit(_data(), epochs=1, verbose=0, callbacks=callbacks)
    assert info.value.exit_code == 143
    assert _state_of(store) == {2: (0, 2, 2)}
    assert not os.path.exists(tmp_path / "model.keras")  # only the checkpoint, at once


def test_stop_request_catches_the_first_signal_and_passes_on_the_second():
    previous = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal_number == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):  # the second acts as usual
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is previous


def _flip_a_byte_in_the_middle(path):
    with open(path, "r+b") as file:
        file.seek(os.path.getsize(path) // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0xFF]))


def test_damaged_checkpoints_are_named_and_the_previous_one_is_loaded(tmp_path):
    model = _compiled()
    store = CheckpointStore(str(tmp_path), keep=3)
    for position in (1, 2, 3):
        model.optimizer.iterations.assign(position)
        store.save(model, position, {"step": position})
    _flip_a_byte_in_the_middle(os.path.join(tmp_path, "step-00000003", "model.keras"))
    with open(os.path.join(tmp_path, "step-00000002", "state.json"), "w") as file:
        file.write("[1, 2")
    newest_first = store.all_checkpoints()[::-1]
    assert [checkpoint_problem(c) is None for c in newest_first] == [False, False, True]
    assert "model.keras is" in checkpoint_problem(newest_first[0])
    assert "state.json is unreadable" in checkpoint_problem(newest_first[1])
    messages, loaded = [], []
    chosen = load_resume_checkpoint(newest_first, loaded.append, messages.append, True)
    assert chosen.position == 1 and loaded == [chosen]
    assert "falling back to the previous checkpoint, step-00000002" in messages[0]
    assert "falling back to the previous checkpoint, step-00000001" in messages[1]
    assert sorted(os.listdir(tmp_path)) == [
        "damaged-step-00000002",
        "damaged-step-00000003",
        "step-00000001",
    ]
    with pytest.raises(ValueError, match="no checkpoint to resume from could be loaded"):
        load_resume_checkpoint(store.all_checkpoints(), _raise, messages.append)


def _raise(checkpoint):
    raise OSError("unreadable")
