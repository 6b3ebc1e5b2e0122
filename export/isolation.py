"""Running requests on a SavedModel in a separate `python -I` process (see isolated_runner.py)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["RUNNER", "IsolatedRun", "run_isolated"]

RUNNER = pathlib.Path(__file__).with_name("isolated_runner.py")


class IsolatedRun:
    """What the isolated process returned.

    Attributes:
      responses: one dict per request: its outputs by name, or
        {"error_type": str, "error_message": str} if it was rejected.
      glow_tf_importable: whether the process could have imported glow_tf
        (it must not: the export has to stand on its own).
      isolated: whether the interpreter ran with -I.
    """

    def __init__(self, outputs: Mapping[str, np.ndarray], num_requests: int):
        self.responses = [{} for _ in range(num_requests)]
        for key, value in outputs.items():
            index, name = key.split("/", 1)
            if index != "process":
                self.responses[int(index)][name] = str(value) if name.startswith("error") else value
        self.glow_tf_importable = bool(outputs["process/glow_tf_importable"])
        self.isolated = bool(outputs["process/isolated"])


def run_isolated(
    requests: Sequence[tuple[str | pathlib.Path, str, Mapping[str, np.ndarray]]],
    timeout: float = 600,
) -> IsolatedRun:
    """Runs `requests`, (SavedModel directory, signature, inputs) triples, in `python -I`.

    The child runs in a temporary working directory with an isolated
    interpreter (no PYTHONPATH, no script directory, no user site), so only
    installed packages (TensorFlow, numpy) are importable.

    Raises:
      RuntimeError: the child process failed (its stderr is in the message).
    """
    with tempfile.TemporaryDirectory(prefix="glow_export_") as tmp:
        tmp = pathlib.Path(tmp)
        directories = sorted({str(pathlib.Path(d).resolve()) for d, _, _ in requests})
        arrays = {
            f"{i}/{signature}/{name}": np.asarray(value)
            for i, (_, signature, inputs) in enumerate(requests)
            for name, value in inputs.items()
        }
        arrays["saved_model_dirs"] = np.array(directories)
        arrays["request_dirs"] = np.array(
            [directories.index(str(pathlib.Path(d).resolve())) for d, _, _ in requests], np.int64
        )
        np.savez(tmp / "requests.npz", **arrays)
        command = [
            sys.executable,
            "-I",
            str(RUNNER),
            str(tmp / "requests.npz"),
            str(tmp / "outputs.npz"),
        ]
        process = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=timeout)
        if process.returncode != 0:
            raise RuntimeError(
                f"the isolated SavedModel process failed (exit {process.returncode}):\n"
                f"{process.stderr[-3000:]}"
            )
        with np.load(tmp / "outputs.npz") as data:
            outputs = {key: data[key] for key in data.files}
    return IsolatedRun(outputs, len(requests))
