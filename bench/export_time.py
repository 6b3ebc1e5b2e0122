"""Where exporting a model goes: the per-phase time of `export.export_model`, and the total.

    python bench/export_time.py                         # the digits preset's model (8x8x1, L=2 K=16 w=64)
    python bench/export_time.py --model runs/digits/model.keras
    python bench/export_time.py --models digits,l3k8    # + 32x32x3 L=3 K=8 width 512
    python bench/export_time.py --verify                # + `python -m export.verify` on the export

A preset's model is built and initialised on random images (the export's cost
does not depend on the weights' values). The phases are timed by wrapping the
functions `export_model` calls, each phase's own time (its nested phases
excluded), as wall time and as this process's CPU time (on a shared machine
the CPU time is the better estimate of a quiet machine's wall time):

    trace <signature>        tracing a served function (once per signature; the ONNX
                             decoder / encoder reuse `decode` / `encode`)
    saved_model write        tf.saved_model.save
    onnx <graph>             tf2onnx's conversion of one graph, split into
      freeze                   variables -> constants (convert_variables_to_constants_v2)
      grappler                 tf2onnx's TF-side optimisation
      tf -> onnx               op-by-op conversion
      onnx optimizers          tf2onnx's ONNX-side optimisers (transposes, constant folding, ...)
      (rest)                   checks, onnx.checker, doc strings
    onnx save                writing the .onnx files
    (rest)                   metadata, staging directory
    total                    export_model, end to end (the target is <= 30 s on 2 quiet cores)

Also printed: `uptime`'s load, TF / tf2onnx versions and thread settings.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import uptime  # noqa: E402
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

MODELS = {
    "digits": None,  # the digits preset's model
    "l3k8": dict(image_shape=(32, 32, 3), num_levels=3, num_steps=8, hidden_channels=512),
}


class PhaseTimer:
    """Exclusive wall and CPU time per named phase (a nested phase's time is not its parent's)."""

    def __init__(self):
        self.totals: dict[str, list[float]] = {}
        self.order: list[str] = []
        self._stack: list[list] = []

    @contextlib.contextmanager
    def phase(self, name: str):
        frame = [name, time.perf_counter(), time.process_time(), 0.0, 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            wall = time.perf_counter() - frame[1]
            cpu = time.process_time() - frame[2]
            if name not in self.totals:
                self.totals[name] = [0.0, 0.0]
                self.order.append(name)
            self.totals[name][0] += wall - frame[3]
            self.totals[name][1] += cpu - frame[4]
            if self._stack:
                self._stack[-1][3] += wall
                self._stack[-1][4] += cpu

    def wrap(self, owner, attribute: str, name):
        """Times every call of owner.attribute as phase `name` (a str or f(*args) -> str)."""
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            label = name(*args, **kwargs) if callable(name) else name
            if label is None:
                return original(*args, **kwargs)
            with self.phase(label):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)


def build_model(kind: str, model_path: str | None):
    from glow_tf import GlowModel
    from glow_tf.presets import get_preset

    if model_path:
        from glow_tf.saving import load_flow_model

        return load_flow_model(model_path)
    config = get_preset("digits").model
    if MODELS[kind]:
        config = config.replace(**MODELS[kind])
    model = GlowModel(config)
    images = np.random.default_rng(0).integers(0, 256, (64, *config.image_shape), dtype=np.uint8)
    model.initialize(images)
    return model


def instrument(timer: PhaseTimer) -> None:
    import tf2onnx
    import tf2onnx.convert
    import tf2onnx.tf_loader

    import export.exporter
    import export.onnx
    from export.served import ServedFlow

    traced = set()

    def trace_label(served, name):
        key = (id(served), name)
        if key in traced:
            return None
        traced.add(key)
        return f"trace {name}"

    timer.wrap(ServedFlow, "function", trace_label)
    timer.wrap(export.exporter, "write_saved_model", "saved_model write")
    current = {"graph": ""}

    def onnx_label(served, name, *args, **kwargs):
        current["graph"] = name
        return f"onnx {name}"

    def sub(phase):
        return lambda *args, **kwargs: f"  {current['graph']} {phase}"

    timer.wrap(export.onnx, "convert_to_onnx", onnx_label)
    timer.wrap(export.onnx.onnx, "save", "onnx save")
    timer.wrap(tf2onnx.tf_loader, "convert_variables_to_constants_v2", sub("freeze"))
    timer.wrap(tf2onnx.tf_loader, "tf_optimize", sub("grappler"))
    timer.wrap(tf2onnx.convert, "process_tf_graph", sub("tf -> onnx"))
    timer.wrap(tf2onnx.optimizer, "optimize_graph", sub("onnx optimizers"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="digits", help="comma separated: digits, l3k8")
    parser.add_argument("--model", help="a .keras file to export instead of a preset's model")
    parser.add_argument("--verify", action="store_true", help="also time python -m export.verify")
    args = parser.parse_args(argv)

    import tf2onnx

    from export import export_model

    print(f"TF {tf.__version__}, tf2onnx {tf2onnx.__version__}, cores {os.cpu_count()}, "
          f"intra/inter op threads {tf.config.threading.get_intra_op_parallelism_threads()}/"
          f"{tf.config.threading.get_inter_op_parallelism_threads()} (0 = all)")
    timer = PhaseTimer()
    instrument(timer)
    kinds = ["file"] if args.model else [k.strip() for k in args.models.split(",") if k.strip()]
    for kind in kinds:
        print(f"\n== {kind}   load: {uptime()}")
        start = time.perf_counter()
        model = build_model(kind, args.model)
        config = model.config
        print(f"model {config.image_shape} L={config.num_levels} K={config.num_steps} "
              f"width={config.hidden_channels}, built/loaded in {time.perf_counter() - start:.1f} s")
        timer.totals, timer.order = {}, []
        with tempfile.TemporaryDirectory() as out:
            with timer.phase("(rest)"):
                version_dir = export_model(model, out, name="bench")
            total_wall = sum(wall for wall, _ in timer.totals.values())
            total_cpu = sum(cpu for _, cpu in timer.totals.values())
            print(f"{'phase':<28}{'wall s':>9}{'cpu s':>9}")
            for name in timer.order:
                wall, cpu = timer.totals[name]
                print(f"{name:<28}{wall:>9.1f}{cpu:>9.1f}")
            print(f"{'total (export_model)':<28}{total_wall:>9.1f}{total_cpu:>9.1f}"
                  f"   target <= 30 s: {'met' if total_wall <= 30 else 'not met'} (wall)")
            if args.verify and args.model:
                start = time.perf_counter()
                result = subprocess.run(
                    [sys.executable, "-m", "export.verify", out, "--model", args.model,
                     "--name", "bench"], capture_output=True, text=True,
                )  # fmt: skip
                print(f"python -m export.verify: exit {result.returncode}, "
                      f"{time.perf_counter() - start:.1f} s wall (fresh process, imports included)")
            elif args.verify:
                from export.verify import verify_export

                with timer.phase("verify"):
                    checks = verify_export(version_dir, model)
                wall, cpu = timer.totals["verify"]
                ok = all(check.passed for check in checks)
                print(f"verify_export: {'all ok' if ok else 'FAILED'}, {wall:.1f} s wall, "
                      f"{cpu:.1f} s cpu (its isolated process's time is wall only)")
    print(f"\nload at the end: {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
