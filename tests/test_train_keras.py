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
from glow_tf import GlowConfig, GlowModel
from glow_tf.presets import PRESETS
from glow_tf.training.config import TrainingConfig

TINY_FLAGS = [
    "--num-steps",
    "1",
    "--hidden-channels",
    "8",
    "--steps-per-epoch",
    "3",
    "--batch-size",
    "16",
    "--test-examples",
    "32",
    "--init-batch-size",
    "32",
    "--tensorboard",
    "false",
    "--verbose",
    "0",
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
        [
            "--output-dir",
            run_dir,
            "--epochs",
            "2",
            *TINY_FLAGS,
            "--tensorboard",
            "true",
            "--sample-every",
            "1",
        ]
    )
    assert code == 0
    return run_dir


def test_run_writes_models_pngs_and_logs(finished_run):
    for name in (
        "model.keras",
        "best.keras",
        "samples.png",
        "reconstructions.png",
        "run.json",
        "summary.json",
    ):
        assert os.path.isfile(os.path.join(finished_run, name)), name
    rows = _read_log(finished_run)
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert [int(row["step"]) for row in rows] == [3, 6]
    assert all(np.isfinite(float(row["test_bits_per_dim"])) for row in rows)
    # three temperatures x 8 samples of 8x8 images, scaled 8x: 3 rows of cells
    assert _png_shape(os.path.join(finished_run, "samples.png")) == (3 * 72 + 8, 8 * 72 + 8, 1)
    assert os.listdir(os.path.join(finished_run, "tensorboard"))
    assert os.path.isfile(os.path.join(finished_run, "images", "epoch_0002_samples.png"))
    run = json.load(open(os.path.join(finished_run, "run.json")))
    training = TrainingConfig.from_dict(run["training"])
    assert training == PRESETS["digits"].training.replace(
        epochs=2,
        steps_per_epoch=3,
        batch_size=16,
        test_examples=32,
        init_batch_size=32,
        sample_every=1,
    )
    assert GlowConfig.from_dict(run["config"]).num_steps == 1
    assert run["warmup_steps"] == 5 * 3 and run["options"]["output_dir"] == finished_run


def test_saved_model_reloads_and_matches_the_summary(finished_run):
    model = keras.models.load_model(os.path.join(finished_run, "model.keras"))
    assert isinstance(model, GlowModel) and model.is_initialized
    assert model.config.num_steps == 1 and model.config.image_shape == (8, 8, 1)
    summary = json.load(open(os.path.join(finished_run, "summary.json")))
    assert summary["step"] == 6 and np.isfinite(summary["test_bits_per_dim"])


def test_a_finished_run_is_not_retrained(finished_run, capsys):
    assert train_keras.main(["--output-dir", finished_run, "--epochs", "2", *TINY_FLAGS]) == 0
    assert "already trained 2 epochs" in capsys.readouterr().out
    assert len(_read_log(finished_run)) == 2


def _command(run_dir, *extra):
    import sys

    return [sys.executable, "train_keras.py", "--output-dir", run_dir, *TINY_FLAGS, *extra]


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    """SIGKILL mid-epoch, then the same command continues from the last
    checkpoint: same step count, optimizer state, epoch numbering."""
    import signal
    import subprocess
    import time

    from tests.conftest import REPO_ROOT

    run_dir = str(tmp_path / "run")
    flags = ["--epochs", "4", "--steps-per-epoch", "150", "--check-invertibility-every", "100"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        _command(run_dir, *flags),
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = os.path.join(run_dir, "checkpoints", "epoch-0001", "state.json")
    deadline = time.time() + 240
    while not os.path.exists(first) and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    # after epoch 1's checkpoint, model.keras and best.keras, its log row
    log = os.path.join(run_dir, "log.csv")
    while not (os.path.exists(log) and _read_log(run_dir)) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # inside epoch 2 (150 updates)
    process.send_signal(signal.SIGKILL)
    output = process.communicate()[0]
    assert process.returncode == -signal.SIGKILL, output
    assert [int(row["epoch"]) for row in _read_log(run_dir)] == [1], output
    killed_state = json.load(open(first))
    assert killed_state["step"] == 150

    resumed = subprocess.run(
        _command(run_dir, *flags),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from" in resumed.stdout and "epoch 1, step 150" in resumed.stdout
    assert "data-dependent init" not in resumed.stdout
    rows = _read_log(run_dir)
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4]
    assert [int(row["step"]) for row in rows] == [150, 300, 450, 600]
    # continued, not restarted: epoch 2 starts from epoch 1's weights
    assert float(rows[1]["train_bits_per_dim"]) < float(rows[0]["train_bits_per_dim"])
    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    assert int(model.optimizer.iterations.numpy()) == 600


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    assert train_keras.main(["--output-dir", run_dir, "--epochs", "1", *TINY_FLAGS]) == 0
    good = os.path.join(run_dir, "checkpoints", "epoch-0001", "model.keras")
    good_bytes = open(good, "rb").read()
    model_bytes = open(os.path.join(run_dir, "model.keras"), "rb").read()
    capsys.readouterr()
    code = train_keras.main(
        [
            "--output-dir",
            run_dir,
            "--epochs",
            "3",
            *TINY_FLAGS,
            "--lr",
            "1e8",
            "--warmup-steps",
            "0",
        ]
    )
    error = capsys.readouterr().err
    assert code == 1
    assert "training stopped" in error and "epoch 2" in error
    assert "The last good checkpoint is" in error and "epoch-0001" in error
    assert "Traceback" not in error
    assert os.listdir(os.path.join(run_dir, "checkpoints")) == ["epoch-0001"]
    assert open(good, "rb").read() == good_bytes
    assert open(os.path.join(run_dir, "model.keras"), "rb").read() == model_bytes


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--dataset", "folder:/no/such/folder"], "is not a directory"),
        (["--num-levels", "4"], "divisible by 2**num_levels = 16"),
        (["--conditional", "true", "--dataset", "lsun/bedroom"], "has no class labels"),
        (["--batch-size", "4096"], "fewer than one batch"),
        (["--resume", "/no/such/run"], "no checkpoint there"),
        (["--mixed-precision", "bf16", "--network-dtype", "float16"], "means --network-dtype"),
        (["--epochs", "0"], "epochs must be a positive int"),
    ],
)
def test_bad_input_gives_a_message_not_a_traceback(tmp_path, capsys, flags, message):
    import tensorflow_datasets as tfds

    argv = ["--output-dir", str(tmp_path / "run"), "--epochs", "1", *TINY_FLAGS, *flags]
    if "--batch-size" in flags:
        argv.remove("--steps-per-epoch")
        argv.remove("3")
    with tfds.testing.mock_data(num_examples=2):
        code = train_keras.main(argv)
    error = capsys.readouterr().err
    assert code == 2 and message in error and "Traceback" not in error, error


def test_empty_folder_and_image_size_of_a_folder(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    argv = [
        "--output-dir",
        str(tmp_path / "run"),
        *TINY_FLAGS,
        "--dataset",
        f"folder:{tmp_path / 'images'}",
    ]
    assert train_keras.main(argv) == 2
    assert "no readable PNG/JPEG images" in capsys.readouterr().err
    for i in range(25):
        tf.io.write_file(
            str(tmp_path / "images" / f"{i}.png"), tf.io.encode_png(np.zeros((12, 12, 3), np.uint8))
        )
    assert train_keras.main([*argv, "--image-size", "12", "--num-levels", "3"]) == 2
    assert "12x12 cannot be squeezed 3 times" in capsys.readouterr().err


def test_resume_refuses_a_checkpoint_of_another_config(finished_run, tmp_path, capsys):
    argv = ["--output-dir", str(tmp_path / "other"), "--epochs", "3", *TINY_FLAGS]
    code = train_keras.main([*argv, "--hidden-channels", "16", "--resume", finished_run])
    error = capsys.readouterr().err
    assert code == 2 and "cannot resume from" in error
    assert "hidden_channels: checkpoint 8, now 16" in error
    code = train_keras.main([*argv, "--optimizer", "adam", "--resume", finished_run])
    assert code == 2 and "optimizer: checkpoint 'adamax', now 'adam'" in capsys.readouterr().err
    code = train_keras.main(
        ["--output-dir", finished_run, "--epochs", "3", *TINY_FLAGS, "--resume", "never"]
    )
    assert code == 2 and "already holds a run" in capsys.readouterr().err


def test_ema_weights_go_into_model_keras(tmp_path):
    run_dir = str(tmp_path / "run")
    argv = ["--output-dir", run_dir, "--epochs", "1", *TINY_FLAGS, "--ema-decay", "0.5"]
    assert train_keras.main(argv) == 0
    checkpoint = keras.models.load_model(
        os.path.join(run_dir, "checkpoints", "epoch-0001", "model.keras")
    )
    averages = [a.numpy() for a in checkpoint.optimizer._model_variables_moving_average]
    saved = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    for variable, average in zip(saved.trainable_variables, averages, strict=True):
        np.testing.assert_array_equal(variable.numpy(), average)
    raw = [v.numpy() for v in checkpoint.trainable_variables]
    assert any(not np.array_equal(r, a) for r, a in zip(raw, averages, strict=True))
