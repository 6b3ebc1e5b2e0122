"""Temperature grids, reconstructions and interpolations of a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import sample as sampling
from tests.conftest import TINY, tiny_images


def quantized(images, num_bits):
    step = 256 // 2**num_bits
    return images // step * step


def test_temperature_grid_rows_share_eps(tiny_model):
    grid = sampling.temperature_grid(tiny_model, [0.0, 0.7], per_row=4, seed=1)
    assert grid.shape == (8, *TINY.image_shape) and grid.dtype == np.uint8
    zeros = tiny_model.decode(tf.zeros([4, TINY.num_dims]))
    np.testing.assert_array_equal(grid[:4], zeros)
    eps = tf.random.stateless_normal([4, TINY.num_dims], seed=[1, 0])
    np.testing.assert_array_equal(grid[4:], tiny_model.decode(eps, temperature=0.7))


def test_reconstructions_and_interpolation_end_points(tiny_model):
    images = tiny_images(3, TINY.image_shape, seed=11)
    pairs = sampling.reconstructions(tiny_model, images)
    expected = quantized(images, TINY.num_bits)
    np.testing.assert_array_equal(pairs[0::2], expected)
    np.testing.assert_array_equal(pairs[1::2], expected)  # the flow inverts exactly
    strip = sampling.interpolation(tiny_model, images[0], images[1], steps=5)
    assert strip.shape == (5, *TINY.image_shape)
    np.testing.assert_array_equal(strip[0], expected[0])
    np.testing.assert_array_equal(strip[-1], expected[1])
    with pytest.raises(ValueError, match="steps >= 2"):
        sampling.interpolation(tiny_model, images[0], images[1], steps=1)
