"""What float32 inference costs a model with half-precision coupling networks.

Training computes the coupling networks in bfloat16 / float16; encode,
decode, sample and the exports compute them in float32 on the same float32
weights (glow_tf.nn.coupling_network.CouplingNetwork), because a round trip
through half-precision networks is not exact at depth. For each half
precision this times the flow's forward (encode) and inverse (decode), as
compiled graphs on one batch, with the networks computing in float32 (what
inference does) and in the half precision (what training does), and reports
the round trip of a batch at bin centres in both: the largest error on the
flow input and the fraction of pixels that come back different.

    python bench/inference_precision.py [--num-steps 32] [--width 64] [--side 16]
        [--channels 3] [--num-levels 2] [--batch 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from glow_tf import GlowConfig, GlowModel, postprocess  # noqa: E402
from glow_tf.data import bin_centre_noise  # noqa: E402
from tests.conftest import tiny_images, trained_like  # noqa: E402


def seconds_per_call(function, argument, repeats):
    """The fastest of `repeats` calls (after one that traces): on a shared
    machine the minimum is the least disturbed measurement."""
    function(argument)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), function(argument))
        times.append(time.perf_counter() - start)
    return min(times)


def measure(model, x, images, training, repeats):
    flow = model.flow(include_top=False, training=training)
    encode = tf.function(lambda x: flow.forward_latents(x)[0])
    decode = tf.function(lambda latents: flow.inverse_latents(latents)[0])
    latents = encode(x)
    x_back = decode(latents)
    pixels_off = float(np.mean(postprocess(x_back, model.config.num_bits).numpy() != images))
    error = float(tf.reduce_max(tf.abs(x_back - x)))
    return (
        seconds_per_call(encode, x, repeats),
        seconds_per_call(decode, latents, repeats),
        error,
        pixels_off,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-steps", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--side", type=int, default=16)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--num-levels", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    config = GlowConfig(
        image_shape=(args.side, args.side, args.channels),
        num_levels=args.num_levels,
        num_steps=args.num_steps,
        hidden_channels=args.width,
        num_bits=8,
        seed=0,
    )
    images = tiny_images(args.batch, config.image_shape, seed=1)
    reference = trained_like(GlowModel(config), tiny_images(64, config.image_shape, seed=0))
    x = reference.flow_input(images, bin_centre_noise(images, config.num_bits))
    print(
        f"{args.side}x{args.side}x{args.channels}, L={args.num_levels} K={args.num_steps} "
        f"width={args.width}, batch {args.batch}, trained-like weights; "
        f"{tf.config.list_physical_devices()[0].device_type} x{len(tf.config.list_physical_devices())}"
    )
    print(f"{'coupling networks':36s} {'encode ms':>10s} {'decode ms':>10s} {'max |dx|':>10s} {'pixels off':>10s}")
    rows = {"float32": measure(reference, x, images, False, args.repeats)}
    for dtype in ("bfloat16", "float16"):
        model = GlowModel(config.replace(network_dtype=dtype))
        model.set_weights(reference.get_weights())
        rows[f"{dtype}, in {dtype} (training)"] = measure(model, x, images, True, args.repeats)
        rows[f"{dtype}, in float32 (inference)"] = measure(model, x, images, False, args.repeats)
    base_encode, base_decode = rows["float32"][:2]
    for name, (encode, decode, error, off) in rows.items():
        print(
            f"{name:36s} {encode * 1e3:10.1f} {decode * 1e3:10.1f} {error:10.2g} {off:10.2%}"
            f"   x{encode / base_encode:.2f} / x{decode / base_decode:.2f} of float32"
        )


if __name__ == "__main__":
    main()
