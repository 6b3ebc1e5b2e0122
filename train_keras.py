"""Train a Glow model with Keras `fit`, from the built-in digits to CelebA-HQ.

    python train_keras.py                                  # digits, ~3 min on 2 CPU cores
    python train_keras.py --preset digits_conditional      # class-conditional digits
    python train_keras.py --preset cifar10 --batch-size 64 --output-dir runs/cifar10
    python train_keras.py --dataset folder:/data/faces --image-size 64 --num-levels 4

Writes into --output-dir (default runs/<preset>):

    model.keras            the model after the last epoch (EMA weights with --ema-decay)
    best.keras             the model with the best test bits/dim
    samples.png            samples, one row per temperature (0.5, 0.7, 1.0)
    reconstructions.png    test images next to decode(encode(image))
    log.csv                epoch, step, train and test bits/dim, learning rate, time
    images/                sample grids and reconstructions every --sample-every epochs
    tensorboard/           scalars and sample grids (tensorboard --logdir DIR/tensorboard)
    checkpoints/epoch-*/   resumable checkpoints (weights + optimizer state)
    run.json               the configuration and arguments of the run

Running the same command again continues a run that was killed, from its last
checkpoint (same step count and optimizer state); see --resume.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__all__ = ["main", "train", "parse_args", "resolve_settings", "build_config"]


# ------------------------------------------------------------------ arguments


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _on_off(text):
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text}")


def build_parser() -> argparse.ArgumentParser:
    from glow_tf.presets import PRESETS

    parser = argparse.ArgumentParser(
        prog="train_keras.py",
        description="Train Glow (Kingma & Dhariwal, 2018) with Keras fit. Every preset field "
        "can be overridden by its flag.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run = parser.add_argument_group("run")
    run.add_argument("--preset", default="digits", choices=sorted(PRESETS), help="training recipe")
    run.add_argument("--output-dir", default=None, help="run directory (default runs/<preset>)")
    run.add_argument(
        "--resume",
        default="auto",
        help="'auto': continue the run in --output-dir if it has a checkpoint; 'never': "
        "start fresh (refuses a directory that holds a run); or the path of a run directory "
        "or checkpoint to continue from",
    )
    run.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="Keras fit verbosity (default: progress bar)",
    )

    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        help="digits, mnist, fashion_mnist, cifar10, celeb_a, "
        "imagenet_resized/32x32, imagenet_resized/64x64, lsun/<category>, "
        "folder:PATH or tfrecord:GLOB",
    )
    data.add_argument("--data-dir", help="tensorflow-datasets data directory")
    data.add_argument(
        "--image-size", type=_positive_int, help="square image size to crop/resize to"
    )
    data.add_argument("--channels", type=int, choices=(1, 3), help="channels of folder images")
    data.add_argument(
        "--test-examples", type=_positive_int, help="evaluate on the first N test images only"
    )
    data.add_argument(
        "--steps-per-epoch",
        type=_positive_int,
        help="updates per epoch (default: train images // batch size)",
    )

    model = parser.add_argument_group("model (GlowConfig fields)")
    model.add_argument("--num-levels", type=_positive_int, help="L, levels of the multi-scale flow")
    model.add_argument("--num-steps", type=_positive_int, help="K, flow steps per level")
    model.add_argument(
        "--hidden-channels", type=_positive_int, help="width of the coupling networks"
    )
    model.add_argument("--coupling", choices=("affine", "additive"))
    model.add_argument("--permutation", choices=("conv1x1", "shuffle", "reverse"))
    model.add_argument(
        "--lu-decomposed", type=_on_off, metavar="BOOL", help="LU-decomposed 1x1 convs"
    )
    model.add_argument(
        "--num-bits", type=int, choices=range(1, 9), metavar="1..8", help="bits per pixel value"
    )
    model.add_argument("--learn-top", type=_on_off, metavar="BOOL", help="learned top prior")
    model.add_argument(
        "--conditional",
        type=_on_off,
        metavar="BOOL",
        help="class-conditional model on the dataset's labels",
    )
    model.add_argument("--weight-y", type=float, help="weight of the classifier loss (conditional)")
    model.add_argument("--seed", type=int, help="seed of the initial weights and the data order")

    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=_positive_int)
    train.add_argument("--batch-size", type=_positive_int, help="global batch size (all replicas)")
    train.add_argument("--test-batch-size", type=_positive_int)
    train.add_argument(
        "--init-batch-size",
        type=_positive_int,
        help="images of the data-dependent ActNorm init batch",
    )
    train.add_argument(
        "--optimizer", choices=("adamax", "adam", "sgd"), help="sgd uses --beta1 as momentum"
    )
    train.add_argument("--lr", type=_positive_float, help="learning rate after warm-up")
    train.add_argument("--warmup-epochs", type=float, help="linear warm-up, in epochs")
    train.add_argument(
        "--warmup-steps", type=int, help="linear warm-up, in updates (wins over epochs)"
    )
    train.add_argument("--beta1", type=float)
    train.add_argument("--beta2", type=float)
    train.add_argument(
        "--clip-norm",
        type=_positive_float,
        help="clip the gradient of the global batch to this global norm",
    )
    train.add_argument(
        "--ema-decay",
        type=float,
        help="keep Polyak/EMA weights with this decay (e.g. 0.999) for "
        "evaluation, sampling and the saved models",
    )

    speed = parser.add_argument_group("precision, speed, devices")
    speed.add_argument(
        "--mixed-precision",
        choices=("none", "bf16", "fp16"),
        default="none",
        help="compute dtype of the coupling networks (flow, log-dets and priors stay float32)",
    )
    speed.add_argument("--jit", action="store_true", help="compile the train step with XLA")
    speed.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker", "tpu"),
        default="default",
        help="tf.distribute strategy",
    )
    speed.add_argument("--tpu", default=None, help="TPU name or address for --strategy tpu")

    watch = parser.add_argument_group("observability and guards")
    watch.add_argument(
        "--sample-every",
        type=_positive_int,
        help="write sample grids and reconstructions every N epochs",
    )
    watch.add_argument("--tensorboard", type=_on_off, default=True, metavar="BOOL")
    watch.add_argument(
        "--check-invertibility-every",
        type=_positive_int,
        default=1,
        help="check decode(encode(x)) == x on a fixed batch every N epochs",
    )
    watch.add_argument(
        "--invertibility-tolerance",
        type=_positive_float,
        default=1e-3,
        help="largest allowed reconstruction error on the flow input",
    )
    watch.add_argument("--keep-checkpoints", type=_positive_int, default=2)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def resolve_settings(args: argparse.Namespace) -> dict:
    """The preset's fields, overridden by every flag given on the command line."""
    from glow_tf.presets import CONFIG_FIELDS, TRAINING_FIELDS, get_preset

    settings = get_preset(args.preset)
    for field in CONFIG_FIELDS + TRAINING_FIELDS:
        value = getattr(args, field, None)
        if value is not None:
            settings[field] = value
    if args.warmup_steps is not None:
        settings["warmup_epochs"] = None
    elif args.warmup_epochs is not None:
        settings["warmup_steps"] = None
    return settings


def build_config(settings: dict, source, mixed_precision: str = "none"):
    """The `GlowConfig` of a run: the settings' model fields on the data's shape."""
    from glow_tf import GlowConfig

    num_classes = 0
    if settings["conditional"]:
        if not source.has_labels:
            raise ValueError(
                f"dataset {source.name!r} has no class labels; a conditional model needs them "
                "(use --conditional false)"
            )
        num_classes = source.num_classes
    height, width, _ = source.image_shape
    factor = 2 ** settings["num_levels"]
    if height % factor or width % factor:
        raise ValueError(
            f"images of {height}x{width} cannot be squeezed {settings['num_levels']} times "
            f"(their size must be divisible by 2**num_levels = {factor}); pass another "
            "--image-size or fewer --num-levels"
        )
    return GlowConfig(
        image_shape=source.image_shape,
        num_levels=settings["num_levels"],
        num_steps=settings["num_steps"],
        hidden_channels=settings["hidden_channels"],
        coupling=settings["coupling"],
        permutation=settings["permutation"],
        lu_decomposed=settings["lu_decomposed"],
        num_bits=settings["num_bits"],
        learn_top=settings["learn_top"],
        num_classes=num_classes,
        weight_y=settings["weight_y"] if num_classes else 0.0,
        network_dtype={"none": "float32", "bf16": "bfloat16", "fp16": "float16"}[mixed_precision],
        seed=settings["seed"],
    )


# ------------------------------------------------------------------- resume

# Fields that may differ between a checkpoint and the run continuing it.
_RESUMABLE_DIFFERENCES = ("network_dtype",)


def find_resume_checkpoint(resume: str, output_dir: str, store):
    """The checkpoint to continue from, or None to start fresh."""
    from glow_tf.training.checkpoint import CheckpointStore

    if resume == "auto":
        return store.latest()
    if resume == "never":
        latest = store.latest()
        if latest is not None:
            raise ValueError(
                f"{output_dir!r} already holds a run (checkpoint of epoch {latest.epoch}); "
                "continue it with --resume auto, or choose another --output-dir"
            )
        return None
    path = resume
    if os.path.isfile(path) and os.path.basename(path) in ("model.keras", "state.json"):
        path = os.path.dirname(path)
    if os.path.isfile(os.path.join(path, "state.json")):
        from glow_tf.training.checkpoint import Checkpoint

        with open(os.path.join(path, "state.json")) as file:
            state = json.load(file)
        return Checkpoint(path, int(state["epoch"]), state)
    for directory in (os.path.join(path, "checkpoints"), path):
        latest = CheckpointStore(directory).latest()
        if latest is not None:
            return latest
    raise ValueError(
        f"--resume {resume!r}: no checkpoint there (expected a run directory, its "
        "checkpoints/ directory, or a checkpoints/epoch-* directory)"
    )


def optimizer_layout(settings: dict, mixed_precision: str) -> dict:
    """What decides the optimizer's saved variables (a checkpoint's optimizer
    state only loads into the same layout)."""
    return {
        "optimizer": settings["optimizer"],
        "ema": settings["ema_decay"] is not None,
        "loss_scale": mixed_precision == "fp16",
    }


def check_compatible(checkpoint, config, layout: dict) -> None:
    """Raises ValueError naming the fields when the checkpoint was trained
    with another model configuration or optimizer layout."""
    saved = dict(checkpoint.state.get("config", {}))
    saved.update(checkpoint.state.get("optimizer_layout", {}))
    wanted = {**config.to_dict(), **layout}
    differences = {
        key: (saved.get(key), wanted.get(key))
        for key in sorted(set(saved) | set(wanted))
        if key not in _RESUMABLE_DIFFERENCES and saved.get(key) != wanted.get(key)
    }
    if differences:
        text = ", ".join(
            f"{key}: checkpoint {old!r}, now {new!r}" for key, (old, new) in differences.items()
        )
        raise ValueError(
            f"cannot resume from {checkpoint.directory!r}: it holds a model or optimizer with "
            f"another configuration ({text}). Pass the same settings, or another "
            "--output-dir to start a new run"
        )


# --------------------------------------------------------------------- main


def _steps_per_epoch(args, source, batch_size) -> int:
    if args.steps_per_epoch:
        return args.steps_per_epoch
    count = source.num_examples.get("train")
    if count is None:
        print("the number of training images is unknown; using --steps-per-epoch 1000")
        return 1000
    if count < batch_size:
        raise ValueError(
            f"dataset {source.name!r} has {count} training images, fewer than one batch of "
            f"{batch_size}; pass a smaller --batch-size"
        )
    return count // batch_size


def train(args: argparse.Namespace):
    """Runs the training described by `args`; returns (exit code, model)."""
    import keras

    from glow_tf import GlowModel
    from glow_tf.data.datasets import load_source
    from glow_tf.data.dequantize import uniform_noise
    from glow_tf.data.pipeline import evaluation_dataset, fixed_batch, training_dataset
    from glow_tf.training import callbacks as cb
    from glow_tf.training.checkpoint import CheckpointStore, write_json_atomically
    from glow_tf.training.distribution import is_chief, make_strategy
    from glow_tf.training.ema import EMAEvaluation, ema_weights
    from glow_tf.training.errors import TrainingStopped
    from glow_tf.training.optimizers import initial_loss_scale, make_optimizer

    settings = resolve_settings(args)
    output_dir = args.output_dir or os.path.join("runs", args.preset)
    strategy = make_strategy(args.strategy, args.tpu)
    chief = is_chief(strategy)

    source = load_source(settings["dataset"], settings["image_size"], args.data_dir, args.channels)
    config = build_config(settings, source, args.mixed_precision)
    labels = config.conditional
    batch_size = settings["batch_size"]
    if batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"--batch-size {batch_size} is not divisible by the {strategy.num_replicas_in_sync} "
            "replicas of the strategy"
        )
    steps_per_epoch = _steps_per_epoch(args, source, batch_size)
    warmup_steps = settings["warmup_steps"]
    if warmup_steps is None:
        warmup_steps = int(round((settings["warmup_epochs"] or 0) * steps_per_epoch))
    epochs = settings["epochs"]

    store = CheckpointStore(os.path.join(output_dir, "checkpoints"), keep=args.keep_checkpoints)
    checkpoint = find_resume_checkpoint(args.resume, output_dir, store)
    layout = optimizer_layout(settings, args.mixed_precision)
    if checkpoint is not None:
        check_compatible(checkpoint, config, layout)

    run_description = {
        "config": config.to_dict(),
        "optimizer_layout": layout,
        "settings": settings,
        "arguments": vars(args),
        "dataset": source.name,
        "steps_per_epoch": steps_per_epoch,
        "warmup_steps": warmup_steps,
    }
    if chief:
        os.makedirs(output_dir, exist_ok=True)
        write_json_atomically(os.path.join(output_dir, "run.json"), run_description)

    print(
        f"glow_tf: {source.name} {'x'.join(map(str, config.image_shape))}, "
        f"L={config.num_levels} K={config.num_steps} width={config.hidden_channels} "
        f"{config.coupling} {config.permutation} {config.num_bits} bits"
        f"{f', {config.num_classes} classes' if labels else ''}; "
        f"{strategy.num_replicas_in_sync} replica(s), batch {batch_size}, "
        f"{steps_per_epoch} steps/epoch; output in {output_dir}",
        flush=True,
    )

    with strategy.scope():
        model = GlowModel(config)
        optimizer = make_optimizer(
            settings["optimizer"],
            settings["lr"],
            warmup_steps,
            beta_1=settings["beta1"],
            beta_2=settings["beta2"],
            ema_decay=settings["ema_decay"],
            loss_scale=initial_loss_scale(config.num_dims)
            if args.mixed_precision == "fp16"
            else None,
        )
        model.compile(optimizer, jit_compile=args.jit, gradient_clip_norm=settings["clip_norm"])
        model.optimizer.build(model.trainable_variables)
        if checkpoint is not None:
            model.load_weights(checkpoint.model_path)
            initial_epoch = checkpoint.epoch
            if int(model.optimizer.iterations.numpy()) != checkpoint.step:
                raise ValueError(
                    f"the optimizer state of {checkpoint.directory!r} did not load (step "
                    f"{int(model.optimizer.iterations.numpy())}, expected {checkpoint.step})"
                )
            print(
                f"resuming from {checkpoint.directory}: epoch {initial_epoch}, "
                f"step {int(model.optimizer.iterations.numpy())}",
                flush=True,
            )
        else:
            initial_epoch = 0
            init = fixed_batch(source, "train", settings["init_batch_size"], seed=settings["seed"])
            noise = uniform_noise(init["image"].shape, config.num_bits, seed=[settings["seed"], 1])
            bits = model.initialize(init["image"], init["label"] if labels else None, noise=noise)
            print(
                f"data-dependent init on {len(init['image'])} training images: {bits:.4f} bits/dim",
                flush=True,
            )

    fixed = fixed_batch(source, "test", 8, seed=settings["seed"])
    fixed_images, fixed_labels = fixed["image"], (fixed["label"] if labels else None)
    best = (
        (checkpoint.state.get("best_test_bits_per_dim"), checkpoint.state.get("best_epoch"))
        if checkpoint
        else (None, None)
    )

    if initial_epoch >= epochs:
        print(
            f"the run in {output_dir} has already trained {initial_epoch} epochs "
            f"(--epochs {epochs}); pass a larger --epochs to continue it"
        )
    else:
        hint = lambda: (  # noqa: E731
            f"The last good checkpoint is {saver.last_saved.directory} "
            f"(epoch {saver.last_saved.epoch}). "
            if saver.last_saved is not None
            else (f"The last good checkpoint is {checkpoint.directory}. " if checkpoint else "")
        )
        saver = cb.RunCheckpoint(output_dir, store, run_description, best=best, write=chief)
        callbacks = [
            EMAEvaluation(),
            cb.NonFiniteGuard(hint),
            cb.InvertibilityGuard(
                fixed_images,
                fixed_labels,
                args.invertibility_tolerance,
                args.check_invertibility_every,
                hint,
            ),
            saver,
            cb.ImageWriter(
                output_dir,
                fixed_images,
                fixed_labels,
                settings["sample_every"],
                summary_dir=os.path.join(output_dir, "tensorboard", "images")
                if args.tensorboard
                else None,
                write=chief,
            ),
        ]
        if args.tensorboard and chief:
            callbacks.append(
                keras.callbacks.TensorBoard(
                    os.path.join(output_dir, "tensorboard"), write_graph=False, update_freq="epoch"
                )
            )
        verbose = 1 if args.verbose is None else args.verbose
        # The epoch line comes after Keras' progress bar has finished its line.
        callbacks.append(keras.callbacks.History())
        if verbose:
            callbacks.append(keras.callbacks.ProgbarLogger())
        callbacks.append(
            cb.EpochLog(
                os.path.join(output_dir, "log.csv") if chief else None,
                epochs,
                initial_epoch,
                best[0],
                verbose=chief,
            )
        )
        # A resumed run draws a new order rather than replaying the first epochs'.
        train = training_dataset(source, batch_size, labels, seed=settings["seed"] + initial_epoch)
        test = evaluation_dataset(
            source, settings["test_batch_size"] or batch_size, labels, args.test_examples
        )
        started = time.time()
        try:
            model.fit(
                train,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch,
                validation_data=test,
                callbacks=callbacks,
                verbose=verbose,
            )
        except TrainingStopped as stop:
            print(f"\nstopped: {stop}", file=sys.stderr, flush=True)
            return 1, model
        print(
            f"trained epochs {initial_epoch + 1}..{epochs} in {time.time() - started:.0f} s",
            flush=True,
        )
        best = (saver.best_value, saver.best_epoch)

    # Every worker evaluates (the metrics are reduced across workers); the chief writes.
    with ema_weights(model):
        test = evaluation_dataset(
            source, settings["test_batch_size"] or batch_size, labels, args.test_examples
        )
        final = model.evaluate(test, verbose=0, return_dict=True)["bits_per_dim"]
        if chief:
            cb.write_images(model, output_dir, fixed_images, fixed_labels)
    if chief:
        summary = {
            "test_bits_per_dim": float(final),
            "best_test_bits_per_dim": best[0],
            "best_epoch": best[1],
            "epochs": max(epochs, initial_epoch),
            "step": int(model.optimizer.iterations.numpy()),
        }
        write_json_atomically(os.path.join(output_dir, "summary.json"), summary)
        best_text = (
            f" (best {best[0]:.4f} at epoch {best[1]}, in best.keras)"
            if best[0] is not None
            else ""
        )
        print(
            f"test bits/dim: {final:.4f}{best_text}\nwrote {output_dir}/model.keras, "
            f"samples.png (T = 0.5, 0.7, 1.0), reconstructions.png",
            flush=True,
        )
    return 0, model


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return train(args)[0]
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"train_keras.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted; run the same command again to continue from the last checkpoint",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
