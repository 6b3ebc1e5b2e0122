"""OpenAIAdamax follows openai/glow's `adamax` update; Keras' Adamax its own rule."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from glow_tf.training import OPTIMIZERS, OpenAIAdamax
from tests.conftest import REPO_ROOT

LR, BETA_1, BETA_2 = 0.01, 0.9, 0.99
SHAPES = [(3, 4), (5,)]
NUM_UPDATES = 5


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(shape) for shape in SHAPES]
    grads = [
        [rng.standard_normal(shape) * 10.0**k for k, shape in enumerate(SHAPES)]
        for _ in range(NUM_UPDATES)
    ]
    return weights, grads


def openai_adamax_numpy(weights, grads, eps=1e-8, decay=1.0):
    """openai/glow optim.py `adamax`, in float64: t starts at 1."""
    w = [x.copy() for x in weights]
    m1 = [np.zeros_like(x) for x in w]
    m2 = [np.zeros_like(x) for x in w]
    history = []
    for t, step_grads in enumerate(grads, start=1):
        alpha_t = LR * np.sqrt(1.0 - BETA_2**t) / (1.0 - BETA_1**t)
        for i, g in enumerate(step_grads):
            m1[i] = BETA_1 * m1[i] + (1.0 - BETA_1) * g
            m2[i] = np.maximum(BETA_2 * m2[i], np.abs(g))
            w[i] = decay * w[i] - alpha_t * m1[i] / (m2[i] + eps)
        history.append([x.copy() for x in w])
    return history


def keras_adamax_numpy(weights, grads, eps=1e-7):
    """Keras' documented Adamax rule, in float64."""
    w = [x.copy() for x in weights]
    m = [np.zeros_like(x) for x in w]
    u = [np.zeros_like(x) for x in w]
    history = []
    for t, step_grads in enumerate(grads, start=1):
        for i, g in enumerate(step_grads):
            m[i] = BETA_1 * m[i] + (1.0 - BETA_1) * g
            u[i] = np.maximum(BETA_2 * u[i], np.abs(g))
            w[i] = w[i] - LR / (1.0 - BETA_1**t) * m[i] / (u[i] + eps)
        history.append([x.copy() for x in w])
    return history


def _run(optimizer, weights, grads):
    variables = [keras.Variable(x.astype(np.float32)) for x in weights]
    history = []
    for step_grads in grads:
        optimizer.apply_gradients(
            zip([tf.constant(g, tf.float32) for g in step_grads], variables, strict=True)
        )
        history.append([v.numpy() for v in variables])
    return history


def _assert_close(history, expected):
    for step, (got, want) in enumerate(zip(history, expected, strict=True)):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"update {step + 1}")


@pytest.mark.parametrize("decay", [1.0, 0.99])
def test_openai_adamax_follows_the_official_update(decay):
    weights, grads = _problem()
    optimizer = OpenAIAdamax(LR, beta_1=BETA_1, beta_2=BETA_2, decay_factor=decay)
    _assert_close(_run(optimizer, weights, grads), openai_adamax_numpy(weights, grads, decay=decay))


def test_keras_adamax_follows_its_documented_update():
    weights, grads = _problem()
    optimizer = keras.optimizers.Adamax(LR, beta_1=BETA_1, beta_2=BETA_2)
    _assert_close(_run(optimizer, weights, grads), keras_adamax_numpy(weights, grads))


def test_the_two_adamax_updates_differ():
    weights, grads = _problem()
    ours = _run(OpenAIAdamax(LR, beta_1=BETA_1, beta_2=BETA_2), weights, grads)
    theirs = keras_adamax_numpy(weights, grads)
    first_ours = ours[0][0] - weights[0]
    first_theirs = theirs[0][0] - weights[0]
    # first update: sqrt(1 - beta_2) times Keras' step (float32 differences: rtol 1e-3)
    np.testing.assert_allclose(first_ours, np.sqrt(1 - BETA_2) * first_theirs, rtol=1e-3)
    assert not np.allclose(ours[-1][0], theirs[-1][0], rtol=1e-3)


def test_registered_and_rejects_bad_hyperparameters():
    assert OPTIMIZERS["openai_adamax"] is OpenAIAdamax
    with pytest.raises(ValueError, match="decay_factor"):
        OpenAIAdamax(decay_factor=1.5)
    with pytest.raises(ValueError, match="beta_1 and beta_2"):
        OpenAIAdamax(beta_2=1.0)


def _tiny_model(optimizer, jit_compile=False):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer, loss="mse", jit_compile=jit_compile)
    return model


def _tiny_data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 2)).astype(
        np.float32
    )


def test_keras_file_keeps_the_slots(tmp_path):
    x, y = _tiny_data()
    optimizer = OpenAIAdamax(1e-2, beta_2=0.99, decay_factor=0.999, use_ema=True)
    model = _tiny_model(optimizer)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded.optimizer, OpenAIAdamax)
    assert reloaded.optimizer.get_config() == model.optimizer.get_config()
    saved = [v.numpy() for v in model.optimizer.variables]
    loaded = [v.numpy() for v in reloaded.optimizer.variables]
    assert len(saved) == len(loaded) and int(reloaded.optimizer.iterations.numpy()) == 4
    for a, b in zip(saved, loaded, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(np.any(v != 0) for v in loaded[2:])  # m1, m2 and EMA slots, not just zeros
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    reloaded.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), reloaded.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_jit_compiled_loss_scaled_fit_matches_eager_updates():
    x, y = _tiny_data()
    results = []
    for jit_compile, loss_scale in ((False, False), (True, True)):
        keras.utils.set_random_seed(0)
        optimizer = OpenAIAdamax(1e-2, beta_2=0.99)
        if loss_scale:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=2.0**8)
        model = _tiny_model(optimizer, jit_compile=jit_compile)
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
        results.append(model.get_weights())
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


_MIRRORED_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from glow_tf.training import OpenAIAdamax
rng = np.random.default_rng(1)
x = rng.standard_normal((16, 3)).astype(np.float32)
y = rng.standard_normal((16, 2)).astype(np.float32)
weights = []
for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(OpenAIAdamax(1e-2, beta_2=0.99, use_ema=True), loss="mse")
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
    weights.append(np.concatenate([w.ravel() for w in model.get_weights()]))
    print(strategy.num_replicas_in_sync, int(model.optimizer.iterations.numpy()))
np.save(sys.argv[1], np.stack(weights))
"""


@pytest.mark.slow
def test_mirrored_strategy_matches_one_device(tmp_path):
    out = tmp_path / "weights.npy"
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT, str(out)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["1", "6", "2", "6"]
    single, mirrored = np.load(out)
    np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6)
