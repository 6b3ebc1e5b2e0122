"""--mixed-precision: coupling networks in bfloat16/float16, flow, log-dets and
priors in float32; training on digits lands within 0.02 bits/dim of float32."""

from __future__ import annotations

import numpy as np
import pytest

from glow_tf import GlowConfig, GlowModel
from glow_tf.data.datasets import load_source
from glow_tf.data.digits import digits_arrays
from glow_tf.data.pipeline import training_dataset
from glow_tf.training.optimizers import initial_loss_scale, make_optimizer

STEPS = 30


def _config(dtype):
    return GlowConfig(
        image_shape=(8, 8, 1),
        num_levels=2,
        num_steps=2,
        hidden_channels=16,
        num_bits=5,
        network_dtype=dtype,
        seed=0,
    )


def _test_bits(model):
    images = digits_arrays("test")[0]
    noise = np.full(images.shape, 0.5 / 32, np.float32)
    bits = model.bits_per_dim(images, noise=noise)
    assert bits.dtype.name == "float32"
    return float(np.mean(bits))


def _trained(dtype):
    config = _config(dtype)
    model = GlowModel(config)
    init = digits_arrays("train")[0][:256]
    model.initialize(init, noise=np.full(init.shape, 0.5 / 32, np.float32))
    start = _test_bits(model)
    scale = initial_loss_scale(config.num_dims) if dtype == "float16" else None
    model.compile(make_optimizer("adamax", 2e-3, warmup_steps=10, loss_scale=scale))
    model.fit(
        training_dataset(load_source("digits"), 64, seed=0),
        steps_per_epoch=STEPS,
        epochs=1,
        verbose=0,
    )
    return model, start, _test_bits(model)


@pytest.fixture(scope="module")
def float32_run():
    return _trained("float32")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_networks_train_like_float32(float32_run, dtype):
    model, start, end = _trained(dtype)
    _, start32, end32 = float32_run
    network = model.levels[0].steps[0].coupling.network
    assert network.compute_dtype == dtype and network.variable_dtype == "float32"
    assert all(w.dtype == "float32" for w in model.weights if w.dtype != "int32")
    step = model.levels[0].steps[0]
    assert step.act_norm.compute_dtype == "float32" and step.permutation.compute_dtype == "float32"
    assert model.top_prior.compute_dtype == "float32"
    assert abs(start - start32) < 0.01  # same initial weights, low-precision networks
    assert end < start - 0.3  # it trained
    assert abs(end - end32) < 0.02, (dtype, end, end32)
    if dtype == "float16":  # no update was skipped for overflow
        assert float(model.optimizer.dynamic_scale.numpy()) == initial_loss_scale(64)


def test_initial_loss_scale_follows_the_dimension():
    assert initial_loss_scale(64) == 64.0
    assert initial_loss_scale(3 * 32 * 32) == 4096.0
    assert initial_loss_scale(3 * 256 * 256) == 2.0**15
