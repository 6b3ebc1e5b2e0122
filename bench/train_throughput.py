"""Training throughput of glow_tf against rosinality/glow-pytorch and TFP's tfb.Glow.

Each implementation trains the same Glow (32x32x3 images, 5 bits, batch 16,
float32, affine coupling, LU-decomposed 1x1 convolutions, Adam 1e-4) in a
fresh process; the processes alternate (glow_tf, PyTorch, tfb.Glow, glow_tf,
...) for `--runs` rounds, at two configurations:

    L3K8w128   L = 3 levels, K = 8 steps, coupling width 128
    L3K32w512  L = 3, K = 32, width 512 (the paper's CIFAR-10 model)

and the table gives the median images/second over the rounds, their spread
(min-max), the ratios, and the median time of the first training step
(tracing and graph optimisation included; building the model and its
data-dependent init are timed apart). Ratios of medians measured side by side hold on a
loaded machine; the absolute numbers do not.

How each one trains (what a user of each runs):
  glow_tf      GlowModel + model.initialize(batch) + compile(glow_tf's
               fused Adam) and train_on_batch (Keras's compiled train step);
               each level's steps run as one loop (the default).
  glow_tf-unrolled  the same with loop_steps=False (every step traced).
  PyTorch      rosinality/glow-pytorch's Glow(3, K, L, affine=True,
               conv_lu=True) with its coupling width set, and its train.py's
               step: quantise to 5 bits, add uniform noise, forward, its
               bits/dim loss, zero_grad, backward, Adam step; the first batch
               initialises ActNorm under no_grad as train.py does.
  tfb.Glow     TFP's Glow bijector with GlowDefaultNetwork(width) couplings
               (RealNVP steps) and its default exit networks, under a
               TransformedDistribution; -mean(log_prob) and an Adam step inside
               one tf.function. (TFP's Glow has no LU option.)

The PyTorch port is not part of glow_tf: clone it and install torch for the
bench only (`pip install -r bench/requirements.txt`):

    git clone https://github.com/rosinality/glow-pytorch /path/glow-pytorch
    python bench/train_throughput.py --pytorch-glow /path/glow-pytorch [--quick]

Without --pytorch-glow the PyTorch column is skipped.

On a machine shared with other jobs, torch's OpenMP threads spin-wait at
every barrier while their cores run something else, which can make PyTorch
several times slower than on a quiet machine; --omp-passive runs the PyTorch
process with OMP_WAIT_POLICY=passive (the table says so), and --threads 1
runs every implementation on one thread (TF intra- and inter-op, torch
intra- and inter-op), which compares per-core speed without the
synchronisation that load penalises. On a quiet machine use neither.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _common import (
    REPO,
    bench_glow_config,
    check_pytorch_glow,
    emit,
    import_pytorch_glow,
    limit_threads,
    machine,
    pytorch_bins_to_input,
    run_worker,
    tf_threads,
    torch_threads,
)
CONFIGS = {"L3K8w128": (3, 8, 128), "L3K32w512": (3, 32, 512)}
IMPLEMENTATIONS = ("glow_tf", "glow_tf-unrolled", "pytorch", "tfb.Glow")
IMAGE_SIZE, NUM_BITS, BATCH, LEARNING_RATE = 32, 5, 16, 1e-4


def _images(seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (BATCH, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.uint8)


def _timed(step, warmup: int, steps: int) -> dict:
    """First step (tracing included), the rest of the warm-up, then timed steps."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        step()
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {"first_step_s": first, "warmup_s": warmup_s, "img_per_s": BATCH * steps / seconds}


# ------------------------------------------------------------------ workers


def run_glow_tf(levels, steps_per_level, width, warmup, steps, loop_steps=True):
    sys.path.insert(0, REPO)
    import keras
    import tensorflow as tf

    from glow_tf import GlowModel
    from glow_tf.training.optimizers import Adam

    config = bench_glow_config(levels, steps_per_level, width, IMAGE_SIZE, loop_steps=loop_steps)
    images = _images()
    start = time.perf_counter()
    model = GlowModel(config)
    model.initialize(images)
    model.compile(Adam(LEARNING_RATE))
    init_s = time.perf_counter() - start
    result = _timed(lambda: model.train_on_batch(images), warmup, steps)
    return {
        **result,
        "init_s": init_s,
        "versions": f"tensorflow {tf.__version__}, keras {keras.__version__}",
    }


def run_pytorch(levels, steps_per_level, width, warmup, steps, pytorch_glow):
    import math

    import torch

    glow_pytorch = import_pytorch_glow(pytorch_glow, width)
    torch.manual_seed(0)
    model = glow_pytorch.Glow(3, steps_per_level, levels, affine=True, conv_lu=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    n_bins = 2.0**NUM_BITS
    n_pixel = IMAGE_SIZE * IMAGE_SIZE * 3
    images = torch.from_numpy(_images()).permute(0, 3, 1, 2).float()  # 0..255, NCHW

    def preprocess():  # train.py: to 5 bits, to [-0.5, 0.5), uniform noise
        x = pytorch_bins_to_input(images, NUM_BITS)
        return x + torch.rand_like(x) / n_bins

    with torch.no_grad():  # train.py's first iteration: ActNorm init
        model(preprocess())

    def step():
        log_p, logdet, _ = model(preprocess())
        logdet = logdet.mean()
        loss = -math.log(n_bins) * n_pixel + logdet + log_p
        loss = (-loss / (math.log(2) * n_pixel)).mean()
        model.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    result = _timed(step, warmup, steps)
    return {
        **result,
        "versions": f"torch {torch.__version__}",
        "threads": torch_threads(),
    }


def run_tfp_glow(levels, steps_per_level, width, warmup, steps):
    import keras
    import numpy as np
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfb, tfd = tfp.bijectors, tfp.distributions
    shape = (IMAGE_SIZE, IMAGE_SIZE, 3)
    glow = tfb.Glow(
        output_shape=shape,
        num_glow_blocks=levels,
        num_steps_per_block=steps_per_level,
        coupling_bijector_fn=lambda s: tfb.GlowDefaultNetwork(s, num_hidden=width),
        exit_bijector_fn=tfb.GlowDefaultExitNetwork,
    )
    distribution = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0.0, 1.0), [int(np.prod(shape))]), glow
    )
    n_bins = 2.0**NUM_BITS
    images = tf.constant(np.floor(_images() / 2 ** (8 - NUM_BITS)) / n_bins - 0.5, tf.float32)
    distribution.log_prob(images)  # creates the networks' variables
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    variables = list(glow.trainable_variables)

    @tf.function
    def train_step():
        x = images + tf.random.uniform(tf.shape(images), 0.0, 1.0 / n_bins)
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(distribution.log_prob(x))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    result = _timed(lambda: float(train_step()), warmup, steps)
    return {**result, "versions": f"tensorflow-probability {tfp.__version__}"}


def worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.threads:
        limit_threads("torch" if args.worker == "pytorch" else "tf", args.threads)
    levels, steps_per_level, width = CONFIGS[args.config]
    common = (levels, steps_per_level, width, args.warmup, args.steps)
    if args.worker == "glow_tf":
        result = run_glow_tf(*common)
    elif args.worker == "glow_tf-unrolled":
        result = run_glow_tf(*common, loop_steps=False)
    elif args.worker == "pytorch":
        result = run_pytorch(*common, args.pytorch_glow)
    else:
        result = run_tfp_glow(*common)
    if "threads" not in result:
        result["threads"] = tf_threads()
    emit(result)


# ------------------------------------------------------------------- driver


def _run_worker(implementation, config, args):
    command = [sys.executable, os.path.abspath(__file__), "--worker", implementation]
    command += ["--config", config, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.pytorch_glow:
        command += ["--pytorch-glow", args.pytorch_glow]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {"OMP_WAIT_POLICY": "passive"} if implementation == "pytorch" and args.omp_passive else {}
    return run_worker(command, env, what=f"{implementation} {config}")


def driver(args):
    chosen = args.implementations.split(",")
    implementations = [
        i for i in IMPLEMENTATIONS if i in chosen and (i != "pytorch" or args.pytorch_glow)
    ]
    configs = args.configs.split(",")
    results = {(i, c): [] for i in implementations for c in configs}
    first_steps = {(i, c): [] for i in implementations for c in configs}
    info = {}
    print(f"machine: {machine()}")
    print(
        f"{args.runs} rounds, {args.warmup} warm-up + {args.steps} timed steps per process, "
        f"batch {BATCH}, {IMAGE_SIZE}x{IMAGE_SIZE}x3, {NUM_BITS} bits",
        flush=True,
    )
    for round_ in range(args.runs):
        for config in configs:
            for implementation in implementations:
                result = _run_worker(implementation, config, args)
                results[implementation, config].append(result["img_per_s"])
                first_steps[implementation, config].append(result["first_step_s"])
                info[implementation] = (result["versions"], result["threads"])
                print(
                    f"  round {round_ + 1} {config:10s} {implementation:9s} "
                    f"{result['img_per_s']:7.2f} img/s (first step "
                    f"{result['first_step_s']:.1f} s"
                    + (f", build + init {result['init_s']:.1f} s" if "init_s" in result else "")
                    + ")",
                    flush=True,
                )
    print()
    for implementation, (versions, threads) in info.items():
        print(f"{implementation:9s} {versions}; {threads}")
    print()
    header = f"{'config':10s} {'implementation':16s} {'img/s':>7s} {'min-max':>13s}"
    header += "  vs PyTorch  vs tfb.Glow  first step s"
    print(header)
    for config in configs:
        medians = {i: statistics.median(results[i, config]) for i in implementations}
        for implementation in implementations:
            runs = results[implementation, config]
            line = (
                f"{config:10s} {implementation:16s} {medians[implementation]:7.2f} "
                f"{min(runs):6.2f}-{max(runs):<6.2f}"
            )
            for other in ("pytorch", "tfb.Glow"):
                ratio = medians[implementation] / medians[other] if other in medians else None
                line += f"  {ratio:9.2f}x" if ratio else "           "
            line += f"  {statistics.median(first_steps[implementation, config]):12.1f}"
            print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pytorch-glow", help="a checkout of rosinality/glow-pytorch")
    parser.add_argument("--quick", action="store_true", help="fewer timed steps")
    parser.add_argument(
        "--omp-passive", action="store_true", help="OMP_WAIT_POLICY=passive for PyTorch"
    )
    parser.add_argument("--threads", type=int, help="threads of every implementation")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated")
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS))
    parser.add_argument("--steps", type=int, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing)")
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=tuple(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 3 if args.quick else 10
    for config in args.configs.split(","):
        if config not in CONFIGS:
            parser.error(f"unknown config {config!r}; expected some of {tuple(CONFIGS)}")
    check_pytorch_glow(parser, args.pytorch_glow)
    if args.worker:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
