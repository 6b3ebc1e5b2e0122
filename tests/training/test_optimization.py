"""Warm-up schedule, gradient-norm clipping of the applied gradient, EMA weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from glow_tf import GlowModel
from glow_tf.training import LinearWarmup, ema_weights, make_optimizer
from tests.conftest import TINY, tiny_images


def test_linear_warmup_and_its_config():
    schedule = LinearWarmup(2e-3, warmup_steps=4)
    values = [float(schedule(step)) for step in range(6)]
    np.testing.assert_allclose(values, [5e-4, 1e-3, 1.5e-3, 2e-3, 2e-3, 2e-3], rtol=1e-6)
    assert float(LinearWarmup(1e-3, 0)(10)) == pytest.approx(1e-3)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert clone.get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        LinearWarmup(0.0, 3)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        make_optimizer("rmsprop")


def _weights(model):
    return [w.numpy().copy() for w in model.trainable_variables]


def _distance(variables, values):
    pairs = zip(variables, values, strict=True)
    return np.sqrt(sum(np.sum((v.numpy() - w) ** 2) for v, w in pairs))


def test_clipping_bounds_the_applied_gradient_and_survives_reload(tmp_path):
    images = tiny_images(16, TINY.image_shape, seed=4)
    model = GlowModel(TINY.replace(seed=3))
    model.initialize(images)
    model.compile(keras.optimizers.SGD(learning_rate=1.0), gradient_clip_norm=1e-3)
    before = _weights(model)
    model.train_on_batch(images)
    change = _distance(model.trainable_variables, before)
    assert change == pytest.approx(1e-3, rel=1e-3)

    unclipped = GlowModel(TINY.replace(seed=3))
    unclipped.initialize(images)
    unclipped.compile(keras.optimizers.SGD(learning_rate=1.0))
    unclipped.train_on_batch(images)
    change = _distance(unclipped.trainable_variables, before)
    assert change > 1e-2

    path = str(tmp_path / "clipped.keras")
    model.save(path)
    assert keras.models.load_model(path).gradient_clip_norm == 1e-3
    with pytest.raises(ValueError, match="gradient_clip_norm must be > 0"):
        model.compile("adamax", gradient_clip_norm=0.0)


def test_ema_weights_are_swapped_in_and_back_exactly():
    images = tiny_images(16, TINY.image_shape, seed=6)
    model = GlowModel(TINY.replace(seed=8))
    model.initialize(images)
    model.compile(make_optimizer("adam", 1e-2, ema_decay=0.5))
    for start in range(0, 16, 4):  # not fit: its end copies the averages into the model
        model.train_on_batch(images[start : start + 4])
    training = _weights(model)
    averages = [a.numpy() for a in model.optimizer._model_variables_moving_average]
    with ema_weights(model):
        for variable, average in zip(model.trainable_variables, averages, strict=True):
            np.testing.assert_array_equal(variable.numpy(), average)
    for variable, value in zip(model.trainable_variables, training, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)
    assert any(not np.array_equal(a, b) for a, b in zip(training, averages, strict=True))
