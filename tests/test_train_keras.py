"""train_keras.py end to end on tiny models: outputs, resume, guards, bad input."""

from __future__ import annotations

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import train_keras
from glow_tf import GlowModel

TINY_FLAGS = [
    "--num-steps", "1",
    "--hidden-channels", "8",
    "--steps-per-epoch", "3",
    "--batch-size", "16",
    "--test-examples", "32",
    "--init-batch-size", "32",
    "--tensorboard", "false",
    "--verbose", "0",
]


def _read_log(run_dir):
    with open(os.path.join(run_dir, "log.csv"), newline="") as file:
        return list(csv.DictReader(file))


def _png_shape(path):
    return tuple(tf.io.decode_png(tf.io.read_file(path)).shape)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("run"))
    code = train_keras.main(
        ["--output-dir", run_dir, "--epochs", "2", *TINY_FLAGS, "--tensorboard", "true",
         "--sample-every", "1"]
    )
    assert code == 0
    return run_dir


def test_run_writes_models_pngs_and_logs(finished_run):
    for name in ("model.keras", "best.keras", "samples.png", "reconstructions.png", "run.json",
                 "summary.json"):
        assert os.path.isfile(os.path.join(finished_run, name)), name
    rows = _read_log(finished_run)
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert [int(row["step"]) for row in rows] == [3, 6]
    assert all(np.isfinite(float(row["test_bits_per_dim"])) for row in rows)
    # three temperatures x 8 samples of 8x8 images, scaled 8x: 3 rows of cells
    assert _png_shape(os.path.join(finished_run, "samples.png")) == (3 * 72 + 8, 8 * 72 + 8, 1)
    assert os.listdir(os.path.join(finished_run, "tensorboard"))
    assert os.path.isfile(os.path.join(finished_run, "images", "epoch_0002_samples.png"))


def test_saved_model_reloads_and_matches_the_summary(finished_run):
    model = keras.models.load_model(os.path.join(finished_run, "model.keras"))
    assert isinstance(model, GlowModel) and model.is_initialized
    assert model.glow_config.num_steps == 1 and model.glow_config.image_shape == (8, 8, 1)
    summary = json.load(open(os.path.join(finished_run, "summary.json")))
    assert summary["step"] == 6 and np.isfinite(summary["test_bits_per_dim"])


def test_a_finished_run_is_not_retrained(finished_run, capsys):
    assert train_keras.main(["--output-dir", finished_run, "--epochs", "2", *TINY_FLAGS]) == 0
    assert "already trained 2 epochs" in capsys.readouterr().out
    assert len(_read_log(finished_run)) == 2
