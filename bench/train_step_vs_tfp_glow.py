"""Training-step speed of glow_tf's Glow against TFP's `tfb.Glow`, side by side.

Both flows get the same image size, levels, steps per level and coupling
width; each runs `loss = -mean(log p(x))`, its gradient and an optimiser update
inside one `tf.function`, alternating between the two so machine load hits
both alike. Prints seconds per step and the ratio.

TFP's `tfb.Glow` (a RealNVP per step) evaluates each coupling network twice
per `log_prob` (once for the transform, once for the log-det); glow_tf's
bijectors get both from one evaluation.

    python bench/train_step_vs_tfp_glow.py [--size 32] [--levels 3] [--steps 8]
        [--width 128] [--batch 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

from glow_tf import GlowConfig, GlowModel  # noqa: E402

tfb, tfd = tfp.bijectors, tfp.distributions


def glow_tf_step(args, images):
    config = GlowConfig(
        image_shape=(args.size, args.size, 3),
        num_levels=args.levels,
        num_steps=args.steps,
        hidden_channels=args.width,
    )
    model = GlowModel(config)
    model.initialize(images)
    optimizer = keras.optimizers.Adam(1e-4)
    noise = np.full(images.shape, 0.5 / 256, np.float32)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.bits_per_dim(x, noise=noise))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step, sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def tfp_glow_step(args, images):
    shape = (args.size, args.size, 3)
    glow = tfb.Glow(
        output_shape=shape,
        num_glow_blocks=args.levels,
        num_steps_per_block=args.steps,
        coupling_bijector_fn=lambda s: tfb.GlowDefaultNetwork(s, num_hidden=args.width),
        exit_bijector_fn=tfb.GlowDefaultExitNetwork,
    )
    distribution = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0.0, 1.0), [int(np.prod(shape))]), glow
    )
    x_continuous = tf.constant(images / 256.0 - 0.5 + 0.5 / 256, tf.float32)
    distribution.log_prob(x_continuous)  # creates the networks' variables
    optimizer = keras.optimizers.Adam(1e-4)
    variables = list(glow.trainable_variables)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(distribution.log_prob(x))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return lambda _: step(x_continuous), sum(int(np.prod(v.shape)) for v in variables)


def seconds_per_step(step, x, iterations):
    start = time.perf_counter()
    for _ in range(iterations):
        loss = step(x)
    float(loss)
    return (time.perf_counter() - start) / iterations


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch, args.size, args.size, 3)).astype(np.uint8)
    ours, our_params = glow_tf_step(args, images)
    theirs, their_params = tfp_glow_step(args, images)
    for step in (ours, theirs):  # trace and warm up
        seconds_per_step(step, images, 2)
    times = {"glow_tf": [], "tfb.Glow": []}
    for _ in range(args.repeats):
        times["glow_tf"].append(seconds_per_step(ours, images, args.iterations))
        times["tfb.Glow"].append(seconds_per_step(theirs, images, args.iterations))
    ours_s, theirs_s = (statistics.median(times[k]) for k in ("glow_tf", "tfb.Glow"))
    print(
        f"{args.size}x{args.size}x3, L={args.levels}, K={args.steps}, width={args.width}, "
        f"batch={args.batch}, device={tf.config.list_logical_devices()[-1].device_type}"
    )
    print(f"glow_tf : {ours_s * 1e3:8.1f} ms/step  ({our_params / 1e6:.2f}M params)")
    print(f"tfb.Glow: {theirs_s * 1e3:8.1f} ms/step  ({their_params / 1e6:.2f}M params)")
    print(f"speed-up: {theirs_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
