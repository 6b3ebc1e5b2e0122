"""Squeeze follows OpenAI's channel order, which is not tf.nn.space_to_depth."""

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.flow import Squeeze, squeeze2d, unsqueeze2d
from tests.conftest import OPENAI_REFERENCE


def test_matches_official_squeeze2d():
    with np.load(OPENAI_REFERENCE / "squeeze_check.npz") as check:
        x, official, space_to_depth = check["x"], check["squeeze2d"], check["space_to_depth"]
    ours = squeeze2d(tf.constant(x))
    np.testing.assert_array_equal(ours, official)
    assert not np.array_equal(ours, space_to_depth)
    np.testing.assert_array_equal(unsqueeze2d(ours), x)


def test_channel_index_formula():
    x = np.arange(2 * 4 * 6 * 3, dtype=np.float32).reshape(2, 4, 6, 3)
    y = squeeze2d(tf.constant(x)).numpy()
    for c in range(3):
        for dy in range(2):
            for dx in range(2):
                np.testing.assert_array_equal(y[..., 4 * c + 2 * dy + dx], x[:, dy::2, dx::2, c])


def test_event_shapes():
    bijector = Squeeze()
    assert bijector.forward_event_shape([8, 6, 3]) == [4, 3, 12]
    assert bijector.inverse_event_shape([4, 3, 12]) == [8, 6, 3]


def test_rejects_odd_sizes():
    with pytest.raises(ValueError, match="divisible by 2"):
        squeeze2d(tf.zeros([1, 5, 4, 1]))
    with pytest.raises(ValueError, match="divisible by 4"):
        unsqueeze2d(tf.zeros([1, 2, 2, 6]))


REALNVP_SQUEEZE_CHECK = OPENAI_REFERENCE.parent / "realnvp_reference" / "squeeze_check.npz"


def test_matches_official_realnvp_squeezes():
    """Labelled input (100*channel + 10*row + col) through the official
    RealNVP `squeeze_2x2` (channel-major) and `squeeze_2x2_ordered`."""
    from glow_tf.flow import Unsqueeze, squeeze2d_diagonal_first, unsqueeze2d_diagonal_first

    with np.load(REALNVP_SQUEEZE_CHECK) as check:
        x = check["input"]
        channel_major, ordered = check["squeeze_2x2"], check["squeeze_2x2_ordered"]
        space_to_depth = check["space_to_depth"]
    np.testing.assert_array_equal(squeeze2d(tf.constant(x)), channel_major)
    ours = squeeze2d_diagonal_first(tf.constant(x))
    np.testing.assert_array_equal(ours, ordered)
    assert not np.array_equal(ours, space_to_depth)
    np.testing.assert_array_equal(unsqueeze2d_diagonal_first(ours), x)
    bijector = Squeeze(order="diagonal_first")
    np.testing.assert_array_equal(bijector.forward(x), ordered)
    np.testing.assert_array_equal(Unsqueeze(order="diagonal_first").forward(ordered), x)
    # the first 2C channels are the diagonal pixels (0, 0) and (1, 1) of each block
    np.testing.assert_array_equal(ours[..., :2], x[:, 0::2, 0::2, :])
    np.testing.assert_array_equal(ours[..., 2:4], x[:, 1::2, 1::2, :])


def test_diagonal_first_needs_factor_two():
    with pytest.raises(ValueError, match="diagonal_first order needs factor 2"):
        Squeeze(factor=3, order="diagonal_first")
    with pytest.raises(ValueError, match="unknown squeeze order"):
        Squeeze(order="space_to_depth")
