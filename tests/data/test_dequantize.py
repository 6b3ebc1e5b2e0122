"""Dequantisation noise: the bin centre and its range."""

from __future__ import annotations

import numpy as np

from glow_tf.data.dequantize import bin_centre_noise, check_noise


def test_bin_centre_noise_is_half_a_bin_of_the_images_shape():
    images = np.zeros((2, 4, 4, 3), np.uint8)
    for num_bits, centre in ((8, 0.5 / 256), (5, 0.5 / 32), (1, 0.25)):
        noise = bin_centre_noise(images, num_bits).numpy()
        assert noise.shape == images.shape and noise.dtype == np.float32
        np.testing.assert_array_equal(noise, np.float32(centre))
        check_noise(noise, images.shape, num_bits)  # inside [0, 1 / n_bins)
