"""Compute efficiency of a glow_tf training step: achieved FLOP/s as a fraction of peak.

Issue 9, item 7 (target >= 50% at the paper config). One process measures,
side by side:

  1. training FLOPs per image, counted from the config (formula below);
  2. a glow_tf training step at batch 16 through the user path
     (GlowModel + initialize + compile(Adam) + train_on_batch), timed after
     --warmup untimed steps (tracing), --steps timed steps;
  3. the machine's peak float32 FLOP/s, in the same run: tf.linalg.matmul of
     two 2048 x 2048 matrices (2 * 2048^3 FLOPs) and a 3x3 tf.nn.conv2d of
     [16, 16, 16, 512] -> 512 channels (2 * 9 * 512 * 512 * 16 * 16 * 16 FLOPs),
     --reps repetitions each after one warm-up, in a tf.function;

and prints the FLOPs per image, the achieved GFLOP/s (median and best step),
each peak (median and best repetition) and the fraction of peak
(achieved / the larger of the two peaks; median / median and best / best).

    python bench/compute_efficiency.py            # paper config, L=3 K=32 width 512
    python bench/compute_efficiency.py --quick    # L=3 K=8 width 128, fast sanity run
        [--steps 5] [--warmup 2] [--reps 5] [--threads N]

The default run takes a few minutes, most of it the first (traced) step.

FLOP count (a multiply-add = 2 FLOPs), 32x32x3 images, affine coupling,
OpenAI's coupling network (edge-bias padding adds one input channel to each
3x3 convolution). Level l = 0 .. L-1 works at h_l x w_l = (32 / 2^(l+1))^2
pixels (P_l) on c_l = 12 * 2^l channels. Per step of level l, per image:

    1x1 invertible conv     2 * c^2 * P
    coupling conv3x3 in     2 * 9 * (c/2 + 1) * W * P
    coupling conv1x1        2 * W * W * P
    coupling conv3x3 out    2 * 9 * (W + 1) * c * P          (affine: c outputs)
    actnorms, coupling      ~ 10 * (c + 2 W) * P             (elementwise; small)

per split (levels but the last) the prior's 3x3 conv 2 * 9 * (c/2 + 1) * c * P,
and the top prior's 3x3 conv on the top latent. Forward = sum over levels of
K * (step) + priors; a training step ~= 3 x forward (the backward pass
computes the gradient wrt the input and wrt the weights of every
convolution, each costing about one forward). The 1x1 convs' LU
recomposition and log-determinants are per step, not per image, and ignored.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from _common import REPO, bench_glow_config, limit_threads, machine, tf_threads, tf_versions

BATCH, IMAGE_SIZE = 16, 32
CONFIGS = {"paper": (3, 32, 512), "quick": (3, 8, 128)}


def forward_flops_per_image(levels: int, steps: int, width: int, size: int = IMAGE_SIZE) -> dict:
    """{term: FLOPs} of one forward pass of one image, from the config (docstring)."""
    terms = {"conv1x1 (invertible)": 0, "coupling conv3x3 in": 0, "coupling conv1x1": 0}
    terms.update({"coupling conv3x3 out": 0, "elementwise": 0, "priors": 0})
    for level in range(levels):
        pixels = (size // 2 ** (level + 1)) ** 2
        c = 12 * 2**level
        terms["conv1x1 (invertible)"] += steps * 2 * c * c * pixels
        terms["coupling conv3x3 in"] += steps * 2 * 9 * (c // 2 + 1) * width * pixels
        terms["coupling conv1x1"] += steps * 2 * width * width * pixels
        terms["coupling conv3x3 out"] += steps * 2 * 9 * (width + 1) * c * pixels
        terms["elementwise"] += steps * 10 * (c + 2 * width) * pixels
        if level < levels - 1:
            terms["priors"] += 2 * 9 * (c // 2 + 1) * c * pixels
        else:
            terms["priors"] += 2 * 9 * (2 * c + 1) * 2 * c * pixels
    return terms


def measure_peak(reps: int) -> dict:
    """Median and best GFLOP/s of a 2048^3 matmul and a large 3x3 conv."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    n = 2048
    a = tf.constant(rng.standard_normal((n, n), np.float32))
    b = tf.constant(rng.standard_normal((n, n), np.float32))
    x = tf.constant(rng.standard_normal((16, 16, 16, 512), np.float32))
    k = tf.constant(rng.standard_normal((3, 3, 512, 512), np.float32) * 0.01)
    kernels = {
        "matmul 2048^3": (tf.function(lambda: tf.linalg.matmul(a, b)), 2 * n**3),
        "conv2d 3x3 16x16x512->512, batch 16": (
            tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME")),
            2 * 9 * 512 * 512 * 16 * 16 * 16,
        ),
    }
    results = {}
    for name, (fn, flops) in kernels.items():
        fn().numpy()  # warm-up
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn().numpy()
            times.append(time.perf_counter() - start)
        results[name] = (flops / statistics.median(times) / 1e9, flops / min(times) / 1e9)
    return results


def measure_step(levels, steps, width, warmup, timed) -> dict:
    sys.path.insert(0, REPO)

    from glow_tf import GlowModel
    from glow_tf.training.optimizers import Adam

    config = bench_glow_config(levels, steps, width, IMAGE_SIZE)
    images = np.random.default_rng(0).integers(0, 256, (BATCH, IMAGE_SIZE, IMAGE_SIZE, 3))
    images = images.astype(np.uint8)
    model = GlowModel(config)
    model.initialize(images)
    model.compile(Adam(1e-4))
    start = time.perf_counter()
    for _ in range(warmup):
        model.train_on_batch(images)
    warmup_s = time.perf_counter() - start
    times = []
    for _ in range(timed):
        start = time.perf_counter()
        model.train_on_batch(images)
        times.append(time.perf_counter() - start)
    return {
        "warmup_s": warmup_s,
        "median_s": statistics.median(times),
        "best_s": min(times),
        "num_weights": model.count_params(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="L=3 K=8 width 128")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each peak kernel")
    parser.add_argument("--threads", type=int, help="TF intra- and inter-op threads")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.threads:
        limit_threads("tf", args.threads)
    levels, steps, width = CONFIGS["quick" if args.quick else "paper"]

    print(f"machine: {machine()}")
    terms = forward_flops_per_image(levels, steps, width)
    forward = sum(terms.values())
    train_per_image = 3 * forward
    print(f"config: 32x32x3, L={levels} K={steps} width {width}, affine, LU, batch {BATCH}")
    print("forward FLOPs per image, by term:")
    for name, flops in terms.items():
        print(f"  {name:22s} {flops / 1e9:8.3f} GFLOP  {flops / forward:6.1%}")
    print(f"  {'forward':22s} {forward / 1e9:8.3f} GFLOP")
    print(f"training FLOPs per image (3 x forward): {train_per_image / 1e9:.2f} GFLOP", flush=True)

    peak_before = measure_peak(args.reps)
    step = measure_step(levels, steps, width, args.warmup, args.steps)
    peak_after = measure_peak(args.reps)
    print(f"{tf_versions()}; {tf_threads()}; {step['num_weights'] / 1e6:.1f}M weights")
    print(f"load average after the run: {os.getloadavg()[0]:.1f}\n")

    achieved = {
        "median": BATCH * train_per_image / step["median_s"] / 1e9,
        "best": BATCH * train_per_image / step["best_s"] / 1e9,
    }
    print(
        f"glow_tf train step: first {args.warmup} steps {step['warmup_s']:.1f} s; "
        f"median {step['median_s']:.3f} s ({BATCH / step['median_s']:.2f} img/s), "
        f"best {step['best_s']:.3f} s over {args.steps} steps"
    )
    print(f"{'':38s} {'median':>9s} {'best':>9s}   (GFLOP/s)")
    print(f"{'glow_tf training step':38s} {achieved['median']:9.1f} {achieved['best']:9.1f}")
    peak = {"median": 0.0, "best": 0.0}
    for name in peak_before:
        median = max(peak_before[name][0], peak_after[name][0])
        best = max(peak_before[name][1], peak_after[name][1])
        print(f"{'peak: ' + name:38s} {median:9.1f} {best:9.1f}")
        peak = {"median": max(peak["median"], median), "best": max(peak["best"], best)}
    print(
        f"\nfraction of peak: {achieved['median'] / peak['median']:.1%} (median / median), "
        f"{achieved['best'] / peak['best']:.1%} (best / best); target >= 50%"
    )
    print("(peak: the faster kernel, best of its runs before and after the training steps)")


if __name__ == "__main__":
    main()
