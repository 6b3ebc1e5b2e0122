"""A training process for the tf.distribute tests (run as a subprocess).

    python -m tests.training.distributed_worker compare OUT.npz [train_keras flags]
        two logical CPU devices; trains with --strategy default, then with
        --strategy mirrored, from the same start; saves both weight sets.
    python -m tests.training.distributed_worker worker OUT.npz [train_keras flags]
        one worker of --strategy multiworker (TF_CONFIG set by the test);
        saves its final weights.

Dequantisation noise is fixed (the centre of each bin) so that runs on
different device layouts see exactly the same inputs.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["main"]


def _fixed_noise(shape, num_bits, seed=None):
    return tf.fill(shape, 0.5 / 2**num_bits)


def _train(out_dir, strategy, flags):
    import shutil

    import keras

    import train_keras

    keras.config.disable_traceback_filtering()

    shutil.rmtree(out_dir, ignore_errors=True)
    args = train_keras.parse_args(["--output-dir", out_dir, "--strategy", strategy, *flags])
    code, model = train_keras.train(args)
    if code != 0:
        raise SystemExit(f"training under {strategy} failed with exit code {code}")
    weights = {
        f"{i:03d}_{w.path.split('/', 1)[-1]}": w.numpy() for i, w in enumerate(model.weights)
    }
    weights["__iterations__"] = np.array(int(model.optimizer.iterations.numpy()))
    return model, weights


def main(argv):
    mode, out_path, *flags = argv
    import glow_tf.data.dequantize

    glow_tf.data.dequantize.uniform_noise = _fixed_noise
    if mode == "compare":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        _, single = _train(out_path + ".default", "default", flags)
        model, mirrored = _train(out_path + ".mirrored", "mirrored", flags)
        # data-dependent init gave every replica the same ActNorm values
        strategy = model.distribute_strategy
        for variable in model.weights:
            copies = [v.numpy() for v in strategy.experimental_local_results(variable.value)]
            assert len(copies) == 2 and all(np.array_equal(copies[0], c) for c in copies), (
                variable.path
            )
        np.savez(
            out_path,
            **{f"single/{k}": v for k, v in single.items()},
            **{f"mirrored/{k}": v for k, v in mirrored.items()},
        )
    elif mode == "worker":
        _, weights = _train(os.path.dirname(out_path) + "/run", "multiworker", flags)
        np.savez(out_path, **weights)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
