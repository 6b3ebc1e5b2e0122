"""Bad input: served signatures answer InvalidArgument with a message; bad files and arguments
get clear errors; an existing version is never overwritten by accident."""

from __future__ import annotations

import json

import keras
import pytest

from export import ServedGlow, export_model, load_glow_model
from export.__main__ import main as export_main
from export.layout import METADATA_FILE
from glow_tf import GlowModel
from tests.export.conftest import CONFIGS, MAX_BATCH_SIZE, bad_requests

# label -> a piece of the error message the served signature must give
EXPECTED_MESSAGES = {
    "eps_wrong_width": "Shape of tensor eps [3,",
    "eps_wrong_rank": "Shape of tensor eps [3,",
    "eps_float64": "expected to be a float tensor but is a double tensor",
    "eps_nan": "eps must not contain NaN or Inf",
    "temperature_negative": "temperature must be >= 0 and finite",
    "temperature_nan": "temperature must be >= 0 and finite",
    "temperature_vector": "Shape of tensor temperature [3] is not compatible with expected",
    "images_float": "expected to be a uint8 tensor but is a float tensor",
    "images_wrong_shape": "Shape of tensor images [3,",
    "images_wrong_channels": "Shape of tensor images [3,8,8,2]",
    "noise_out_of_range": "noise must lie in [0, ",
    "num_samples_zero": "num_samples must be >= 1",
    "num_samples_negative": "num_samples must be >= 1",
    "num_samples_above_cap": f"num_samples must be <= {MAX_BATCH_SIZE}",
    "num_samples_int64": "expected to be a int32 tensor but is a int64 tensor",
    "sample_temperature_negative": "temperature must be >= 0 and finite",
    "sample_temperature_huge": "temperature * eps must lie in [-1000, 1000]",
    "eps_inf": "eps must not contain NaN or Inf",
    "eps_huge": "temperature * eps must lie in [-1000, 1000]",
    "temperature_huge": "temperature * eps must lie in [-1000, 1000]",
    "eps_empty": "the batch of eps must be >= 1 (an empty batch)",
    "eps_over_cap": f"the batch of eps must be <= {MAX_BATCH_SIZE} (the max batch size of",
    "images_empty": "the batch of images must be >= 1 (an empty batch)",
    "images_over_cap": f"the batch of images must be <= {MAX_BATCH_SIZE}",
    "noise_one_for_all": "noise must have the batch size of images",
    "noise_too_many": "noise must have the batch size of images",
    "noise_nan": "noise must lie in [0, ",
    "noise_wrong_rank": "Shape of tensor noise [8,8,",
    "levels_wrong_shape": "Shape of tensor eps_1 [3,1,1,1] is not compatible",
    "levels_wrong_rank": "Shape of tensor eps_0 [3,",
    "levels_batch_mismatch": "eps_1 must have the batch size of eps_0",
    "levels_nan": "eps_0 must not contain NaN or Inf",
    "levels_huge": "temperature * eps_1 must lie in [-1000, 1000]",
    "levels_empty": "the batch of eps_0 must be >= 1",
    "levels_float64": "expected to be a float tensor but is a double tensor",
    "labels_out_of_range": "labels must lie in [0, 3)",
    "labels_negative": "labels must lie in [0, 3)",
    "labels_too_few": "labels must have the batch size of eps",
    "labels_float": "expected to be a int32 tensor but is a float tensor",
    "sample_labels_count": "labels must have the batch size of num_samples",
    "sample_labels_out_of_range": "labels must lie in [0, 3)",
    "encode_labels_out_of_range": "labels must lie in [0, 3)",
}


def test_served_signatures_reject_bad_input_with_invalid_argument(exported, isolated):
    _, responses = isolated
    labels = sorted(bad_requests(exported))
    assert len(labels) >= (42 if exported.config.conditional else 35)
    wrong = {}
    for label in labels:
        response = responses[f"bad/{label}"]
        error_type = response.get("error_type")
        message = response.get("error_message", "")
        if error_type != "InvalidArgumentError" or EXPECTED_MESSAGES[label] not in message:
            wrong[label] = (error_type, message[-300:] or f"no error: {sorted(response)}")
    assert not wrong, wrong


def test_a_missing_model_file_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_glow_model(tmp_path / "missing.keras")
    code = export_main(["--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path)])
    assert code == 2
    assert "error: model file not found" in capsys.readouterr().err
    assert not (tmp_path / "glow").exists()


def test_files_that_are_not_glow_models_are_refused(tmp_path):
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="not a Keras .keras archive"):
        load_glow_model(text)
    with pytest.raises(ValueError, match="is a directory"):
        load_glow_model(tmp_path)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.save(tmp_path / "dense.keras")
    with pytest.raises(ValueError, match="holds a Keras 'Sequential'.*not a glow_tf GlowModel"):
        load_glow_model(tmp_path / "dense.keras")


def test_an_uninitialised_model_is_not_exported(tmp_path):
    with pytest.raises(ValueError, match="not initialised"):
        export_model(GlowModel(CONFIGS["unconditional"]), tmp_path)
    assert not (tmp_path / "glow").exists()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"formats": "saved_model,tflite"}, ValueError, "unknown export formats \\['tflite'\\]"),
        ({"formats": ""}, ValueError, "no export format"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an int"),
        ({"max_batch_size": 0}, ValueError, "max_batch_size must be >= 1"),
        ({"name": "../escape"}, ValueError, "model name must be"),
        ({"version": 0}, ValueError, "version must be a positive int"),
        ({"opset": 13, "formats": "onnx"}, ValueError, "opset must be an int >= 17"),
    ],
)
def test_bad_export_arguments(unconditional_exported, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        export_model(unconditional_exported.model, tmp_path, **kwargs)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_cli_rejects_a_bad_batch_size(capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_main(["--model", "m.keras", "--out", "out", "--batch-size", "zero"])
    assert exit_info.value.code == 2
    assert "expected 'none' or a positive int" in capsys.readouterr().err


def _snapshot(directory):
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_versions_are_never_overwritten_without_overwrite(
    unconditional_exported, tmp_path, monkeypatch
):
    def write_stub(served, directory, opset):  # the layout logic, without converting
        (directory / "decoder.onnx").write_bytes(b"decoder %d" % served.max_batch_size)
        return {"decoder": directory / "decoder.onnx"}

    def fail_halfway(served, directory, opset):
        (directory / "decoder.onnx").write_bytes(b"half a file")
        raise OSError("disk full")

    def export(**kwargs):
        return export_model(unconditional_exported.model, tmp_path, formats="onnx", **kwargs)

    monkeypatch.setattr("export.exporter.write_onnx", write_stub)
    first, second = export(), export(max_batch_size=9)
    assert (first.name, second.name) == ("1", "2")  # the next free version by default
    before = _snapshot(second)
    with pytest.raises(FileExistsError, match="already exists; pass --overwrite"):
        export(version=2)
    monkeypatch.setattr("export.exporter.write_onnx", fail_halfway)
    with pytest.raises(OSError, match="disk full"):
        export(version=2, overwrite=True)
    assert _snapshot(second) == before  # a failed export leaves the old version as it was
    assert sorted(p.name for p in (tmp_path / "glow").iterdir()) == ["1", "2"]
    monkeypatch.setattr("export.exporter.write_onnx", write_stub)
    assert export(version=2, overwrite=True) == second
    metadata = json.loads((second / METADATA_FILE).read_text())
    assert metadata["max_batch_size"] == 256 and metadata["version"] == 2
    assert (second / "decoder.onnx").read_bytes() == b"decoder 256"
    assert sorted(p.name for p in (tmp_path / "glow").iterdir()) == ["1", "2"]


def test_cli_refuses_an_existing_version(unconditional_exported, capsys):
    exported = unconditional_exported
    before = _snapshot(exported.version_dir)
    code = export_main(
        [
            "--model",
            str(exported.keras_path),
            "--out",
            str(exported.out),
            "--name",
            exported.name,
            "--version",
            "1",
        ]
    )
    assert code == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert _snapshot(exported.version_dir) == before


def test_served_glow_checks_its_arguments(unconditional_exported):
    model = unconditional_exported.model
    with pytest.raises(TypeError, match="expected a glow_tf GlowModel"):
        ServedGlow(keras.Sequential())
    with pytest.raises(ValueError, match="exceeds max_batch_size"):
        ServedGlow(model, max_batch_size=4, batch_size=8)
    with pytest.raises(ValueError, match="unknown function"):
        ServedGlow(model).function("train")
