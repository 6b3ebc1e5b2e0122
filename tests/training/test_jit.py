"""--jit: the train step compiles with XLA (the 1x1 conv's log|det| avoids
slogdet, which has no XLA kernel) and gives the same update."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from glow_tf import GlowModel
from glow_tf.data import dequantize
from glow_tf.data.dequantize import bin_centre_noise
from tests.conftest import TINY, tiny_images


def _one_step(jit, monkeypatch):
    images = tiny_images(8, TINY.image_shape, seed=21)
    noise = np.full(images.shape, 0.5 / TINY.num_bins, np.float32)
    model = GlowModel(TINY.replace(seed=6, lu_decomposed=False))
    model.initialize(images, noise=noise)
    model.compile(keras.optimizers.SGD(0.1), jit_compile=jit)
    # fixed noise inside the step: evaluate the gradient step on given inputs
    monkeypatch.setattr(
        dequantize, "uniform_noise", lambda shape, num_bits, seed=None: bin_centre_noise(
            tf.zeros(shape), num_bits
        )
    )
    model.train_on_batch(images)
    return [w.numpy() for w in model.trainable_variables]


def test_xla_train_step_matches_the_graph_step(monkeypatch):
    jitted_weights, plain_weights = _one_step(True, monkeypatch), _one_step(False, monkeypatch)
    for jitted, plain in zip(jitted_weights, plain_weights, strict=True):
        np.testing.assert_allclose(jitted, plain, atol=1e-5)
