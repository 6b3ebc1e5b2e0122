"""The command line `python -m glow_tf.sample`, on a model trained briefly on digits."""

from __future__ import annotations

import pytest
import tensorflow as tf

from glow_tf import sample as sampling
from glow_tf.sample.__main__ import main as sample_main
from tests.conftest import TINY


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
