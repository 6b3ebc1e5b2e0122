"""Peak memory of one training step against depth, with and without recomputed gradients.

For K = 8, 16, 32 steps per level (L = 3, 32x32x3, 5 bits, affine + LU,
batch 16, glow_tf's fused Adam) and `recompute_gradients` off / on, a fresh
process builds and initialises the model, runs two warm-up steps, then
resets TensorFlow's allocator statistics and reads the peak bytes of the
next training step (TF_CPU_ALLOCATOR_USE_BFC=true makes the CPU allocator
report them); the step time is the median of three further steps.

It prints peak MiB, the ratio of each K to K = 8 (target with recompute:
peak at K = 32 <= 1.3x peak at K = 8), the step-time ratio recompute /
plain (target <= 1.4x), and, from the bytes per image measured at two
batch sizes, the largest batch of the paper's 256x256x3 L=6 K=32 width-512
model that would fit 16 GiB and 80 GiB (activation memory scaled by the
levels' pixel counts; weights, gradients and Adam moments added).

    python bench/memory_in_depth.py [--width 128] [--depths 8,16,32] [--batch 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _common import REPO, bench_glow_config, emit, machine, run_worker

IMAGE = 32


def worker(args):
    sys.path.insert(0, REPO)
    import numpy as np
    import tensorflow as tf

    from glow_tf import GlowModel
    from glow_tf.training.optimizers import Adam

    config = bench_glow_config(
        args.levels, args.depth, args.width, IMAGE, recompute_gradients=args.recompute
    )
    images = np.random.default_rng(0).integers(0, 256, (args.batch, IMAGE, IMAGE, 3), np.uint8)
    model = GlowModel(config)
    model.initialize(images)
    model.compile(Adam(1e-4))
    for _ in range(2):
        model.train_on_batch(images)
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    model.train_on_batch(images)
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model.train_on_batch(images)
        times.append(time.perf_counter() - start)
    weights = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    emit(
        {
            "peak": peak,
            "resident": before,
            "step_s": statistics.median(times),
            "weights": weights,
        }
    )


def run(args, depth, recompute, batch):
    command = [sys.executable, os.path.abspath(__file__), "--worker"]
    command += ["--depth", str(depth), "--width", str(args.width), "--batch", str(batch)]
    command += ["--levels", str(args.levels)] + (["--recompute"] if recompute else [])
    return run_worker(command, {"TF_CPU_ALLOCATOR_USE_BFC": "true"}, f"K={depth} {recompute}")


def level_pixels(image: int, levels: int) -> int:
    """Sum over levels of the squeezed h * w: activation memory scales with it."""
    return sum((image // 2 ** (i + 1)) ** 2 for i in range(levels))


def driver(args):
    depths = [int(d) for d in args.depths.split(",")]
    print(f"machine: {machine()}")
    print(
        f"L={args.levels}, width {args.width}, {IMAGE}x{IMAGE}x3, batch {args.batch}, "
        "peak of one training step (TF CPU BFC allocator)",
        flush=True,
    )
    results = {}
    for depth in depths:
        for recompute in (False, True):
            results[depth, recompute] = run(args, depth, recompute, args.batch)
            r = results[depth, recompute]
            print(
                f"  K={depth:3d} recompute={str(recompute):5s} peak {r['peak'] / 2**20:8.1f} MiB "
                f"(resident before {r['resident'] / 2**20:.1f}) step {r['step_s']:.2f} s",
                flush=True,
            )
    print()
    print(f"{'K':>4s} {'plain MiB':>10s} {'recompute MiB':>14s} {'plain/K0':>9s} "
          f"{'recomp/K0':>10s} {'step recomp/plain':>18s}")
    base = depths[0]
    for depth in depths:
        plain, recomputed = results[depth, False], results[depth, True]
        print(
            f"{depth:4d} {plain['peak'] / 2**20:10.1f} {recomputed['peak'] / 2**20:14.1f} "
            f"{plain['peak'] / results[base, False]['peak']:8.2f}x "
            f"{recomputed['peak'] / results[base, True]['peak']:9.2f}x "
            f"{recomputed['step_s'] / plain['step_s']:17.2f}x"
        )
    # bytes per image at the deepest K: the slope between two batch sizes
    depth = depths[-1]
    small = max(1, args.batch // 2)
    sys.path.insert(0, REPO)
    from glow_tf.config import GlowConfig, estimated_num_weights

    paper = GlowConfig(image_shape=(256, 256, 3), num_levels=6, num_steps=32, hidden_channels=512)
    paper_weights = estimated_num_weights(paper)
    print(f"(the 256x256x3 L=6 K=32 w512 model has ~{paper_weights / 1e6:.0f}M weights)")
    print()
    print(f"bytes per image at K={depth}, from batches {small} and {args.batch}:")
    for recompute in (False, True):
        at_small = run(args, depth, recompute, small)
        slope = (results[depth, recompute]["peak"] - at_small["peak"]) / (args.batch - small)
        scale = level_pixels(256, 6) / level_pixels(IMAGE, args.levels) * (512 / args.width)
        per_image = slope * scale
        fixed = 4 * 4 * paper_weights  # float32 weights, gradients and two Adam moments
        fits = {gib: int((gib * 2**30 - fixed) // per_image) for gib in (16, 80)}
        print(
            f"  recompute={str(recompute):5s} {slope / 2**20:7.2f} MiB/image here; 256x256x3 "
            f"L=6 K={depth} w512: ~{per_image / 2**30:.2f} GiB/image -> batch "
            f"{fits[16]} fits 16 GiB, {fits[80]} fits 80 GiB"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--depths", default="8,16,32")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--recompute", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
