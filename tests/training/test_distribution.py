"""tf.distribute: MirroredStrategy on 2 logical CPUs matches one device;
MultiWorkerMirroredStrategy with 2 worker processes trains to identical weights.

Both run train_keras.py's training in subprocesses (`distributed_worker.py`):
logical devices must be configured before TensorFlow starts, and the
multi-worker test needs two processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

FLAGS = [
    "--num-steps",
    "1",
    "--hidden-channels",
    "8",
    "--steps-per-epoch",
    "3",
    "--epochs",
    "2",
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


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _weights(path, prefix=""):
    with np.load(path) as data:
        return {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}


@pytest.mark.slow
def test_mirrored_on_two_cpus_matches_one_device(tmp_path):
    out = str(tmp_path / "weights.npz")
    result = subprocess.run(
        [sys.executable, "-m", "tests.training.distributed_worker", "compare", out, *FLAGS],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 replica(s)" in result.stdout
    single, mirrored = _weights(out, "single/"), _weights(out, "mirrored/")
    assert single.keys() == mirrored.keys() and int(single["__iterations__"]) == 6
    for key in single:
        np.testing.assert_allclose(mirrored[key], single[key], atol=1e-4, err_msg=key)
    # the weights moved far more than the tolerance: the comparison means something
    moved = max(float(np.abs(single[k]).max()) for k in single if "conv_out/kernel" in k)
    assert moved > 1e-3


@pytest.mark.slow
def test_multiworker_two_processes_train_to_identical_weights(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        os.makedirs(tmp_path / f"w{index}")
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.training.distributed_worker",
                    "worker",
                    str(tmp_path / f"w{index}" / "weights.npz"),
                    *FLAGS,
                ],
                cwd=REPO_ROOT,
                env=_env(TF_CONFIG=config),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=300)[0])
        finally:
            process.kill()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-4000:]
    assert "2 replica(s)" in outputs[0] and "test bits/dim" in outputs[0]
    assert "test bits/dim" not in outputs[1]  # only the chief writes and reports
    assert os.path.isfile(tmp_path / "w0" / "run" / "model.keras")
    assert not os.path.exists(tmp_path / "w1" / "run")
    first, second = (
        _weights(tmp_path / "w0" / "weights.npz"),
        _weights(tmp_path / "w1" / "weights.npz"),
    )
    assert int(first["__iterations__"]) == 6
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    with open(tmp_path / "w0" / "run" / "log.csv") as file:
        rows = file.read().splitlines()
    assert len(rows) == 3 and all("nan" not in row for row in rows)
