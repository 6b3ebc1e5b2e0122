"""Sampling speed through the Keras model, the exported SavedModel and onnxruntime, side by side.

For each model (a digits-sized 8x8x1 one and a 32x32x3 L=3 K=8 one, freshly
initialised: speed does not depend on training) and each batch size, images/s of

    keras         GlowModel.sample(n, 0.7, seed=...) called eagerly, as a user would
    keras+tf.fn   the same decode inside one tf.function (the 1x1 inverses computed per call)
    saved_model   the export's serving_default signature (tf.saved_model.load, same process)
    onnxruntime   decoder.onnx, standard-normal eps drawn by numpy on the client side

The runners are timed in turns within each repeat, so machine load hits all
alike; the median over repeats is reported with ratios to eager Keras.

    python bench/sampling.py [--models digits,cifar] [--batches 1,64] [--repeats 3]
        [--cifar-width 512] [--digits-width 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import tensorflow as tf  # noqa: E402

from export.onnx import convert_to_onnx  # noqa: E402
from export.saved_model import write_saved_model  # noqa: E402
from export.served import ServedGlow  # noqa: E402
from glow_tf import GlowConfig, GlowModel  # noqa: E402

TEMPERATURE = 0.7


def configs(args) -> dict[str, GlowConfig]:
    return {
        "digits": GlowConfig(
            image_shape=(8, 8, 1),
            num_levels=2,
            num_steps=8,
            hidden_channels=args.digits_width,
            num_bits=5,
        ),
        "cifar": GlowConfig(
            image_shape=(32, 32, 3), num_levels=3, num_steps=8, hidden_channels=args.cifar_width
        ),
    }


def runners(model: GlowModel, directory: str) -> dict:
    """name -> f(n, seed) drawing n uint8 images."""
    config = model.config
    served = ServedGlow(model)
    write_saved_model(served, directory)
    onnx_path = os.path.join(directory, "decoder.onnx")
    onnx.save(convert_to_onnx(served, "decoder"), onnx_path)
    serving_default = tf.saved_model.load(directory).signatures["serving_default"]
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    temperature = np.array(TEMPERATURE, np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, config.num_dims], tf.float32)])
    def decode(eps):
        return model.decode(eps, temperature=TEMPERATURE)

    def keras(n, seed):
        return model.sample(n, TEMPERATURE, seed=seed).numpy()

    def keras_tf_function(n, seed):
        eps = tf.random.stateless_normal([n, config.num_dims], seed=[0, seed])
        return decode(eps).numpy()

    def saved_model(n, seed):
        outputs = serving_default(
            num_samples=tf.constant(n),
            temperature=tf.constant(temperature),
            seed=tf.constant(seed, tf.int64),
        )
        return outputs["images"].numpy()

    def onnx_runtime(n, seed):
        eps = np.random.default_rng(seed).standard_normal((n, config.num_dims), np.float32)
        return session.run(["images"], {"eps": eps, "temperature": temperature})[0]

    return {
        "keras": keras,
        "keras+tf.fn": keras_tf_function,
        "saved_model": saved_model,
        "onnxruntime": onnx_runtime,
    }


def measure(run, batches, repeats) -> dict:
    """{(name, batch): median images/s}, the runners taking turns within each repeat."""
    results = {}
    for batch in batches:
        for fn in run.values():
            fn(batch, 0)  # warm-up: tracing, graph optimisation, allocations
        times = {name: [] for name in run}
        for repeat in range(repeats):
            for name, fn in run.items():
                start = time.perf_counter()
                images = fn(batch, repeat + 1)
                times[name].append(time.perf_counter() - start)
                assert images.shape[0] == batch and images.dtype == np.uint8
        for name in run:
            results[name, batch] = batch / statistics.median(times[name])
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="digits,cifar")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--digits-width", type=int, default=128)
    parser.add_argument("--cifar-width", type=int, default=512)
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    all_configs = configs(args)
    print(
        f"tensorflow {tf.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"{os.cpu_count()} CPUs; temperature {TEMPERATURE}; median of {args.repeats} repeats"
    )
    for name in args.models.split(","):
        config = all_configs[name]
        model = GlowModel(config)
        rng = np.random.default_rng(0)
        model.initialize(rng.integers(0, 256, (16, *config.image_shape)).astype(np.uint8))
        with tempfile.TemporaryDirectory() as directory:
            start = time.perf_counter()
            run = runners(model, directory)
            exported_in = time.perf_counter() - start
            results = measure(run, batches, args.repeats)
        shape = "x".join(map(str, config.image_shape))
        print(
            f"\n{name}: {shape}, L={config.num_levels}, K={config.num_steps}, "
            f"width {config.hidden_channels} (export: {exported_in:.0f} s)"
        )
        print(f"{'batch':>5}  " + "".join(f"{n:>14}" for n in run) + "   (images/s)")
        for batch in batches:
            rates = [results[n, batch] for n in run]
            print(f"{batch:>5}  " + "".join(f"{r:>14.1f}" for r in rates))
            base = results["keras", batch]
            print(f"{'':>5}  " + "".join(f"{r / base:>13.2f}x" for r in rates) + "   (vs keras)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
