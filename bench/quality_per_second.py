"""Quality per second: held-out bits/dim after the same training time, glow_tf vs the PyTorch port.

Issue 9, item 6. Each implementation trains, in a fresh process (glow_tf
first, then PyTorch), the same-sized Glow on the built-in digits (glow_tf's
`glow_tf.data.digits.digits_arrays`: scikit-learn's 8x8 digits, 1,500 train /
297 test images, 8x8x1, not upsampled, as the "digits" preset uses them) for
the same training-time budget, and is evaluated on the same test split at
checkpoints of training time (evaluation time excluded from the clock).

    python bench/quality_per_second.py --pytorch-glow /path/glow-pytorch \
        [--seconds 120] [--every 15] [--lr 1e-3] [--batch 64] [--width 64] \
        [--steps 16] [--omp-passive] [--threads N]

prints the machine, versions and thread settings, then one row per
evaluation: the training seconds actually elapsed at it (the first update
after each multiple of --every; a first step that takes longer than --every
gives one evaluation after it), the updates done and the held-out bits/dim
of each implementation, and the final
ratio PyTorch bpd / glow_tf bpd (> 1: glow_tf is better after the same time;
lower bits/dim is better). Default run: about 2 x (120 s + evaluation + start-up),
5-6 minutes.

Matched model (the "digits" preset's size, glow_tf.presets): L = 2 levels,
K = 16 steps, coupling width 64, affine coupling, LU-decomposed 1x1
convolutions, 5 bits, learned top prior; batch 64; both trained with Adam at
--lr (1e-3; the port's train.py uses Adam, the preset's Adamax + warm-up is not
in the port), no warm-up, no gradient clipping; ActNorm initialised on the same
512 training images in both. What differs is each implementation's own:
glow_tf's coupling networks are OpenAI's (edge-bias padding, ActNorm after
the hidden convolutions), the port's have no ActNorm in them; the port's
ActNorm-initialisation and split prior are its own.

The clock of each starts before the model is built (so it includes building,
the data-dependent init, and in glow_tf the tracing of the first training
step: time a user waits) and stops at each checkpoint for the evaluation.

Bits/dim, identical for both (D = 8 * 8 * 1 = 64, n_bins = 2**5):

    x   = floor(pixel / 2**(8 - 5)) / n_bins - 0.5 + u,   u ~ U[0, 1/n_bins)^D
    bpd = -(log p(x) - D log n_bins) / (D log 2)

with log p(x) = log N(z) + log|det dz/dx| of the flow. glow_tf computes it as
`model.bits_per_dim(images, noise=u)` (uniform dequantisation: log q(u | x) =
-D log(1/n_bins)); the port as its train.py's `calc_loss` does,
-(log_p + logdet - D log n_bins) / (D log 2) with (log_p, logdet, _) =
model(x), except that D is the digits' 64 (calc_loss hard-codes 3 channels).
Both evaluate the same test images with the SAME noise u (one draw, seed 0),
and train on -mean bpd of a fresh noise draw per batch.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

from _common import (
    REPO,
    check_pytorch_glow,
    emit,
    import_pytorch_glow,
    limit_threads,
    machine,
    pytorch_bins_to_input,
    run_worker,
    tf_threads,
    tf_versions,
    torch_threads,
)

NUM_BITS, INIT_BATCH = 5, 512
LEVELS, IMAGE_SHAPE = 2, (8, 8, 1)


def _train_loop(args, data, step, evaluate) -> list[dict]:
    """Train with `step(batch)` until args.seconds of training time; `evaluate()`
    at every args.every seconds of it (not counted). The clock started at
    data["clock_start"] (before the model was built)."""
    train = data["train"]
    rng = np.random.default_rng(1)
    curve = []
    training_time = time.perf_counter() - data["clock_start"]  # build + init
    next_checkpoint = args.every
    updates = 0
    while True:
        order = rng.permutation(len(train))
        for start in range(0, len(order) - args.batch + 1, args.batch):
            begin = time.perf_counter()
            step(train[order[start : start + args.batch]])
            training_time += time.perf_counter() - begin
            updates += 1
            if training_time >= next_checkpoint or training_time >= args.seconds:
                curve.append({"seconds": training_time, "updates": updates, "bpd": evaluate()})
                while next_checkpoint <= training_time:
                    next_checkpoint += args.every
                if training_time >= args.seconds:
                    return curve


def run_glow_tf(args, data) -> dict:
    sys.path.insert(0, REPO)
    import keras

    from glow_tf import GlowConfig, GlowModel

    data["clock_start"] = time.perf_counter()
    config = GlowConfig(
        image_shape=IMAGE_SHAPE,
        num_levels=LEVELS,
        num_steps=args.steps,
        hidden_channels=args.width,
        coupling="affine",
        permutation="conv1x1",
        lu_decomposed=True,
        num_bits=NUM_BITS,
    )
    model = GlowModel(config)
    model.initialize(data["train"][:INIT_BATCH])
    model.compile(keras.optimizers.Adam(args.lr))

    def evaluate():
        return float(np.mean(model.bits_per_dim(data["test"], noise=data["test_noise"])))

    curve = _train_loop(args, data, model.train_on_batch, evaluate)
    return {"curve": curve, "versions": tf_versions(), "threads": tf_threads()}


def run_pytorch(args, data) -> dict:
    import torch

    glow_pytorch = import_pytorch_glow(args.pytorch_glow, args.width)
    torch.manual_seed(0)
    n_bins = 2.0**NUM_BITS
    num_dims = int(np.prod(IMAGE_SHAPE))

    def to_input(images, noise=None):  # uint8 NHWC -> its [-0.5, 0.5) NCHW + noise
        x = pytorch_bins_to_input(torch.from_numpy(images).permute(0, 3, 1, 2).float(), NUM_BITS)
        if noise is None:
            return x + torch.rand_like(x) / n_bins
        return x + torch.from_numpy(noise).permute(0, 3, 1, 2)

    def bits_per_dim(x):  # its calc_loss with D = 64
        log_p, logdet, _ = model(x)
        return -(log_p + logdet - math.log(n_bins) * num_dims) / (math.log(2) * num_dims)

    data["clock_start"] = time.perf_counter()
    model = glow_pytorch.Glow(IMAGE_SHAPE[2], args.steps, LEVELS, affine=True, conv_lu=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    with torch.no_grad():  # its train.py's first iteration: ActNorm init
        model(to_input(data["train"][:INIT_BATCH]))

    def step(images):
        loss = bits_per_dim(to_input(images)).mean()
        model.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def evaluate():
        with torch.no_grad():
            return float(bits_per_dim(to_input(data["test"], data["test_noise"])).mean())

    curve = _train_loop(args, data, step, evaluate)
    return {
        "curve": curve,
        "versions": f"torch {torch.__version__}",
        "threads": torch_threads(),
    }


def worker(args):
    if args.threads:
        limit_threads("torch" if args.worker == "pytorch" else "tf", args.threads)
    arrays = np.load(args.data)
    data = {name: arrays[name] for name in ("train", "test", "test_noise")}
    run = run_pytorch if args.worker == "pytorch" else run_glow_tf
    emit(run(args, data))


def driver(args):
    sys.path.insert(0, REPO)
    from glow_tf.data.digits import digits_arrays

    train, _ = digits_arrays("train")
    test, _ = digits_arrays("test")
    noise = np.random.default_rng(0).uniform(0.0, 1.0 / 2**NUM_BITS, test.shape)
    # in float32 still < 1/n_bins, as the dequantizer checks
    noise = np.minimum(noise.astype(np.float32), np.nextafter(np.float32(1 / 2**NUM_BITS), 0))
    implementations = ["glow_tf"] + (["pytorch"] if args.pytorch_glow else [])
    print(f"machine: {machine()}")
    print(
        f"digits 8x8x1 ({len(train)} train / {len(test)} test), L={LEVELS} K={args.steps} "
        f"width {args.width}, affine + LU, {NUM_BITS} bits, batch {args.batch}, Adam lr "
        f"{args.lr}; {args.seconds:.0f} s of training each, evaluated every {args.every:.0f} s",
        flush=True,
    )
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "digits.npz")
        np.savez(path, train=train, test=test, test_noise=noise)
        for name in implementations:
            command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--data", path]
            for flag in ("seconds", "every", "lr", "batch", "width", "steps", "threads"):
                if getattr(args, flag) is not None:
                    command += [f"--{flag}", str(getattr(args, flag))]
            if args.pytorch_glow:
                command += ["--pytorch-glow", args.pytorch_glow]
            env = {"OMP_WAIT_POLICY": "passive"} if name == "pytorch" and args.omp_passive else {}
            results[name] = run_worker(command, env, what=name)
            last = results[name]["curve"][-1]
            print(
                f"  {name}: {last['updates']} updates, final {last['bpd']:.3f} bits/dim "
                f"(load average now {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    print()
    for name, result in results.items():
        print(f"{name:8s} {result['versions']}; {result['threads']}")
    print()
    header = f"{'evaluation':>10s}"
    for name in results:
        header += f"  {name + ' (s, updates, bpd)':>30s}"
    print(header)
    rows = max(len(r["curve"]) for r in results.values())
    for row in range(rows):
        line = f"{row + 1:10d}"
        for result in results.values():
            curve = result["curve"]
            if row < len(curve):
                c = curve[row]
                line += f"  {c['seconds']:14.1f} {c['updates']:6d} {c['bpd']:8.3f}"
            else:
                line += f"  {'':30s}"
        print(line)
    if "pytorch" in results:
        ours, theirs = results["glow_tf"]["curve"][-1], results["pytorch"]["curve"][-1]
        print(
            f"\nafter {args.seconds:.0f} s: glow_tf {ours['bpd']:.3f}, PyTorch {theirs['bpd']:.3f} "
            f"bits/dim; ratio PyTorch / glow_tf {theirs['bpd'] / ours['bpd']:.3f} "
            "(> 1: glow_tf lower, better)"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pytorch-glow", help="a checkout of rosinality/glow-pytorch")
    parser.add_argument("--seconds", type=float, default=120.0, help="training time of each")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between evaluations")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--steps", type=int, default=16, help="K, steps per level")
    parser.add_argument("--threads", type=int, help="intra- and inter-op threads of each")
    parser.add_argument(
        "--omp-passive", action="store_true", help="OMP_WAIT_POLICY=passive for PyTorch"
    )
    parser.add_argument("--worker", choices=("glow_tf", "pytorch"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    check_pytorch_glow(parser, args.pytorch_glow)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.worker:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
