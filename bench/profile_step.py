"""Where a glow_tf training step spends its time: per-op-type totals from the TF profiler.

Issue 9, item 8. Builds the 32x32x3 Glow (affine coupling, LU 1x1 convs,
5 bits) at --config, batch 16, compile(Adam) + train_on_batch as a user
trains, runs --warmup untimed steps (tracing), then records --steps steps
with tf.profiler.experimental (a trace written to --logdir, viewable in
TensorBoard's profile plugin), and parses the trace's XSpace itself:

    python bench/profile_step.py                       # paper config L=3 K=32 width 512
    python bench/profile_step.py --config L3K8w128     # smaller, faster
        [--steps 1] [--warmup 2] [--top 15] [--top-names 10] [--jit]
        [--logdir /tmp/glow_tf_profile]

prints the machine, versions and threads, the wall time of each profiled
step (the traced function's span on the Python thread), then the top op types
by time: total milliseconds per step, share of all op time, number of ops
per step; the same grouped (convolutions, matmuls, optimizer, the rest); and
the top op names with the level/step numbering removed (which layer's which
op: e.g. ".../network/conv_out/strided_slice/StridedSliceGrad"). Op time is the sum over the executor's "name:Type" events (the
kernels, on the TF compute threads); with inter-op parallelism the sum can
exceed the wall time. "executor overhead" is the executor's per-node
processing time (ExecutorState::Process) not spent inside a kernel.

With --jit the model is compiled with jit_compile=True (XLA): the kernels
are then XLA clusters, and the per-op-type table shows them as such.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import shutil
import sys
import time

import numpy as np

from _common import REPO, bench_glow_config, limit_threads, machine, tf_threads, tf_versions

CONFIGS = {"L3K32w512": (3, 32, 512), "L3K8w128": (3, 8, 128)}
BATCH, IMAGE_SIZE = 16, 32
_OP_EVENT = re.compile(r"^[^:]+:([A-Z_][A-Za-z0-9_]*)$")  # "scope/name:OpType"
_CALL_OPS = {"PartitionedCall", "StatefulPartitionedCall", "While", "If", "StatelessWhile"}


def parse_trace(logdir: str, num_steps: int) -> dict:
    """Op-type totals (ms per step) and step wall times from the newest *.xplane.pb."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
    if not paths:
        raise RuntimeError(f"no *.xplane.pb under {logdir}")
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as file:
        space.ParseFromString(file.read())
    op_ps = collections.Counter()
    op_count = collections.Counter()
    name_ps = collections.Counter()  # op names with the per-step "_N" suffixes removed
    process_ps = 0
    step_ps = []
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name == "one_step_on_data" or name.startswith("one_step_on_iterator"):
                    step_ps.append(event.duration_ps)
                elif name == "ExecutorState::Process":
                    process_ps += event.duration_ps
                else:
                    match = _OP_EVENT.match(name)
                    if match and match.group(1) not in _CALL_OPS:
                        op_ps[match.group(1)] += event.duration_ps
                        op_count[match.group(1)] += 1
                        name_ps[re.sub(r"_\d+(?=/|:)", "", name)] += event.duration_ps
    return {
        "op_ms": {k: v / 1e9 / num_steps for k, v in op_ps.items()},
        "op_count": {k: v / num_steps for k, v in op_count.items()},
        "name_ms": {k: v / 1e9 / num_steps for k, v in name_ps.items()},
        "process_ms": process_ps / 1e9 / num_steps,
        "step_ms": [p / 1e9 for p in step_ps],
        "path": paths[-1],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=tuple(CONFIGS), default="L3K32w512")
    parser.add_argument("--steps", type=int, default=1, help="profiled steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing)")
    parser.add_argument("--top", type=int, default=15, help="op types to list")
    parser.add_argument("--top-names", type=int, default=10, help="op names to list")
    parser.add_argument("--logdir", default="/tmp/glow_tf_profile")
    parser.add_argument("--jit", action="store_true", help="compile(jit_compile=True)")
    parser.add_argument("--threads", type=int, help="TF intra- and inter-op threads")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, REPO)
    import tensorflow as tf

    from glow_tf import GlowModel
    from glow_tf.training.optimizers import Adam

    if args.threads:
        limit_threads("tf", args.threads)
    levels, steps, width = CONFIGS[args.config]
    config = bench_glow_config(levels, steps, width, IMAGE_SIZE)
    print(f"machine: {machine()}")
    print(f"{tf_versions()}; {tf_threads()}")
    print(
        f"config {args.config}: 32x32x3 L={levels} K={steps} width {width}, affine, LU, "
        f"batch {BATCH}, Adam, train_on_batch{' (jit_compile=True)' if args.jit else ''}",
        flush=True,
    )
    images = np.random.default_rng(0).integers(0, 256, (BATCH, IMAGE_SIZE, IMAGE_SIZE, 3))
    images = images.astype(np.uint8)
    model = GlowModel(config)
    model.initialize(images)
    model.compile(Adam(1e-4), jit_compile=bool(args.jit))
    start = time.perf_counter()
    for _ in range(args.warmup):
        model.train_on_batch(images)
    print(f"{args.warmup} warm-up steps: {time.perf_counter() - start:.1f} s", flush=True)

    shutil.rmtree(args.logdir, ignore_errors=True)
    tf.profiler.experimental.start(args.logdir)
    start = time.perf_counter()
    for _ in range(args.steps):
        model.train_on_batch(images)
    wall = (time.perf_counter() - start) / args.steps
    tf.profiler.experimental.stop()
    trace = parse_trace(args.logdir, args.steps)

    total = sum(trace["op_ms"].values())
    steps_ms = ", ".join(f"{s:.0f}" for s in trace["step_ms"]) or "?"
    print(f"trace: {trace['path']}")
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print(
        f"step wall time {wall * 1e3:.0f} ms (profiled; traced function spans: {steps_ms} ms); "
        f"sum of op time {total:.0f} ms/step; executor overhead "
        f"{max(trace['process_ms'] - total, 0):.0f} ms/step"
    )
    print(f"\n{'op type':32s} {'ms/step':>9s} {'share':>7s} {'ops/step':>9s}")
    ranked = sorted(trace["op_ms"].items(), key=lambda item: -item[1])
    for name, ms in ranked[: args.top]:
        print(f"{name:32s} {ms:9.1f} {ms / total:7.1%} {trace['op_count'][name]:9.0f}")
    rest = sum(ms for _, ms in ranked[args.top :])
    print(f"{'(other ' + str(max(len(ranked) - args.top, 0)) + ' types)':32s} {rest:9.1f} "
          f"{rest / total if total else 0:7.1%}")
    groups = collections.Counter()
    for name, ms in trace["op_ms"].items():
        if name.startswith("Conv2D") or name.startswith("DepthwiseConv"):
            groups["convolutions (forward + backward)"] += ms
        elif name in ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum"):
            groups["matmuls"] += ms
        elif name.startswith("ResourceApply") or name.startswith("Assign"):
            groups["optimizer updates"] += ms
        else:
            groups["everything else (elementwise, reductions, copies, ...)"] += ms
    print()
    for name, ms in groups.most_common():
        print(f"{name:56s} {ms:9.1f} ms {ms / total:7.1%}")
    print(f"\ntop {args.top_names} op names (the same op of every level and step summed):")
    names = sorted(trace["name_ms"].items(), key=lambda item: -item[1])
    for name, ms in names[: args.top_names]:
        print(f"  {ms:9.1f} ms {ms / total:7.1%}  {name}")


if __name__ == "__main__":
    main()
