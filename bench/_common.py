"""Helpers shared by the bench/ scripts (not a benchmark itself).

    machine()                    CPU model, logical CPUs, load average, Python
    tf_threads() / torch_threads()  the thread settings of a worker, as text
    import_pytorch_glow(path, width)  rosinality/glow-pytorch's model.py, its
                                 coupling networks `width` channels wide
    pytorch_bins_to_input(...)   its train.py's preprocessing of 0..255 pixels
    emit(result) / run_worker(command)  a fresh worker process reporting one
                                 JSON line "RESULT {...}" to its driver

The PyTorch port is never a dependency of glow_tf: the scripts take
`--pytorch-glow PATH` (a git clone) and import its model.py from there.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine() -> str:
    """One line: CPU model, logical CPUs, current 1-minute load, Python version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, load average {load:.1f}, "
        f"Python {platform.python_version()}"
    )


def uptime() -> str:
    """`uptime`'s line (time and load averages)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "(uptime unavailable)"


def bench_glow_config(levels: int, steps: int, width: int, image_size: int = 32, **changes):
    """The benchmarks' Glow: image_size x image_size x 3, 5 bits, affine
    couplings, LU-decomposed 1x1 convs (rosinality/glow-pytorch's default)."""
    sys.path.insert(0, REPO)
    from glow_tf import GlowConfig

    return GlowConfig(
        image_shape=(image_size, image_size, 3),
        num_levels=levels,
        num_steps=steps,
        hidden_channels=width,
        coupling="affine",
        permutation="conv1x1",
        lu_decomposed=True,
        num_bits=5,
        **changes,
    )


def tf_versions() -> str:
    import keras
    import tensorflow as tf

    return f"tensorflow {tf.__version__}, keras {keras.__version__}"


def tf_threads() -> str:
    import tensorflow as tf

    intra = tf.config.threading.get_intra_op_parallelism_threads() or "default"
    inter = tf.config.threading.get_inter_op_parallelism_threads() or "default"
    return f"tf intra-op {intra}, inter-op {inter}"


def torch_threads() -> str:
    import torch

    return (
        f"torch intra-op {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}"
    )


def limit_threads(framework: str, threads: int) -> None:
    """Run `framework` ("torch" or "tf") on `threads` intra- and inter-op threads."""
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def check_pytorch_glow(parser, path) -> None:
    """argparse error unless `path` is None or a checkout holding model.py."""
    if path and not os.path.isfile(os.path.join(path, "model.py")):
        parser.error(f"--pytorch-glow {path!r} has no model.py")


def import_pytorch_glow(path: str, width: int):
    """rosinality/glow-pytorch's model module, its couplings `width` wide.

    Its Flow builds AffineCoupling(in_channel, affine=affine) with the default
    filter_size=512; the width is set here, the network is its own. Build its
    model as `module.Glow(channels, K, L, affine=True, conv_lu=True)`.
    """
    import functools

    sys.path.insert(0, os.path.abspath(path))
    import model as glow_pytorch  # rosinality/glow-pytorch's model.py

    original = getattr(glow_pytorch, "_bench_original_coupling", glow_pytorch.AffineCoupling)
    glow_pytorch._bench_original_coupling = original
    glow_pytorch.AffineCoupling = functools.partial(original, filter_size=width)
    return glow_pytorch


def pytorch_bins_to_input(images_0_255, num_bits: int):
    """Its train.py's preprocessing without the noise: pixels 0..255 (a float
    NCHW tensor) -> floor(x / 2**(8 - n_bits)) / n_bins - 0.5, in [-0.5, 0.5)."""
    import torch

    n_bins = 2.0**num_bits
    x = images_0_255
    if num_bits < 8:
        x = torch.floor(x / 2 ** (8 - num_bits))
    return x / n_bins - 0.5


def emit(result: dict) -> None:
    """A worker's answer to its driver: one line on stdout."""
    print("RESULT " + json.dumps(result), flush=True)


def run_worker(command: list[str], env: dict | None = None, what: str = "worker") -> dict:
    """Run `command` (a fresh Python process) and return the dict it emitted."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])
