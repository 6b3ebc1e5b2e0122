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


# ------------------------------------------------- interrupted runs (subprocesses)

RESUME_FLAGS = ["--steps-per-epoch", "12", "--keep-checkpoints", "100"]


def _wait_for(condition, process, what, timeout=300):
    """Polls `condition` until it holds; fails if `process` ends first."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended (code {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _newest_position(run_dir):
    from glow_tf.training.checkpoint import CheckpointStore

    latest = CheckpointStore(os.path.join(run_dir, "checkpoints")).latest()
    return -1 if latest is None else latest.position


def _start(run_dir, log_name, *flags):
    import subprocess

    from tests.conftest import REPO_ROOT

    log = open(os.path.join(os.path.dirname(run_dir), log_name), "w+")
    process = subprocess.Popen(
        _command(run_dir, *RESUME_FLAGS, *flags),
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, log


def _finish(process, log, timeout=300):
    process.wait(timeout=timeout)
    log.seek(0)
    return log.read()


def _training_state(path):
    model = keras.models.load_model(path)
    return [v.numpy() for v in model.weights + model.optimizer.variables]


def _assert_same_training_state(path, expected_path):
    for got, expected in zip(_training_state(path), _training_state(expected_path), strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def _checkpoint(run_dir, position):
    return os.path.join(run_dir, "checkpoints", f"step-{position:08d}")


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run killed with SIGKILL after its checkpoint of step 4, then resumed
    by the same command and stopped with SIGTERM after its next checkpoint;
    beside it, the same run uninterrupted (3 epochs of 12 steps, a checkpoint
    after every step)."""
    import signal

    base = tmp_path_factory.mktemp("interrupted")
    reference_dir, run_dir = str(base / "reference"), str(base / "run")
    reference = _start(
        reference_dir,
        "reference.txt",
        *("--epochs", "3", "--checkpoint-every-steps", "1"),
    )
    # --epochs 50: the interrupted runs cannot end on their own before the signal
    flags = ("--epochs", "50", "--checkpoint-every-steps", "4")
    killed, log = _start(run_dir, "killed.txt", *flags)
    _wait_for(lambda: _newest_position(run_dir) >= 4, killed, "the checkpoint of step 4")
    killed.send_signal(signal.SIGKILL)
    killed_output = _finish(killed, log)
    killed_at = _newest_position(run_dir)

    terminated, log = _start(run_dir, "terminated.txt", *flags)
    _wait_for(lambda: _newest_position(run_dir) > killed_at, terminated, "a new checkpoint")
    terminated.send_signal(signal.SIGTERM)
    terminated_output = _finish(terminated, log)
    reference_output = _finish(*reference)
    assert reference[0].returncode == 0, reference_output
    return {
        "reference_dir": reference_dir,
        "run_dir": run_dir,
        "killed": (killed.returncode, killed_output, killed_at),
        "terminated": (terminated.returncode, terminated_output, _newest_position(run_dir)),
    }


@pytest.mark.slow
def test_a_killed_run_resumes_with_the_same_batches_noise_and_weights(interrupted_run):
    """SIGKILL mid-epoch after a step checkpoint; the same command continues
    from it on the batches the uninterrupted run saw next, with the same
    dequantisation noise: at the next checkpoint, weights and optimizer state
    equal the uninterrupted run's at that step (a re-seeded data order or
    unseeded noise would change them)."""
    import signal

    run_dir, reference_dir = interrupted_run["run_dir"], interrupted_run["reference_dir"]
    code, output, killed_at = interrupted_run["killed"]
    assert code == -signal.SIGKILL, output
    assert 4 <= killed_at < 36 and killed_at % 4 == 0, (killed_at, output)
    _, output, resumed_to = interrupted_run["terminated"]
    assert f"resuming from {_checkpoint(run_dir, killed_at)}: epoch " in output, output
    assert "data-dependent init" not in output
    assert killed_at < resumed_to < 36, (killed_at, resumed_to)
    for position in (killed_at, resumed_to):
        _assert_same_training_state(
            os.path.join(_checkpoint(run_dir, position), "model.keras"),
            os.path.join(_checkpoint(reference_dir, position), "model.keras"),
        )


@pytest.mark.slow
def test_sigterm_checkpoints_the_current_step_and_exits_143(interrupted_run):
    code, output, terminated_at = interrupted_run["terminated"]
    assert code == 143, output
    assert "SIGTERM received: stopped at step" in output and "Traceback" not in output
    directory = _checkpoint(interrupted_run["run_dir"], terminated_at)
    assert f"wrote checkpoint {directory}; run the same command again" in output
    state = json.load(open(os.path.join(directory, "state.json")))
    assert state["data_position"] == state["step"] == terminated_at
    assert (state["epoch"], state["batch_in_epoch"]) == divmod(terminated_at, 12)
    model = keras.models.load_model(os.path.join(directory, "model.keras"))
    assert int(model.optimizer.iterations.numpy()) == terminated_at


# ------------------------------------------------- damaged checkpoints, stale model.keras


def _copy_run(finished_run, tmp_path):
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run, run_dir)
    return run_dir


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as file:
        file.truncate(size // 2)


def _corrupt_state(path):
    with open(path, "w") as file:
        file.write('{"step": 6, "epo')


@pytest.mark.parametrize(
    "damage, file_name, problem",
    [
        (_truncate, "model.keras", "model.keras is truncated or not a .keras archive"),
        (_corrupt_state, "state.json", "state.json is unreadable (JSONDecodeError"),
    ],
)
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(
    finished_run, tmp_path, capsys, damage, file_name, problem
):
    run_dir = _copy_run(finished_run, tmp_path)
    checkpoints = os.path.join(run_dir, "checkpoints")
    damage(os.path.join(checkpoints, "step-00000006", file_name))
    capsys.readouterr()
    assert train_keras.main(["--output-dir", run_dir, "--epochs", "2", *TINY_FLAGS]) == 0
    captured = capsys.readouterr()
    assert f"checkpoint {checkpoints}/step-00000006 is damaged: {problem}" in captured.err
    assert "falling back to the previous checkpoint, step-00000003" in captured.err
    assert f"moved to {checkpoints}/damaged-step-00000006" in captured.err
    assert f"resuming from {checkpoints}/step-00000003: epoch 1, step 3" in captured.out
    assert sorted(os.listdir(checkpoints)) == [
        "damaged-step-00000006",
        "step-00000003",
        "step-00000006",
    ]
    # epoch 2 trained again on the same batches and noise: the same weights
    _assert_same_training_state(
        os.path.join(checkpoints, "step-00000006", "model.keras"),
        os.path.join(finished_run, "checkpoints", "step-00000006", "model.keras"),
    )
    assert [int(row["step"]) for row in _read_log(run_dir)] == [3, 6]


def test_no_loadable_checkpoint_is_an_error_not_a_fresh_start(finished_run, tmp_path, capsys):
    run_dir = _copy_run(finished_run, tmp_path)
    for name in ("step-00000003", "step-00000006"):
        _truncate(os.path.join(run_dir, "checkpoints", name, "model.keras"))
    assert train_keras.main(["--output-dir", run_dir, "--epochs", "3", *TINY_FLAGS]) == 2
    error = capsys.readouterr().err
    assert "no checkpoint to resume from could be loaded" in error and "Traceback" not in error
    assert "data-dependent init" not in error


def test_a_stale_model_keras_is_rewritten_by_a_rerun(finished_run, tmp_path, capsys):
    """A kill after the last checkpoint but before model.keras was written:
    the rerun (which has nothing left to train) writes it from the checkpoint."""
    import shutil

    run_dir = _copy_run(finished_run, tmp_path)
    model_path = os.path.join(run_dir, "model.keras")
    shutil.copy(os.path.join(run_dir, "checkpoints", "step-00000003", "model.keras"), model_path)
    assert train_keras.main(["--output-dir", run_dir, "--epochs", "2", *TINY_FLAGS]) == 0
    assert "already trained 2 epochs" in capsys.readouterr().out
    newest = os.path.join(run_dir, "checkpoints", "step-00000006", "model.keras")
    saved, checkpoint = keras.models.load_model(model_path), keras.models.load_model(newest)
    assert int(saved.optimizer.iterations.numpy()) == 6
    for got, expected in zip(saved.weights, checkpoint.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    assert train_keras.main(["--output-dir", run_dir, "--epochs", "1", *TINY_FLAGS]) == 0
    good = os.path.join(run_dir, "checkpoints", "step-00000003", "model.keras")
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
    assert "The last good checkpoint is" in error and "step-00000003" in error
    assert "Traceback" not in error
    assert os.listdir(os.path.join(run_dir, "checkpoints")) == ["step-00000003"]
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
        os.path.join(run_dir, "checkpoints", "step-00000003", "model.keras")
    )
    averages = [a.numpy() for a in checkpoint.optimizer._model_variables_moving_average]
    saved = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    for variable, average in zip(saved.trainable_variables, averages, strict=True):
        np.testing.assert_array_equal(variable.numpy(), average)
    raw = [v.numpy() for v in checkpoint.trainable_variables]
    assert any(not np.array_equal(r, a) for r, a in zip(raw, averages, strict=True))
