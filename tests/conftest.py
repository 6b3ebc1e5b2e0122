"""Shared fixtures: tiny configs, built models, the OpenAI reference data."""

from __future__ import annotations

import contextlib
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

import glow_tf
from glow_tf import GlowConfig, GlowModel

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
OPENAI_REFERENCE = FIXTURES / "openai_reference"
REPO_ROOT = pathlib.Path(__file__).parent.parent


def openai_config(ref_dir: pathlib.Path) -> GlowConfig:
    """The GlowConfig of a reference folder's official `hps.json`."""
    from glow_tf.porting.hps import config_from_hps, read_hps

    return config_from_hps(read_hps(ref_dir / "hps.json"))


class Reference:
    """One OpenAI reference folder, loaded lazily."""

    def __init__(self, name: str):
        self.name = name
        self.dir = OPENAI_REFERENCE / name
        self.config = openai_config(self.dir)

    def npz(self, name: str) -> dict:
        with np.load(self.dir / name) as data:
            return {key: data[key] for key in data.files}

    def npy(self, name: str) -> np.ndarray:
        return np.load(self.dir / name)

    def labels(self, name: str = "y_ref.npy"):
        return self.npy(name) if self.config.conditional else None


@pytest.fixture(scope="session", params=["ref_A", "ref_B"])
def reference(request) -> Reference:
    return Reference(request.param)


@pytest.fixture(scope="session")
def reference_model(reference):
    """A GlowModel holding the reference's trained official weights."""
    from glow_tf.porting.openai_names import load_openai_weights

    model = GlowModel(reference.config)
    load_openai_weights(model, reference.npz("vars_trained.npz"))
    return model


def tiny_images(batch: int, shape=(8, 8, 1), seed: int = 0) -> np.ndarray:
    """Smooth random uint8 images (blobs), so a flow has structure to learn."""
    rng = np.random.default_rng(seed)
    height, width, channels = shape
    yy, xx = np.mgrid[0:height, 0:width]
    images = np.zeros((batch, height, width, channels), np.float32)
    for b in range(batch):
        for c in range(channels):
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            sigma = rng.uniform(1.0, 3.0)
            images[b, :, :, c] = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    return np.clip(images + rng.normal(0, 8, images.shape), 0, 255).astype(np.uint8)


TINY = GlowConfig(
    image_shape=(8, 8, 1), num_levels=2, num_steps=2, hidden_channels=8, num_bits=5, seed=1
)


@pytest.fixture(scope="session")
def tiny_config() -> GlowConfig:
    return TINY


@pytest.fixture(scope="session")
def tiny_model() -> GlowModel:
    """An initialised tiny unconditional model; tests must not train it."""
    model = GlowModel(TINY)
    model.initialize(tiny_images(32, TINY.image_shape))
    return model


# K = 32 steps per level: deep enough that a half-precision coupling network
# breaks the round trip (see trained_like and tests/models/test_deep_round_trip.py)
DEEP = GlowConfig(
    image_shape=(8, 8, 1), num_levels=2, num_steps=32, hidden_channels=8, num_bits=8, seed=3
)


def trained_like(model: GlowModel, images, seed: int = 0, output_std: float = 0.4) -> GlowModel:
    """Gives `model` weights far from the identity, at the scales of a trained Glow.

    The zero-initialised output layer of every coupling network gets a kernel
    ~ N(0, s^2) with s = output_std / sqrt(fan_in / 2), so that on its
    normalised ReLU input the network output h has a std of about output_std
    whatever the width, and bias, logs ~ N(0, 0.1^2): shifts of a few tenths,
    scales sigmoid(h + 2) of about 0.75 .. 0.95 (OpenAI's trained CelebA
    couplings have both); then every ActNorm is initialised from `images` at
    bin centres.
    """
    from glow_tf.data.dequantize import bin_centre_noise

    rng = np.random.default_rng(seed)
    for weight in model.weights:
        parent, name = weight.path.split("/")[-2:]
        if parent == "conv_out":
            shape = tuple(weight.shape)
            std = output_std / np.sqrt(np.prod(shape[:-1]) / 2) if name == "kernel" else 0.1
            weight.assign(rng.normal(0.0, std, shape).astype(np.float32))
    model.initialize(images, noise=bin_centre_noise(images, model.config.num_bits))
    return model


@pytest.fixture(scope="session")
def deep_models() -> dict[str, GlowModel]:
    """`DEEP` models with the same trained-like weights, by coupling-network
    dtype ("float32", "bfloat16", "float16"); tests must not train them."""
    images = tiny_images(16, DEEP.image_shape, seed=1)
    reference = trained_like(GlowModel(DEEP), images)
    models = {"float32": reference}
    for dtype in ("bfloat16", "float16"):
        models[dtype] = GlowModel(DEEP.replace(network_dtype=dtype))
        models[dtype].set_weights(reference.get_weights())
    return models


@contextlib.contextmanager
def functions_run_eagerly():
    """Runs tf.functions eagerly inside: the same kernels without tracing,
    which for one call of a K = 32 model is several times faster."""
    import tensorflow as tf

    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(before)


@pytest.fixture
def eagerly():
    """The test runs its tf.functions eagerly (`functions_run_eagerly`)."""
    with functions_run_eagerly():
        yield


__all__ = ["Reference", "openai_config", "tiny_images", "trained_like", "functions_run_eagerly", "DEEP", "TINY", "OPENAI_REFERENCE", "REPO_ROOT", "glow_tf"]
