"""The SavedModel: TF Serving layout, reloaded in `python -I` without glow_tf, equal to Keras."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from glow_tf import postprocess
from glow_tf.data import bin_centre_noise
from tests.export.conftest import BATCH_SIZES, TEMPERATURE, split_levels

EXAMPLES = pathlib.Path(__file__).parents[2] / "export" / "examples"
CONTINUOUS_TOLERANCE = 1e-5
LINEAR_ALGEBRA_OPS = {
    "MatrixInverse",
    "MatrixTriangularSolve",
    "MatrixDeterminant",
    "LogMatrixDeterminant",
}


def test_layout_is_tf_servings(exported):
    model_dir = exported.out / exported.name
    assert exported.version_dir == model_dir / "1"
    assert (exported.version_dir / "saved_model.pb").is_file()
    assert (exported.version_dir / "variables" / "variables.index").is_file()
    assert [p.name for p in model_dir.iterdir()] == ["1"]  # no staging directory left behind


def test_reloads_in_an_isolated_process_without_glow_tf(isolated):
    run, responses = isolated
    assert run.isolated
    assert not run.glow_tf_importable
    assert "error_type" not in responses["decode/3"]


@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_decode_equals_the_keras_model(exported, isolated, batch):
    _, responses = isolated
    inputs = exported.inputs[batch]
    expected = exported.model.decode(
        inputs["eps"], y=inputs["labels"], temperature=float(TEMPERATURE), as_uint8=False
    ).numpy()
    expected_images = postprocess(expected, exported.config.num_bits).numpy()
    for signature in ("decode", "decode_levels"):
        response = responses[f"{signature}/{batch}"]
        assert response["images"].dtype == np.uint8
        assert response["images"].shape == (batch, *exported.config.image_shape)
        np.testing.assert_allclose(
            response["continuous"], expected, atol=CONTINUOUS_TOLERANCE, rtol=0
        )
        np.testing.assert_array_equal(response["images"], expected_images)


@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_encode_equals_the_keras_model(exported, isolated, batch):
    _, responses = isolated
    inputs = exported.inputs[batch]
    images = inputs["images"]
    noises = {
        "encode": bin_centre_noise(images, exported.config.num_bits),
        "encode_with_noise": inputs["noise"],
    }
    for signature, noise in noises.items():
        encoding = exported.model.encode(images, y=inputs["labels"], noise=noise)
        response = responses[f"{signature}/{batch}"]
        np.testing.assert_allclose(response["eps"], encoding.flat, atol=CONTINUOUS_TOLERANCE)
        for i, eps in enumerate(encoding.latents):
            np.testing.assert_allclose(response[f"eps_{i}"], eps, atol=CONTINUOUS_TOLERANCE)
        np.testing.assert_allclose(
            response["bits_per_dim"], encoding.bits_per_dim, atol=CONTINUOUS_TOLERANCE, rtol=0
        )
        assert response["bits_per_dim"].shape == (batch,)


def test_bin_centre_encoding_decodes_back_to_the_image(exported, isolated):
    _, responses = isolated
    encoded = responses["encode/64"]
    images = exported.inputs[64]["images"]
    step = 256 // exported.config.num_bins
    decoded = exported.model.decode(encoded["eps"], y=exported.labels(64))
    np.testing.assert_array_equal(decoded, images // step * step)
    levels = split_levels(encoded["eps"], exported.config)
    for name, eps in levels.items():
        np.testing.assert_array_equal(encoded[name], eps)


@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_sample_with_a_seed_is_the_keras_models_sample(exported, isolated, batch):
    _, responses = isolated
    response = responses[f"sample/{batch}"]
    labels = exported.labels(batch)
    expected = exported.model.sample(batch, float(TEMPERATURE), seed=7, y=labels)
    np.testing.assert_array_equal(response["images"], expected)
    assert response["eps"].shape == (batch, exported.config.num_dims)
    # the returned eps are the draw that made the images
    decoded = exported.model.decode(response["eps"], y=labels, temperature=float(TEMPERATURE))
    np.testing.assert_array_equal(decoded, response["images"])


def test_sample_is_reproducible_across_processes(exported, isolated):
    _, responses = isolated
    loaded = tf.saved_model.load(str(exported.version_dir))
    inputs = {"num_samples": tf.constant(3), "temperature": tf.constant(TEMPERATURE)}
    inputs["seed"] = tf.constant(7, tf.int64)
    if exported.config.conditional:
        inputs["labels"] = tf.constant(exported.labels(3))
    here = loaded.signatures["serving_default"](**inputs)
    np.testing.assert_array_equal(here["images"], responses["sample/3"]["images"])
    np.testing.assert_array_equal(here["eps"], responses["sample/3"]["eps"])
    other_seed = loaded.signatures["sample"](**{**inputs, "seed": tf.constant(8, tf.int64)})
    assert not np.array_equal(other_seed["eps"], here["eps"])


def test_temperature_zero_is_decode_of_zeros(isolated):
    _, responses = isolated
    assert np.abs(responses["sample_t0"]["eps"]).max() > 0
    np.testing.assert_array_equal(
        responses["sample_t0"]["images"], responses["decode_zeros"]["images"]
    )


def test_graph_has_no_matrix_inverse_or_log_determinant(exported):
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((exported.version_dir / "saved_model.pb").read_bytes())
    graph = saved_model.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops.update(node.op for node in function.node_def)
    assert "Conv2D" in ops  # the check reads the function bodies
    assert not ops & LINEAR_ALGEBRA_OPS
    assert set(saved_model.meta_graphs[0].signature_def) >= {
        "serving_default",
        "sample",
        "decode",
        "decode_levels",
        "encode",
        "encode_with_noise",
    }


def _saved_model_cli(*args, cwd):
    command = [sys.executable, "-I", "-m", "tensorflow.python.tools.saved_model_cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


def test_saved_model_cli_show_and_run(conditional_exported, tmp_path):
    exported = conditional_exported
    directory = str(exported.version_dir)
    shown = _saved_model_cli("show", "--dir", directory, "--all", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    for text in ("signature_def['serving_default']", "inputs['num_samples']", "(-1, 8, 8, 3)"):
        assert text in shown.stdout
    labels = exported.labels(3)
    ran = _saved_model_cli(
        "run",
        "--dir",
        directory,
        "--tag_set",
        "serve",
        "--signature_def",
        "serving_default",
        "--input_exprs",
        f"num_samples=3;temperature=0.7;seed=7;labels={labels.tolist()}",
        "--outdir",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    expected = exported.model.sample(3, 0.7, seed=7, y=labels)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "images.npy"), expected)


@pytest.mark.parametrize(
    "request_file, model_name",
    [("sample_request.json", "unconditional"), ("conditional_sample_request.json", "conditional")],
)
def test_the_readme_request_files_run(export_cache, request_file, model_name):
    exported = export_cache[model_name]
    request = json.loads((EXAMPLES / request_file).read_text())
    assert ("labels" in request["inputs"]) == exported.config.conditional
    signature = tf.saved_model.load(str(exported.version_dir)).signatures[request["signature_name"]]
    specs = signature.structured_input_signature[1]
    # as TF Serving's REST API does: JSON values become tensors of the inputs' dtypes
    inputs = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in request["inputs"].items()}
    images = signature(**inputs)["images"]
    labels = request["inputs"].get("labels")
    np.testing.assert_array_equal(images, exported.model.sample(4, 0.7, seed=42, y=labels))
