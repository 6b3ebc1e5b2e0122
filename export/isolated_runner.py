"""Runs requests on an exported SavedModel with TensorFlow alone (no glow_tf, no Keras).

Run it as a script in an isolated interpreter, which cannot import glow_tf
from the repository or the working directory:

    python -I export/isolated_runner.py requests.npz outputs.npz

requests.npz holds "<i>/<signature>/<input>" arrays (numpy dtypes are kept,
so a wrongly typed input reaches the signature as it is), "saved_model_dirs"
(the SavedModels, each loaded once) and "request_dirs" (request i runs on
saved_model_dirs[request_dirs[i]]); outputs.npz gets
"<i>/<output>" arrays, or "<i>/error_type" and "<i>/error_message" for a
request the SavedModel rejected, plus "process/*" facts about this process.
This file imports nothing from the project on purpose.
"""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["run_requests", "main"]


def run_requests(saved_model_dirs: list[str], request_dirs: list[int], requests: dict) -> dict:
    """{"<i>/<signature>/<input>": array} -> {"<i>/<output>" or "<i>/error_*": array}."""
    import numpy as np
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


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    requests_path, outputs_path = argv
    with np.load(requests_path) as data:
        requests = {key: data[key] for key in data.files}
    saved_model_dirs = [str(d) for d in requests.pop("saved_model_dirs")]
    request_dirs = [int(i) for i in requests.pop("request_dirs")]
    outputs = run_requests(saved_model_dirs, request_dirs, requests)
    outputs["process/glow_tf_importable"] = np.array(
        importlib.util.find_spec("glow_tf") is not None
    )
    outputs["process/isolated"] = np.array(bool(sys.flags.isolated))
    outputs["process/tensorflow_version"] = np.array(tf.__version__)
    np.savez(outputs_path, **outputs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
