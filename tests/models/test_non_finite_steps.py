"""A non-finite update is skipped in the graph, exactly, and counted on the device."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from glow_tf import GlowModel
from glow_tf.training import make_optimizer
from tests.conftest import TINY, tiny_images


def _state(model):
    return [v.numpy() for v in model.weights + model.optimizer.variables]


def test_a_non_finite_update_changes_nothing_and_is_counted():
    model = GlowModel(TINY.replace(seed=3))
    model.initialize(tiny_images(16, TINY.image_shape, seed=3))
    model.compile(make_optimizer("adamax", 1e-3, ema_decay=0.9), gradient_clip_norm=1.0)
    images = tiny_images(4, TINY.image_shape, seed=4)
    model.train_on_batch(images)  # non-zero moments, EMA and step
    logs = model.levels[0].steps[0].act_norm.logs
    good = logs.numpy()
    logs.assign(np.full(good.shape, np.nan, np.float32))
    before = _state(model)
    model.train_on_batch(images)
    model.train_on_batch(images)
    for saved, now in zip(before, _state(model), strict=True):
        np.testing.assert_array_equal(saved, now)  # NaN == NaN here
    assert int(model.optimizer.iterations.numpy()) == 1
    record = model.non_finite_steps.read()
    assert (record.count, record.consecutive, record.longest_run, record.first_step) == (2, 2, 2, 2)
    assert np.isnan(record.first_loss)

    logs.assign(good)
    model.train_on_batch(images)
    assert int(model.optimizer.iterations.numpy()) == 2
    assert all(np.all(np.isfinite(v.numpy())) for v in model.weights)
    record = model.non_finite_steps.read()
    assert (record.count, record.consecutive, record.longest_run, record.first_step) == (2, 0, 2, 2)
    model.non_finite_steps.reset()
    assert model.non_finite_steps.read().count == 0


def test_the_record_is_not_a_model_weight():
    model = GlowModel(TINY)
    model.compile(make_optimizer("adamax", 1e-3))
    counters = {id(model.non_finite_steps.counts), id(model.non_finite_steps.first_loss)}
    assert not counters & {id(getattr(v, "value", v)) for v in model.weights}
    assert isinstance(model.non_finite_steps.counts, tf.Variable)
