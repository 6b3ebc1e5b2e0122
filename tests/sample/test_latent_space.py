"""Qualitative experiments: grids, reconstructions, interpolation, attribute directions, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import sample as sampling
from glow_tf.sample.__main__ import main as sample_main
from tests.conftest import TINY, tiny_images


def _quantized(images, num_bits):
    step = 256 // 2**num_bits
    return images // step * step


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
    expected = _quantized(images, TINY.num_bits)
    np.testing.assert_array_equal(pairs[0::2], expected)
    np.testing.assert_array_equal(pairs[1::2], expected)  # the flow inverts exactly
    strip = sampling.interpolation(tiny_model, images[0], images[1], steps=5)
    assert strip.shape == (5, *TINY.image_shape)
    np.testing.assert_array_equal(strip[0], expected[0])
    np.testing.assert_array_equal(strip[-1], expected[1])
    with pytest.raises(ValueError, match="steps >= 2"):
        sampling.interpolation(tiny_model, images[0], images[1], steps=1)


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
    np.testing.assert_array_equal(strips[0], _quantized(images[0], TINY.num_bits))
    assert not np.array_equal(strips[0], strips[1])


@pytest.fixture(scope="module")
def saved_digits_model(tmp_path_factory):
    from glow_tf import GlowModel
    from glow_tf.data.digits import digits_arrays

    model = GlowModel(TINY.replace(seed=4))
    model.initialize(digits_arrays("train")[0][:64])
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    model.save(path)
    return path


def _png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def test_cli_commands_write_their_files(saved_digits_model, tmp_path, capsys):
    model = ["--model", saved_digits_model]
    assert (
        sample_main(
            [
                "grid",
                *model,
                "--out",
                str(tmp_path / "g.png"),
                "--temperatures",
                "0",
                "1",
                "--per-row",
                "3",
                "--scale",
                "1",
            ]
        )
        == 0
    )
    assert _png(tmp_path / "g.png").shape == (2 * 9 + 1, 3 * 9 + 1, 1)
    digits = ["--dataset", "digits"]
    assert (
        sample_main(
            [
                "reconstruct",
                *model,
                *digits,
                "--count",
                "2",
                "--scale",
                "1",
                "--out",
                str(tmp_path / "r.png"),
            ]
        )
        == 0
    )
    assert _png(tmp_path / "r.png").shape == (10, 37, 1)
    assert (
        sample_main(
            [
                "interpolate",
                *model,
                *digits,
                "--pairs",
                "0",
                "1",
                "2",
                "3",
                "--steps",
                "4",
                "--scale",
                "1",
                "--out",
                str(tmp_path / "i.png"),
            ]
        )
        == 0
    )
    assert _png(tmp_path / "i.png").shape == (19, 37, 1)
    assert (
        sample_main(
            [
                "direction",
                *model,
                *digits,
                "--label",
                "3",
                "--examples",
                "100",
                "--out",
                str(tmp_path / "three.npz"),
            ]
        )
        == 0
    )
    direction, metadata = sampling.load_direction(str(tmp_path / "three.npz"), TINY.num_dims)
    assert metadata["attribute"] == "label=3" and metadata["with_attribute"] > 0
    assert (
        sample_main(
            [
                "manipulate",
                *model,
                *digits,
                "--direction",
                str(tmp_path / "three.npz"),
                "--strengths",
                "0",
                "1",
                "--count",
                "3",
                "--scale",
                "1",
                "--out",
                str(tmp_path / "m.png"),
            ]
        )
        == 0
    )
    assert _png(tmp_path / "m.png").shape == (28, 19, 1)
    assert "wrote" in capsys.readouterr().out


def test_cli_errors_are_messages(saved_digits_model, tmp_path, capsys):
    model = ["--model", saved_digits_model]
    cases = [
        (
            ["grid", "--model", str(tmp_path / "none.keras"), "--out", "x.png"],
            "model file not found",
        ),
        (
            [
                "direction",
                *model,
                "--dataset",
                "digits",
                "--attribute",
                "Smiling",
                "--out",
                "d.npz",
            ],
            "has no attribute 'Smiling'",
        ),
        (["reconstruct", *model, "--dataset", "cifar10", "--out", "r.png"], "takes (8, 8, 1)"),
        (["grid", *model, "--label", "2", "--out", "g.png"], "needs a class-conditional model"),
        (
            [
                "interpolate",
                *model,
                "--dataset",
                "digits",
                "--pairs",
                "0",
                "1",
                "2",
                "--out",
                "i.png",
            ],
            "two by two",
        ),
    ]
    for argv, message in cases:
        if "cifar10" in argv:
            import tensorflow_datasets as tfds

            with tfds.testing.mock_data(num_examples=2):
                code = sample_main(argv)
        else:
            code = sample_main(argv)
        error = capsys.readouterr().err
        assert code == 2 and message in error, (argv, error)
