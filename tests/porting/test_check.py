"""The check tool: one line per quantity, PASS only when everything matches."""

from __future__ import annotations

import numpy as np
import pytest

from glow_tf.porting import compare_with_reference, format_report, port_checkpoint
from glow_tf.porting.check import main
from tests.conftest import Reference


@pytest.fixture(scope="module")
def ref_a():
    reference = Reference("ref_A")
    result = port_checkpoint(reference.dir / "ckpt_trained", hps=reference.dir / "hps.json")
    return reference, result.model


def test_report_has_one_line_per_quantity_and_a_verdict(ref_a):
    reference, model = ref_a
    comparisons = compare_with_reference(model, reference.dir)
    lines = format_report(comparisons).splitlines()
    assert lines[-1] == "PASS"
    assert len(lines) == len(comparisons) + 1
    names = [line.split()[0] for line in lines[:-1]]
    assert len(names) == len(set(names))
    assert set(reference.npz("ref_forward.npz")) <= set(names)
    assert all("max|diff|" in line for line in lines[:-1])


def test_a_wrong_weight_fails_and_the_first_mismatch_names_the_layer(ref_a):
    reference, model = ref_a
    bias = model.levels[1].steps[1].coupling.network.conv_out.bias
    original = bias.numpy().copy()
    try:
        bias.assign(original + 0.05)
        comparisons = compare_with_reference(model, reference.dir)
    finally:
        bias.assign(original)
    assert format_report(comparisons).endswith("FAIL")
    failing = [c.name for c in comparisons if not c.passed]
    assert failing[0] == "step1_1_nn"
    assert {"bits_x", "feps", "x_rec"} <= set(failing)
    assert all(c.passed for c in comparisons if c.name.startswith(("step0_", "step1_0_")))


def test_exit_status(ref_a, tmp_path, capsys):
    reference, model = ref_a
    path = tmp_path / "a.keras"
    model.save(path)
    assert main(["--model", str(path), "--reference", str(reference.dir)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("PASS")
    bias = model.top_prior.learned.bias
    original = bias.numpy().copy()
    try:
        bias.assign(original + 0.01)
        model.save(tmp_path / "wrong.keras")
    finally:
        bias.assign(original)
    assert (
        main(
            [
                "--model",
                str(tmp_path / "wrong.keras"),
                "--reference",
                str(reference.dir),
            ]
        )
        == 1
    )
    assert capsys.readouterr().out.rstrip().endswith("FAIL")
    # another run's outputs: its noise is for 5 bits, not this model's 8
    assert main(["--model", str(path), "--reference", str(Reference("ref_B").dir)]) == 2
    assert "dequantisation noise" in capsys.readouterr().err
    assert main(["--model", str(path), "--reference", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "has no x_ref.npy" in captured.err and captured.out.rstrip().endswith("FAIL")


def test_a_file_that_is_no_glow_model(tmp_path, capsys):
    import keras

    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    other.save(tmp_path / "dense.keras")
    reference = Reference("ref_A").dir
    assert main(["--model", str(tmp_path / "dense.keras"), "--reference", str(reference)]) == 2
    assert "not a glow_tf GlowModel" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "none.keras"), "--reference", str(reference)]) == 2


def test_images_of_another_size_are_an_error(ref_a, tmp_path):
    _, model = ref_a
    np.save(tmp_path / "x_ref.npy", np.zeros((2, 8, 8, 3), np.uint8))
    np.save(tmp_path / "noise_ref.npy", np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \(8, 8, 3\), the model expects \(16, 16, 3\)"):
        compare_with_reference(model, tmp_path)
