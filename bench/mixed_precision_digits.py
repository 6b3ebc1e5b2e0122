"""Mixed precision on the built-in digits: test bits/dim and step time of the
coupling networks in float32, bfloat16 and float16, after the same updates.

Each precision trains the same model (same seed, same init batch and noise,
same data order) for the same number of updates with train_keras.py's
optimizer; the test bits/dim uses fixed dequantisation noise. Prints each
precision's test bits/dim, its difference to float32 and the time per update
relative to float32.

    python bench/mixed_precision_digits.py [--epochs 5] [--num-steps 16] [--width 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from glow_tf import GlowConfig, GlowModel  # noqa: E402
from glow_tf.data import bin_centre_noise  # noqa: E402
from glow_tf.data.datasets import load_source  # noqa: E402
from glow_tf.data.digits import digits_arrays  # noqa: E402
from glow_tf.data.pipeline import training_dataset  # noqa: E402
from glow_tf.training.optimizers import initial_loss_scale, make_optimizer  # noqa: E402


def fixed_noise_bits(model, images):
    noise = bin_centre_noise(images, model.config.num_bits)
    return float(np.mean(model.bits_per_dim(images, noise=noise)))


def run(dtype, args):
    config = GlowConfig(
        image_shape=(8, 8, 1),
        num_levels=2,
        num_steps=args.num_steps,
        hidden_channels=args.width,
        num_bits=5,
        network_dtype=dtype,
        seed=0,
    )
    model = GlowModel(config)
    init = digits_arrays("train")[0][:512]
    model.initialize(init, noise=np.full(init.shape, 0.5 / 32, np.float32))
    loss_scale = initial_loss_scale(config.num_dims) if dtype == "float16" else None
    model.compile(make_optimizer("adamax", 2e-3, warmup_steps=115, loss_scale=loss_scale))
    model.optimizer.build(model.trainable_variables)
    data = training_dataset(load_source("digits"), 64, seed=0)
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace
    start = time.time()
    model.fit(data, steps_per_epoch=23, epochs=args.epochs, verbose=0)
    seconds = (time.time() - start) / (23 * args.epochs)
    return fixed_noise_bits(model, digits_arrays("test")[0]), seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--num-steps", type=int, default=16)
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args()
    results = {dtype: run(dtype, args) for dtype in ("float32", "bfloat16", "float16")}
    base_bits, base_time = results["float32"]
    print(f"digits, L=2 K={args.num_steps} width={args.width}, {2 + 23 * args.epochs} updates")
    for dtype, (bits, seconds) in results.items():
        print(
            f"{dtype:9s} test {bits:.4f} bits/dim  diff {bits - base_bits:+.4f}  "
            f"{seconds * 1e3:.1f} ms/update  x{seconds / base_time:.2f}"
        )


if __name__ == "__main__":
    main()
