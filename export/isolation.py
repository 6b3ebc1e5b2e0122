"""Running requests on a SavedModel in a separate `python -I` process, with TensorFlow alone.

    run_isolated([(saved_model_dir, signature, inputs), ...]) -> IsolatedRun

The parent writes requests.npz and runs this very file as a script in an
isolated interpreter (no PYTHONPATH, no script directory, no user site) in a
temporary working directory, so glow_tf cannot be imported there:

    python -I export/isolation.py requests.npz outputs.npz

requests.npz holds "<i>/<signature>/<input>" arrays (numpy dtypes are kept,
so a wrongly typed input reaches the signature as it is), "saved_model_dirs"
(the SavedModels, each loaded once) and "request_dirs" (request i runs on
saved_model_dirs[request_dirs[i]]); outputs.npz gets "<i>/<output>" arrays,
or "<i>/error_type" and "<i>/error_message" for a request the SavedModel
rejected, plus "process/*" facts about the child process. This file imports
nothing from the project on purpose (only numpy, and TensorFlow in the child),
and the child refuses to import glow_tf and export even where they are
installed (`pip install .`), so a SavedModel that needed them would fail.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["IsolatedRun", "run_isolated", "run_requests"]


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
            str(pathlib.Path(__file__).resolve()),
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


def run_requests(saved_model_dirs: list[str], request_dirs: list[int], requests: dict) -> dict:
    """{"<i>/<signature>/<input>": array} -> {"<i>/<output>" or "<i>/error_*": array}."""
    import tensorflow as tf

    loaded = [tf.saved_model.load(directory) for directory in saved_model_dirs]
    grouped: dict[int, tuple[str, dict]] = {}
    for key, value in requests.items():
        index, signature, name = key.split("/")
        grouped.setdefault(int(index), (signature, {}))[1][name] = value
    outputs = {}
    for index in sorted(grouped):
        signature, inputs = grouped[index]
        try:
            result = loaded[request_dirs[index]].signatures[signature](
                **{name: tf.constant(value) for name, value in inputs.items()}
            )
        except Exception as error:  # reported back to the caller, which judges it
            outputs[f"{index}/error_type"] = np.array(type(error).__name__)
            outputs[f"{index}/error_message"] = np.array(str(error))
            continue
        for name, tensor in result.items():
            outputs[f"{index}/{name}"] = tensor.numpy()
    return outputs


_PROJECT_PACKAGES = ("glow_tf", "export")


class _RefuseProjectImports(importlib.abc.MetaPathFinder):
    """A finder, first on sys.meta_path, that makes the project's packages unimportable."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _PROJECT_PACKAGES:
            message = f"{name} is not importable in the isolated process"
            raise ModuleNotFoundError(message, name=name)
        return None


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _child_main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -I export/isolation.py requests.npz outputs.npz", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.meta_path.insert(0, _RefuseProjectImports())
    import tensorflow as tf

    requests_path, outputs_path = argv
    with np.load(requests_path) as data:
        requests = {key: data[key] for key in data.files}
    saved_model_dirs = [str(d) for d in requests.pop("saved_model_dirs")]
    request_dirs = [int(i) for i in requests.pop("request_dirs")]
    outputs = run_requests(saved_model_dirs, request_dirs, requests)
    outputs["process/glow_tf_importable"] = np.array(_importable("glow_tf"))
    outputs["process/isolated"] = np.array(bool(sys.flags.isolated))
    outputs["process/tensorflow_version"] = np.array(tf.__version__)
    np.savez(outputs_path, **outputs)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
