"""`python -m export` and `python -m export.verify` end to end."""

from __future__ import annotations

import json

from export.layout import METADATA_FILE
from export.verify import main as verify_main
from glow_tf import GlowModel
from tests.conftest import tiny_images
from tests.export.conftest import MAX_BATCH_SIZE


def test_cli_exports_in_tf_serving_layout_and_verify_passes(conditional_exported, capsys):
    exported = conditional_exported  # written by `python -m export` (see conftest.py)
    assert exported.cli_output.returncode == 0
    version_dir = exported.out / "conditional" / "1"
    assert f"-> {version_dir}" in exported.cli_output.stdout
    files = {p.name for p in version_dir.iterdir()}
    assert {"saved_model.pb", "variables", "decoder.onnx", "encoder.onnx", METADATA_FILE} <= files
    metadata = json.loads((version_dir / METADATA_FILE).read_text())
    assert metadata["glow_config"] == exported.config.to_dict()
    assert metadata["max_batch_size"] == MAX_BATCH_SIZE and metadata["batch_size"] is None
    assert metadata["source"] == str(exported.keras_path)
    assert set(metadata["saved_model"]["signatures"]["sample"]["inputs"]) == {
        "num_samples",
        "temperature",
        "seed",
        "labels",
    }

    code = verify_main([str(exported.out), "--model", str(exported.keras_path), "--batch", "8"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "saved_model decode continuous" in printed and "onnx decoder continuous" in printed
    assert "FAIL" not in printed and "checks passed" in printed


def test_verify_fails_against_another_models_weights(unconditional_exported, tmp_path, capsys):
    exported = unconditional_exported
    other = GlowModel(exported.config)
    other.initialize(tiny_images(32, exported.config.image_shape, seed=99))
    other.save(tmp_path / "other.keras")
    code = verify_main([str(exported.out), "--model", str(tmp_path / "other.keras")])
    printed = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in printed and "checks FAILED" in printed


def test_verify_refuses_a_model_of_another_configuration(
    unconditional_exported, conditional_exported, capsys
):
    code = verify_main(
        [str(unconditional_exported.out), "--model", str(conditional_exported.keras_path)]
    )
    assert code == 2
    assert "made from another configuration" in capsys.readouterr().err
    code = verify_main([str(unconditional_exported.out / "missing"), "--model", "m.keras"])
    assert code == 2
    assert "export directory not found" in capsys.readouterr().err
