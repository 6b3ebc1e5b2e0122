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

Against the PyTorch port (issue 9, item 5: >= 1.3x rosinality/glow-pytorch at
batch 64, first call <= 2 s). With --pytorch-glow the script instead compares,
on the 32x32x3 L=3 K=8 model (coupling width --width, default 128), batch 64,
temperature 0.7, each in a FRESH process, the processes alternating for
--rounds rounds:

    keras        GlowModel(config) + model.initialize(batch), then
                 model.sample(64, 0.7, seed=...).numpy()
    saved_model  tf.saved_model.load(dir).signatures["serving_default"]
                 (num_samples=64, temperature=0.7, seed=...)["images"]
    onnxruntime  InferenceSession(decoder.onnx) + numpy eps, .run(["images"], ...)
    pytorch      its Glow(3, 8, 3, affine=True, conv_lu=True) at the same width,
                 ActNorm initialised by one forward pass under no_grad as its
                 train.py does, then, as its train.py samples: z_list =
                 [torch.randn(64, *shape) * 0.7 for each level's latent shape],
                 model.reverse(z_list) under no_grad, quantised to uint8 the way
                 glow_tf's postprocess does (so every runner returns uint8 images)

The SavedModel and decoder.onnx are written once per run by one more fresh
process (a freshly initialised model of the same seed: speed does not depend
on training). Each worker times the FIRST sample call after the model is
built / loaded (tracing, graph optimisation, allocations included; building,
initialising or loading is timed separately as "load"), then --repeats more
calls after one untimed one, and reports their median images/s.

    python bench/sampling.py --pytorch-glow /path/glow-pytorch [--width 128]
        [--rounds 2] [--repeats 3] [--omp-passive] [--threads N]

prints the machine, versions and thread settings, one line per worker, then
a table: median images/s over the rounds with its min-max, the ratio to
PyTorch, and the median first-call and load seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from _common import (
    bench_glow_config,
    check_pytorch_glow,
    emit,
    import_pytorch_glow,
    limit_threads,
    machine,
    run_worker,
    tf_threads,
    tf_versions,
    torch_threads,
)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

# TensorFlow, onnx and glow_tf are imported by _import_tf(), so that the
# PyTorch worker process runs without TensorFlow loaded.
tf = onnx = onnxruntime = None
GlowConfig = GlowModel = ServedGlow = convert_to_onnx = write_saved_model = None


def _import_tf() -> None:
    global tf, onnx, onnxruntime, GlowConfig, GlowModel, ServedGlow
    global convert_to_onnx, write_saved_model
    import onnx
    import onnxruntime
    import tensorflow as tf

    from export.onnx import convert_to_onnx
    from export.saved_model import write_saved_model
    from export.served import ServedGlow
    from glow_tf import GlowConfig, GlowModel

TEMPERATURE = 0.7


def configs(args) -> dict:
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


def export(model, directory: str) -> None:
    """The model's SavedModel and decoder.onnx, written into `directory`."""
    served = ServedGlow(model)
    write_saved_model(served, directory)
    onnx.save(convert_to_onnx(served, "decoder"), os.path.join(directory, "decoder.onnx"))


def saved_model_sampler(directory: str):
    """f(n, seed) through the SavedModel's serving_default signature."""
    serving_default = tf.saved_model.load(directory).signatures["serving_default"]
    temperature = tf.constant(np.array(TEMPERATURE, np.float32))

    def saved_model(n, seed):
        outputs = serving_default(
            num_samples=tf.constant(n), temperature=temperature, seed=tf.constant(seed, tf.int64)
        )
        return outputs["images"].numpy()

    return saved_model


def onnx_sampler(directory: str, num_dims: int):
    """f(n, seed) through onnxruntime on decoder.onnx, eps drawn by numpy."""
    session = onnxruntime.InferenceSession(
        os.path.join(directory, "decoder.onnx"), providers=["CPUExecutionProvider"]
    )
    temperature = np.array(TEMPERATURE, np.float32)

    def onnx_runtime(n, seed):
        eps = np.random.default_rng(seed).standard_normal((n, num_dims), np.float32)
        return session.run(["images"], {"eps": eps, "temperature": temperature})[0]

    return onnx_runtime


def runners(model, directory: str) -> dict:
    """name -> f(n, seed) drawing n uint8 images."""
    config = model.config
    export(model, directory)

    @tf.function(input_signature=[tf.TensorSpec([None, config.num_dims], tf.float32)])
    def decode(eps):
        return model.decode(eps, temperature=TEMPERATURE)

    def keras(n, seed):
        return model.sample(n, TEMPERATURE, seed=seed).numpy()

    def keras_tf_function(n, seed):
        eps = tf.random.stateless_normal([n, config.num_dims], seed=[0, seed])
        return decode(eps).numpy()

    return {
        "keras": keras,
        "keras+tf.fn": keras_tf_function,
        "saved_model": saved_model_sampler(directory),
        "onnxruntime": onnx_sampler(directory, config.num_dims),
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

# ------------------------------------------- against the PyTorch port (item 5)

BATCH = 64
IMPLEMENTATIONS = ("keras", "saved_model", "onnxruntime", "pytorch")
IMAGE_SHAPE, LEVELS, STEPS = (32, 32, 3), 3, 8


def cifar_model(width: int):
    """The L=3 K=8 32x32x3 GlowModel (affine, LU), initialised on seeded images."""
    config = bench_glow_config(LEVELS, STEPS, width, IMAGE_SHAPE[0])
    model = GlowModel(config)
    rng = np.random.default_rng(0)
    model.initialize(rng.integers(0, 256, (16, *IMAGE_SHAPE)).astype(np.uint8))
    return model


def pytorch_sampler(pytorch_glow: str, width: int):
    """f(n, seed) through rosinality/glow-pytorch's reverse pass, as its train.py samples."""
    import torch

    glow_pytorch = import_pytorch_glow(pytorch_glow, width)
    torch.manual_seed(0)
    model = glow_pytorch.Glow(IMAGE_SHAPE[2], STEPS, LEVELS, affine=True, conv_lu=True)
    n_bins = 2.0**5
    with torch.no_grad():  # its train.py's first iteration: ActNorm init
        x = torch.rand(16, IMAGE_SHAPE[2], *IMAGE_SHAPE[:2]) - 0.5
        _, _, z_outs = model(x)
    z_shapes = [tuple(z.shape[1:]) for z in z_outs]  # = its train.py's calc_z_shapes

    def pytorch(n, seed):
        torch.manual_seed(seed)
        with torch.no_grad():
            z_list = [torch.randn(n, *shape) * TEMPERATURE for shape in z_shapes]
            x = model.reverse(z_list)
            # glow_tf's postprocess: uint8(clip(floor((x + 0.5) * n_bins) * 256 / n_bins))
            images = torch.floor((x + 0.5) * n_bins) * (256.0 / n_bins)
            images = images.clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return images.numpy()

    return pytorch


def sample_worker(args) -> dict:
    """One implementation in this fresh process: load time, first call, median rate."""
    if args.worker != "pytorch":
        _import_tf()
    if args.threads:
        limit_threads("torch" if args.worker == "pytorch" else "tf", args.threads)
    start = time.perf_counter()
    if args.worker == "export":
        export(cifar_model(args.width), args.dir)
        return {"export_s": time.perf_counter() - start}
    if args.worker == "keras":
        model = cifar_model(args.width)

        def sample(n, seed):
            return model.sample(n, TEMPERATURE, seed=seed).numpy()

    elif args.worker == "saved_model":
        sample = saved_model_sampler(args.dir)
    elif args.worker == "onnxruntime":
        sample = onnx_sampler(args.dir, int(np.prod(IMAGE_SHAPE)))
    else:
        sample = pytorch_sampler(args.pytorch_glow, args.width)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    images = sample(BATCH, 0)
    first_call_s = time.perf_counter() - start
    assert images.shape == (BATCH, *IMAGE_SHAPE) and images.dtype == np.uint8, images.shape
    sample(BATCH, 1)  # untimed
    times = []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        sample(BATCH, repeat + 2)
        times.append(time.perf_counter() - start)
    if args.worker == "pytorch":
        import torch

        versions, threads = f"torch {torch.__version__}", torch_threads()
    else:
        versions = f"{tf_versions()}, onnxruntime {onnxruntime.__version__}"
        threads = tf_threads() + ("" if args.worker != "onnxruntime" else ", onnxruntime default")
    return {
        "load_s": load_s,
        "first_call_s": first_call_s,
        "img_per_s": BATCH / statistics.median(times),
        "versions": versions,
        "threads": threads,
    }


def compare_with_pytorch(args) -> int:
    """The driver of the item-5 comparison: fresh processes, alternating."""

    def command(worker, directory):
        line = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--dir", directory]
        line += ["--width", str(args.width), "--repeats", str(args.repeats)]
        line += ["--pytorch-glow", args.pytorch_glow]
        return line + (["--threads", str(args.threads)] if args.threads else [])

    print(f"machine: {machine()}")
    print(
        f"32x32x3 L={LEVELS} K={STEPS} width {args.width}, batch {BATCH}, temperature "
        f"{TEMPERATURE}; {args.rounds} rounds of fresh processes, {args.repeats} timed calls each",
        flush=True,
    )
    results = {name: [] for name in IMPLEMENTATIONS}
    info = {}
    with tempfile.TemporaryDirectory() as directory:
        exported = run_worker(command("export", directory), what="export")
        print(f"  export (SavedModel + decoder.onnx): {exported['export_s']:.0f} s", flush=True)
        for round_ in range(args.rounds):
            for name in IMPLEMENTATIONS:
                passive = name == "pytorch" and args.omp_passive
                env = {"OMP_WAIT_POLICY": "passive"} if passive else {}
                result = run_worker(command(name, directory), env, what=name)
                results[name].append(result)
                info[name] = (result["versions"], result["threads"])
                print(
                    f"  round {round_ + 1} {name:12s} {result['img_per_s']:7.1f} img/s, "
                    f"first call {result['first_call_s']:5.2f} s, load {result['load_s']:5.1f} s",
                    flush=True,
                )
    print()
    for name, (versions, threads) in info.items():
        print(f"{name:12s} {versions}; {threads}")
    print()
    median = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0] if k.endswith("_s")}
        for name, runs in results.items()
    }
    print(
        f"{'implementation':14s} {'img/s':>7s} {'min-max':>13s} {'vs PyTorch':>10s} "
        f"{'first call':>10s} {'load':>6s}"
    )
    for name, runs in results.items():
        rates = [r["img_per_s"] for r in runs]
        ratio = median[name]["img_per_s"] / median["pytorch"]["img_per_s"]
        print(
            f"{name:14s} {median[name]['img_per_s']:7.1f} {min(rates):6.1f}-{max(rates):<6.1f} "
            f"{ratio:9.2f}x {median[name]['first_call_s']:9.2f}s {median[name]['load_s']:5.1f}s"
        )
    print("\ntargets: >= 1.3x PyTorch, first call <= 2 s (medians over the rounds)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="digits,cifar")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--digits-width", type=int, default=128)
    parser.add_argument("--cifar-width", type=int, default=512)
    parser.add_argument("--pytorch-glow", help="compare with this rosinality/glow-pytorch clone")
    parser.add_argument("--width", type=int, default=128, help="with --pytorch-glow")
    parser.add_argument("--rounds", type=int, default=2, help="with --pytorch-glow")
    parser.add_argument(
        "--omp-passive", action="store_true", help="PyTorch: OMP_WAIT_POLICY=passive"
    )
    parser.add_argument("--threads", type=int, help="with --pytorch-glow: threads of each")
    parser.add_argument("--worker", choices=("export",) + IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_pytorch_glow(parser, args.pytorch_glow)
    if args.worker:
        emit(sample_worker(args))
        return 0
    if args.pytorch_glow:  # the workers import what they need
        return compare_with_pytorch(args)
    _import_tf()
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
