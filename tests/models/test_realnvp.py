"""RealNVPModel: a tiny model trains with fit, samples, saves and reloads;
batch norms use batch moments in training and update their moving averages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from glow_tf import RealNVPConfig, RealNVPModel
from glow_tf.flow import FlowBatchNormLayer, CouplingMask
from tests.conftest import REPO_ROOT

CONFIG = RealNVPConfig(image_shape=(8, 8, 1), num_levels=2, hidden_channels=8, num_blocks=1)


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(1, 8, 8, 1))
    return np.clip(base + rng.integers(-20, 20, size=(n, 8, 8, 1)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = RealNVPModel(CONFIG)
    images = _images(64)
    model.compile(keras.optimizers.Adam(1e-3), gradient_clip_norm=100.0)
    history = model.fit(images, batch_size=16, epochs=3, verbose=0, shuffle=False)
    return model, history.history["loss"]


def test_fit_decreases_the_loss(trained):
    model, losses = trained
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert model.losses  # the official L2 penalty, as Keras regularisers


def test_l2_penalty_is_the_official_one_in_bits():
    model = RealNVPModel(CONFIG)
    penalised = [w for w in model.trainable_weights if w.path.endswith(("magnitude", "log_scale_factor"))]
    expected = sum(
        float(tf.reduce_sum(tf.square(w)))
        for w in penalised
        if "magnitude" in w.path or "coupling_4" not in w.path and "coupling_5" not in w.path
        and "coupling_6" not in w.path
    ) * CONFIG.l2_coeff / (CONFIG.num_dims * np.log(2.0))
    np.testing.assert_allclose(float(tf.add_n(model.losses)), expected, rtol=1e-5)


def test_training_updates_moving_statistics_and_eval_uses_them(trained):
    model, _ = trained
    norm = model.levels[0].steps[1].batch_norm
    assert isinstance(norm, FlowBatchNormLayer)
    assert not np.allclose(norm.moving_variance.numpy(), 1.0)
    images = _images(8, seed=1)
    noise = np.full(images.shape, 0.5 / 256, np.float32)
    first = model.bits_per_dim(images, noise=noise).numpy()
    second = model.bits_per_dim(images[:3], noise=noise[:3]).numpy()
    np.testing.assert_allclose(first[:3], second, atol=1e-5)  # eval: no batch dependence


def test_flow_batch_norm_training_moments_and_update():
    layer = FlowBatchNormLayer(CouplingMask("checkerboard", 1))
    layer.build((None, 4, 4, 2))
    x = tf.constant(np.random.default_rng(0).standard_normal((5, 4, 4, 2)), tf.float32)
    y, log_det = layer(x, training=True)
    weight = 1.0 - CouplingMask("checkerboard", 1).keep_mask(x)
    mean = tf.reduce_mean(x * weight, axis=[0, 1, 2])
    var = tf.math.reduce_variance(x * weight, axis=[0, 1, 2])
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * var.numpy(), atol=1e-6)
    expected = (x - mean) / tf.sqrt(var + 1e-4) * weight + x * (1 - weight)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    np.testing.assert_allclose(log_det, np.full(5, -0.5 * 8 * np.log(var + 1e-4).sum()), rtol=1e-5)


def test_sample_decode_round_trip(trained):
    model, _ = trained
    samples = model.sample(4, temperature=0.7, seed=3)
    assert samples.shape == (4, 8, 8, 1) and samples.dtype == tf.uint8
    images = _images(4, seed=2)
    noise = np.full(images.shape, 0.5 / 256, np.float32)
    encoding = model.encode(images, noise=noise)
    np.testing.assert_array_equal(model.decode(encoding.latents), images)


def test_save_and_reload_in_another_process(trained, tmp_path):
    """Saving keeps every weight (the batch norms' moving averages included):
    a reload has the same variables, and its bits/dim are bit-identical in
    this process and in another one.

    The trained model itself may differ from a reload by float32 rounding
    (measured: up to 3.8e-6 bits/dim, ~2e-7 relative): its eager
    `bits_per_dim` runs a cached tf.function (`FlowModel._compiled`) which,
    once called with several batch sizes (as the tests above do), is retraced
    with an unknown batch dimension, and that graph rounds differently from the
    static-shape trace of a fresh model's first call. No state is lost in
    saving: a reload called with the same batch sizes in the same order agrees
    exactly, in any process.
    """
    from glow_tf.saving import load_flow_model

    model, _ = trained
    path = tmp_path / "realnvp.keras"
    model.save(path)
    images = _images(4, seed=5)
    noise = np.full(images.shape, 0.5 / 256, np.float32)
    reloaded = load_flow_model(path)
    assert [w.path for w in reloaded.weights] == [w.path for w in model.weights]
    for saved, original in zip(reloaded.weights, model.weights, strict=True):
        np.testing.assert_array_equal(saved.numpy(), original.numpy(), err_msg=saved.path)
    bits = reloaded.bits_per_dim(images, noise=noise).numpy()
    np.testing.assert_allclose(bits, model.bits_per_dim(images, noise=noise), atol=1e-5, rtol=0)
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "bits.npy", bits)
    script = (
        "import numpy as np, sys; from glow_tf.saving import load_flow_model;"
        f"m = load_flow_model(r'{path}'); x = np.load(r'{tmp_path / 'images.npy'}');"
        "n = np.full(x.shape, 0.5 / 256, np.float32);"
        f"b = m.bits_per_dim(x, noise=n).numpy(); e = np.load(r'{tmp_path / 'bits.npy'}');"
        "print(type(m).__name__, np.abs(b - e).max()); sys.exit(0 if np.array_equal(b, e) else 1)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "RealNVPModel" in run.stdout


def test_only_models_with_act_norms_have_a_data_dependent_init():
    from glow_tf import GlowConfig, GlowModel

    assert not RealNVPModel(CONFIG).has_data_dependent_init  # initialize only measures
    assert RealNVPModel(CONFIG, dequantizer="variational").has_data_dependent_init
    glow = GlowConfig(image_shape=(8, 8, 1), num_levels=2, num_steps=1, hidden_channels=4)
    assert GlowModel(glow).has_data_dependent_init


def test_get_config_round_trip():
    model = RealNVPModel(CONFIG)
    clone = RealNVPModel.from_config(model.get_config())
    assert clone.config == model.config
    assert [w.path for w in clone.weights] == [w.path for w in model.weights]


def test_config_validation():
    with pytest.raises(ValueError, match="unconditional"):
        RealNVPConfig(num_classes=3)
    with pytest.raises(ValueError, match="not divisible"):
        RealNVPConfig(image_shape=(12, 12, 3), num_levels=4)
    with pytest.raises(ValueError, match="above the limit"):
        RealNVPConfig(num_blocks=1000)


def test_family_registry():
    from glow_tf import GlowConfig, GlowModel
    from glow_tf.models import family_name, model_class_for

    assert model_class_for(CONFIG) is RealNVPModel
    assert model_class_for("glow") is GlowModel
    assert model_class_for(GlowConfig(image_shape=(8, 8, 1), num_levels=2)) is GlowModel
    assert family_name(CONFIG) == "realnvp"
    with pytest.raises(ValueError, match="unknown model family"):
        model_class_for("nice")


_TWO_REPLICAS_SCRIPT = """
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from glow_tf.flow.flow_batch_norm import batch_moments
strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
x = np.load(sys.argv[1])
dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(4))
replicas = strategy.run(lambda t: (t, *batch_moments(t)), args=(next(iter(dataset)),))
local = [[v.numpy().tolist() for v in strategy.experimental_local_results(r)] for r in replicas]
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "inputs": local[0],
                  "means": local[1], "variances": local[2]}))
"""


def test_batch_moments_are_all_reduced_across_replicas(tmp_path):
    """Two replicas (2 logical CPUs, configured before TensorFlow starts, so in
    a subprocess) each see half of the batch; both get the global batch's
    mean and variance, not their own half's."""
    x = np.random.default_rng(0).standard_normal((4, 2, 2, 3)).astype(np.float32)
    x[2:] += 3.0  # the second replica's half has another mean
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run(
        [sys.executable, "-c", _TWO_REPLICAS_SCRIPT, str(tmp_path / "x.npy")],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    halves = [np.asarray(half) for half in result["inputs"]]
    assert [h.shape[0] for h in halves] == [2, 2]
    np.testing.assert_array_equal(np.concatenate(halves), x)
    for mean, variance, half in zip(result["means"], result["variances"], halves, strict=True):
        np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), atol=1e-5)
        np.testing.assert_allclose(variance, x.var(axis=(0, 1, 2)), atol=1e-5)
        assert not np.allclose(mean, half.mean(axis=(0, 1, 2)), atol=0.1)  # not the local half's
