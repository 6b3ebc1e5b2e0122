"""Attribute directions: the difference of means, saved and loaded, and manipulation."""

from __future__ import annotations

import numpy as np
import pytest

from glow_tf import sample as sampling
from tests.conftest import TINY, tiny_images
from tests.sample.test_latent_space import quantized


def test_attribute_direction_is_the_difference_of_means(tiny_model, tmp_path):
    images = tiny_images(10, TINY.image_shape, seed=12)
    has = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0, 0], bool)
    z = sampling.encode_flat(tiny_model, images)
    direction = sampling.attribute_direction(tiny_model, images, has)
    np.testing.assert_allclose(direction, z[has].mean(0) - z[~has].mean(0), atol=1e-5)
    path = sampling.save_direction(str(tmp_path / "d.npz"), direction, attribute="blob")
    loaded, metadata = sampling.load_direction(path, TINY.num_dims)
    np.testing.assert_array_equal(loaded, direction)
    assert metadata == {"attribute": "blob"}
    with pytest.raises(ValueError, match="latents have 128 dimensions"):
        sampling.load_direction(
            sampling.save_direction(str(tmp_path / "e.npz"), direction[:5]), 128
        )
    with pytest.raises(ValueError, match="with and without the attribute"):
        sampling.attribute_direction(tiny_model, images, np.ones(10, bool))
    strips = sampling.manipulation(tiny_model, images[:2], direction, [0.0, 2.0])
    assert strips.shape == (4, *TINY.image_shape)
    np.testing.assert_array_equal(strips[0], quantized(images[0], TINY.num_bits))
    assert not np.array_equal(strips[0], strips[1])
