"""Glow vs RealNVP, uniform vs variational dequantisation, on the built-in digits.

Every cell trains one model on the 1,500 training digits for the same
wall-clock budget (`--seconds`, counted after a one-update warm-up that traces
the step) and reports the held-out bits/dim on the 297 test digits. Glow and
RealNVP are matched in parameter count: RealNVP's width is the one whose flow
has the parameter count closest to Glow's (the dequantiser's weights, the same
network for both families, are listed apart). Each family trains with its
digits preset's recipe (optimizer, learning rate, warm-up, clipping; batch 64).

Held-out bits/dim is the dequantisation bound E_u[-log p(x + u) + log q(u | x)]
/ (D log 2), averaged over `--eval-draws` draws of u from the model's own
dequantiser (uniform noise, or samples of the learned q), with seeded draws.

    python bench/family_comparison.py [--seconds 120] [--glow-steps 8] [--glow-width 32]
        [--realnvp-blocks 2] [--families glow,realnvp] [--dequantizations uniform,variational]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from glow_tf import GlowConfig, GlowModel, RealNVPConfig, RealNVPModel  # noqa: E402
from glow_tf.data.datasets import load_source  # noqa: E402
from glow_tf.data.dequantize import uniform_noise  # noqa: E402
from glow_tf.data.digits import digits_arrays  # noqa: E402
from glow_tf.data.pipeline import training_dataset  # noqa: E402
from glow_tf.presets import PRESETS  # noqa: E402
from glow_tf.training.optimizers import make_optimizer  # noqa: E402

BATCH_SIZE = 64
NUM_BITS = 5
STEPS_PER_EPOCH = 1500 // BATCH_SIZE
RECIPES = {"glow": PRESETS["digits"].training, "realnvp": PRESETS["realnvp_digits"].training}


class StopAfter(keras.callbacks.Callback):
    """Stops `fit` once `seconds` of wall-clock time have passed since `start`."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.start = None
        self.updates = 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.updates += 1
        if time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True


def glow_config(args) -> GlowConfig:
    return GlowConfig(
        image_shape=(8, 8, 1),
        num_levels=2,
        num_steps=args.glow_steps,
        hidden_channels=args.glow_width,
        num_bits=NUM_BITS,
        seed=0,
    )


def realnvp_config(width: int, args) -> RealNVPConfig:
    return RealNVPConfig(
        image_shape=(8, 8, 1),
        num_levels=2,
        hidden_channels=width,
        num_blocks=args.realnvp_blocks,
        num_bits=NUM_BITS,
        seed=0,
    )


def flow_parameters(model) -> int:
    """Trainable weights of the flow (levels and prior), the dequantiser excluded."""
    dequantizer = {id(w) for w in model.dequantizer.weights}
    return int(sum(np.prod(w.shape) for w in model.trainable_weights if id(w) not in dequantizer))


def dequantizer_parameters(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.dequantizer.trainable_weights))


def matched_realnvp_width(target: int, args) -> tuple[int, int]:
    """(width, parameters) of the RealNVP whose flow parameter count is closest to `target`."""
    counts = {}

    def count(width):
        if width not in counts:
            counts[width] = flow_parameters(RealNVPModel(realnvp_config(width, args)))
        return counts[width]

    low, high = 1, 256
    while high - low > 1:
        middle = (low + high) // 2
        if count(middle) < target:
            low = middle
        else:
            high = middle
    width = min((low, high), key=lambda w: abs(count(w) - target))
    return width, count(width)


def held_out_bits(model, images, draws: int) -> float:
    values = []
    for draw in range(draws):
        keras.utils.set_random_seed(1000 + draw)
        values.append(float(np.mean(model.bits_per_dim(images))))
    return float(np.mean(values))


def run_cell(family: str, config, dequantization: str, args) -> dict:
    keras.utils.set_random_seed(0)
    model_class = GlowModel if family == "glow" else RealNVPModel
    model = model_class(config, dequantizer=dequantization)
    recipe = RECIPES[family]
    init = digits_arrays("train")[0][: recipe.init_batch_size]
    model.initialize(init, noise=uniform_noise(init.shape, NUM_BITS, seed=[0, 1]))
    optimizer = make_optimizer(
        recipe.optimizer,
        recipe.lr,
        recipe.warmup_steps(STEPS_PER_EPOCH),
        beta_1=recipe.beta1,
        beta_2=recipe.beta2,
    )
    model.compile(optimizer, gradient_clip_norm=recipe.clip_norm)
    data = training_dataset(load_source("digits"), BATCH_SIZE, seed=0)
    model.fit(data, steps_per_epoch=1, epochs=1, verbose=0)  # traces the step
    stop = StopAfter(args.seconds)
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=STEPS_PER_EPOCH, epochs=10**6, verbose=0, callbacks=[stop])
    seconds = time.perf_counter() - start
    test = digits_arrays("test")[0]
    return {
        "family": family,
        "dequantization": dequantization,
        "flow_parameters": flow_parameters(model),
        "dequantizer_parameters": dequantizer_parameters(model),
        "updates": stop.updates + 1,
        "seconds": seconds,
        "train_bits": held_out_bits(model, digits_arrays("train")[0][:297], 2),
        "test_bits": held_out_bits(model, test, args.eval_draws),
        "summary": config.summary(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="training time per cell")
    parser.add_argument("--glow-steps", type=int, default=8, help="Glow's K (L = 2)")
    parser.add_argument("--glow-width", type=int, default=32, help="Glow's hidden channels")
    parser.add_argument("--realnvp-blocks", type=int, default=2, help="RealNVP residual blocks")
    parser.add_argument("--eval-draws", type=int, default=8, help="dequantisation draws")
    parser.add_argument("--families", default="glow,realnvp")
    parser.add_argument("--dequantizations", default="uniform,variational")
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    dequantizations = [d for d in args.dequantizations.split(",") if d]

    glow = glow_config(args)
    glow_parameters = flow_parameters(GlowModel(glow))
    width, realnvp_parameters = matched_realnvp_width(glow_parameters, args)
    configs = {"glow": glow, "realnvp": realnvp_config(width, args)}

    print("Glow vs RealNVP on digits (8x8x1, 5 bits; 1,500 train / 297 held-out images)")
    print(f"machine   {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"load      {os.getloadavg()[0]:.1f} (1-minute load average at start; shared machine)")
    print(
        f"versions  python {platform.python_version()}, tensorflow {tf.__version__}, "
        f"keras {keras.__version__}"
    )
    print(
        f"budget    {args.seconds:g} s of training per cell (same wall-clock for every cell), "
        f"batch {BATCH_SIZE}, held-out bound over {args.eval_draws} dequantisation draws"
    )
    print(f"glow      {glow.summary()}: {glow_parameters} flow parameters")
    print(
        f"realnvp   {configs['realnvp'].summary()}: {realnvp_parameters} flow parameters "
        f"(width matched to Glow's count, x{realnvp_parameters / glow_parameters:.3f})"
    )
    results = []
    for family in families:
        for dequantization in dequantizations:
            result = run_cell(family, configs[family], dequantization, args)
            results.append(result)
            print(
                f"  done {family}/{dequantization}: {result['test_bits']:.4f} bits/dim", flush=True
            )

    print()
    header = (
        f"{'family':<8} {'dequant':<11} {'flow params':>11} {'deq params':>10} "
        f"{'updates':>7} {'train s':>7} {'train b/d':>9} {'held-out b/d':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['family']:<8} {r['dequantization']:<11} {r['flow_parameters']:>11} "
            f"{r['dequantizer_parameters']:>10} {r['updates']:>7} {r['seconds']:>7.1f} "
            f"{r['train_bits']:>9.4f} {r['test_bits']:>12.4f}"
        )
    by_cell = {(r["family"], r["dequantization"]): r["test_bits"] for r in results}
    for family in families:
        if (family, "uniform") in by_cell and (family, "variational") in by_cell:
            gain = by_cell[(family, "uniform")] - by_cell[(family, "variational")]
            print(f"{family}: variational - uniform = {-gain:+.4f} bits/dim held-out")
    for dequantization in dequantizations:
        if ("glow", dequantization) in by_cell and ("realnvp", dequantization) in by_cell:
            diff = by_cell[("realnvp", dequantization)] - by_cell[("glow", dequantization)]
            print(f"{dequantization}: realnvp - glow = {diff:+.4f} bits/dim held-out")
    print(
        "(train b/d: 297 training images, same draws; the held-out bound includes "
        "the dequantisation gap)"
    )
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    print(f"reproduce: {command}")


if __name__ == "__main__":
    main()
