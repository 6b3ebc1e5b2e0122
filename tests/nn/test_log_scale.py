"""Log-scales stored as OpenAI's `logs` (log_scale = 3 * logs); old files refused."""

from __future__ import annotations

import ast
import io
import pathlib
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from glow_tf.nn import ActNormalization, LinearZeros, ZeroConv2D
from glow_tf.nn.log_scale import LOGSCALE_FACTOR
from tests.conftest import REPO_ROOT


def test_layers_scale_by_exp_of_three_logs():
    conv = ZeroConv2D(2, 3)
    conv.build((None, 4, 4, 1))
    conv.bias.assign([1.0, -2.0])
    conv.logs.assign([0.1, -0.2])
    y = conv(tf.zeros([1, 4, 4, 1]))
    np.testing.assert_allclose(y[0, 0, 0], [np.exp(0.3), -2.0 * np.exp(-0.6)], rtol=1e-6)
    np.testing.assert_array_equal(conv.log_scale, np.float32(3.0) * np.float32([0.1, -0.2]))
    dense = LinearZeros(2)
    dense.build((None, 3))
    dense.bias.assign([1.0, 1.0])
    dense.logs.assign([0.5, 0.0])
    np.testing.assert_allclose(dense(tf.zeros([1, 3]))[0], [np.exp(1.5), 1.0], rtol=1e-6)
    assert [w.name for w in dense.weights] == ["kernel", "bias", "logs"]
    with pytest.raises(AttributeError):
        dense.log_scale = tf.zeros([2])  # read-only: assign `logs`


def _sequential():
    model = keras.Sequential(
        [keras.Input((4, 4, 2)), ZeroConv2D(3, name="conv"), ActNormalization(name="norm")]
    )
    model.layers[0].logs.assign([0.1, 0.2, 0.3])
    model.layers[1].logs.assign([-0.1, 0.0, 0.1])
    return model


def _without_factor(path, old_path):
    """The same file as glow_tf wrote it before `logs`: no "logscale_factor" entries."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    weights = io.BytesIO(files["model.weights.h5"])
    with h5py.File(weights, "a") as h5:
        found = []
        h5.visit(lambda name: found.append(name) if name.endswith("/logscale_factor") else None)
        assert len(found) == 2
        for name in found:
            del h5[name]
    files["model.weights.h5"] = weights.getvalue()
    with zipfile.ZipFile(old_path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def test_keras_file_round_trip_and_old_files_are_refused(tmp_path):
    model = _sequential()
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 4, 4, 2)), tf.float32)
    path, old_path = str(tmp_path / "new.keras"), str(tmp_path / "old.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(reloaded(x), model(x))
    np.testing.assert_array_equal(reloaded.layers[0].logs, model.layers[0].logs)
    _without_factor(path, old_path)
    with pytest.raises(ValueError, match="saved before glow_tf stored log-scales as OpenAI's"):
        keras.models.load_model(old_path)


def test_logscale_factor_is_openais():
    assert LOGSCALE_FACTOR == 3.0


def test_nn_does_not_import_flow():
    for path in pathlib.Path(REPO_ROOT, "glow_tf", "nn").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m and m.startswith("glow_tf.flow")], path.name
