"""Image grids and PNG files."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import sample as sampling


def test_image_grid_layout_and_png_round_trip(tmp_path):
    images = np.stack([np.full((2, 3, 1), i, np.uint8) for i in range(5)])
    grid = sampling.image_grid(images, columns=3, padding=1, pad_value=200)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1)
    assert grid[1, 1, 0] == 0 and grid[1, 5, 0] == 1 and grid[4, 1, 0] == 3
    assert grid[4, 9, 0] == 200  # the empty sixth cell
    assert sampling.image_grid(images, 3, scale=2).shape == (14, 26, 1)
    path = sampling.write_png(str(tmp_path / "sub" / "grid.png"), grid)
    np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(path)).numpy(), grid)
    with pytest.raises(ValueError, match="uint8 images"):
        sampling.image_grid(images.astype(np.float32), 3)
