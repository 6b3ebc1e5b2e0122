"""The command line of `train_keras.py`: flags named after config fields.

Every model flag sets the `GlowConfig` field of the same name, every training
flag the `TrainingConfig` field, every run flag the `RunOptions` field
(`--num-steps 8` -> `num_steps=8`), and the flag's choices are the config's
own constants. A flag that is not given keeps the preset's value. The few
spellings that are not field names:

    --seed S               both configs' seed (initial weights; data order)
    --warmup-epochs E      warmup=E, warmup_unit="epochs"
    --warmup-steps N       warmup=N, warmup_unit="steps" (wins over epochs)
    --mixed-precision P    alias of --network-dtype: none, bf16, fp16
                           = float32, bfloat16, float16
    --conditional BOOL     a class-conditional model on the dataset's labels
                           (its classes come from the data)
    --checkpoint-every-steps 0, --checkpoint-every-minutes 0
                           None (no checkpoints within an epoch by steps / time)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from glow_tf.config import COUPLINGS, NETWORK_DTYPES, PERMUTATIONS, GlowConfig, RealNVPConfig
from glow_tf.data.dequantizers import DEQUANTIZATIONS
from glow_tf.presets import PRESETS, Preset
from glow_tf.training.config import IMAGE_CHANNELS, TrainingConfig
from glow_tf.training.distribution import STRATEGIES
from glow_tf.training.optimizers import OPTIMIZERS
from glow_tf.training.run import RunOptions

__all__ = ["MIXED_PRECISION_ALIASES", "build_parser", "configs_from_args", "RunArguments"]

MIXED_PRECISION_ALIASES = {"none": "float32", "bf16": "bfloat16", "fp16": "float16"}


def _on_off(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text}")


class _HelpFormatter(argparse.HelpFormatter):
    """Shows the defaults the parser sets; flags without one keep the preset's value."""

    def _get_help_string(self, action):
        if action.default in (None, argparse.SUPPRESS) or not action.option_strings:
            return action.help
        return f"{action.help or ''} (default: %(default)s)".strip()


def build_parser(prog: str = "train_keras.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train Glow (Kingma & Dhariwal, 2018) with Keras fit. Every preset field "
        "can be overridden by its flag; flags not given keep the preset's value.",
        formatter_class=_HelpFormatter,
    )
    run = parser.add_argument_group("run")
    run.add_argument("--preset", choices=sorted(PRESETS), help="training recipe (default: digits, or realnvp_digits with --model realnvp)")
    run.add_argument(
        "--model",
        choices=("glow", "realnvp"),
        help="model family; default: the preset's (a preset of another family is refused)",
    )
    run.add_argument("--output-dir", help="run directory (default runs/<preset>)")
    run.add_argument(
        "--resume",
        help="'auto' (default): continue the run in --output-dir if it has a checkpoint; "
        "'never': start fresh (refuses a directory that holds a run); or the path of a run "
        "directory or checkpoint to continue from",
    )
    run.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), help="Keras fit verbosity (default: progress bar)"
    )

    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        help="digits, mnist, fashion_mnist, cifar10, celeb_a, "
        "imagenet_resized/32x32, imagenet_resized/64x64, lsun/<category>, "
        "folder:PATH or tfrecord:GLOB",
    )
    data.add_argument("--data-dir", help="tensorflow-datasets data directory")
    data.add_argument("--image-size", type=int, help="square image size to crop/resize to")
    data.add_argument("--channels", type=int, choices=IMAGE_CHANNELS, help="of folder images")
    data.add_argument("--test-examples", type=int, help="evaluate on the first N test images only")
    data.add_argument(
        "--steps-per-epoch", type=int, help="updates per epoch (default: train images // batch)"
    )

    model = parser.add_argument_group("model (GlowConfig fields)")
    model.add_argument("--num-levels", type=int, help="L, levels of the multi-scale flow")
    model.add_argument("--num-steps", type=int, help="K, flow steps per level")
    model.add_argument("--hidden-channels", type=int, help="width of the coupling networks")
    model.add_argument("--coupling", choices=COUPLINGS)
    model.add_argument("--permutation", choices=PERMUTATIONS)
    model.add_argument(
        "--lu-decomposed", type=_on_off, metavar="BOOL", help="LU-decomposed 1x1 convs"
    )
    model.add_argument("--num-bits", type=int, metavar="1..8", help="bits per pixel value")
    model.add_argument("--learn-top", type=_on_off, metavar="BOOL", help="learned top prior")
    model.add_argument(
        "--conditional",
        type=_on_off,
        metavar="BOOL",
        help="class-conditional model on the dataset's labels",
    )
    model.add_argument("--weight-y", type=float, help="weight of the classifier loss (conditional)")
    model.add_argument("--seed", type=int, help="seed of the initial weights and the data order")
    model.add_argument(
        "--loop-steps",
        type=_on_off,
        metavar="BOOL",
        help="run each level's steps as one loop (fast first step; default on)",
    )
    model.add_argument(
        "--recompute-gradients",
        type=_on_off,
        metavar="BOOL",
        help="memory-saving backward pass: rebuild each step's input by its inverse",
    )
    model.add_argument("--num-blocks", type=int, help="RealNVP: residual blocks per network")
    model.add_argument("--batch-norm", type=_on_off, metavar="BOOL", help="RealNVP: batch norms")
    model.add_argument("--skip", type=_on_off, metavar="BOOL", help="RealNVP: skip connections")
    model.add_argument("--data-constraint", type=float, help="RealNVP: alpha of the logit")
    model.add_argument("--l2-coeff", type=float, help="RealNVP: official L2 coefficient")

    train = parser.add_argument_group("training (TrainingConfig fields)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int, help="global batch size (all replicas)")
    train.add_argument("--test-batch-size", type=int)
    train.add_argument(
        "--init-batch-size", type=int, help="images of the data-dependent ActNorm init batch"
    )
    train.add_argument(
        "--optimizer", choices=sorted(OPTIMIZERS), help="sgd uses --beta1 as momentum"
    )
    train.add_argument("--lr", type=float, help="learning rate after warm-up")
    train.add_argument("--warmup-epochs", type=float, help="linear warm-up, in epochs")
    train.add_argument(
        "--warmup-steps", type=int, help="linear warm-up, in updates (wins over epochs)"
    )
    train.add_argument("--beta1", type=float)
    train.add_argument("--beta2", type=float)
    train.add_argument(
        "--clip-norm", type=float, help="clip the gradient of the global batch to this global norm"
    )
    train.add_argument(
        "--dequantization",
        choices=DEQUANTIZATIONS,
        help="uniform noise (OpenAI's), or a learned variational q(u | x) (Flow++), "
        "trained jointly and saved with the model; default uniform",
    )
    train.add_argument(
        "--ema-decay",
        type=float,
        help="keep Polyak/EMA weights with this decay (e.g. 0.999) for "
        "evaluation, sampling and the saved models",
    )

    speed = parser.add_argument_group("precision, speed, devices")
    speed.add_argument(
        "--network-dtype",
        choices=NETWORK_DTYPES,
        help="compute dtype of the coupling networks (flow, log-dets and priors stay "
        "float32); default float32",
    )
    speed.add_argument(
        "--mixed-precision",
        choices=tuple(MIXED_PRECISION_ALIASES),
        help="alias of --network-dtype: none = float32, bf16 = bfloat16, fp16 = float16",
    )
    speed.add_argument(
        "--jit", action="store_true", default=None, help="compile the train step with XLA"
    )
    speed.add_argument(
        "--steps-per-execution",
        type=int,
        metavar="N",
        help="training steps per call of the compiled train function (fewer host round "
        "trips); must divide the steps per epoch (default 1)",
    )
    speed.add_argument(
        "--strategy", choices=STRATEGIES, help="tf.distribute strategy; default: default"
    )
    speed.add_argument("--tpu", help="TPU name or address for --strategy tpu")

    watch = parser.add_argument_group("observability and guards")
    watch.add_argument(
        "--sample-every", type=int, help="write sample grids and reconstructions every N epochs"
    )
    watch.add_argument(
        "--tensorboard", type=_on_off, metavar="BOOL", help="write TensorBoard logs (default true)"
    )
    watch.add_argument(
        "--check-invertibility-every",
        type=int,
        help="check decode(encode(x)) == x on a fixed batch every N epochs (default 1)",
    )
    watch.add_argument(
        "--invertibility-tolerance",
        type=float,
        help="largest allowed reconstruction error on the flow input (default 1e-3)",
    )
    watch.add_argument(
        "--keep-checkpoints", type=int, help="newest resumable checkpoints kept (default 2)"
    )
    watch.add_argument(
        "--checkpoint-every-steps",
        type=int,
        metavar="N",
        help="also checkpoint within an epoch every N updates; 0: not by steps (default 0)",
    )
    watch.add_argument(
        "--checkpoint-every-minutes",
        type=float,
        metavar="M",
        help="also checkpoint within an epoch every M minutes; 0: not by time (default 10)",
    )
    return parser


@dataclasses.dataclass(frozen=True)
class RunArguments:
    """What a command line asks for: `glow_tf.training.run.train(**vars)`.

    Attributes:
      model_config: the preset's model.
      training: the preset's training settings with the flags' values.
      options: output directory, resume, devices, verbosity.
      model_changes: `GlowConfig` fields given on the command line, and
        "conditional"; applied once the data is known.
    """

    model_config: GlowConfig
    training: TrainingConfig
    options: RunOptions
    model_changes: dict[str, Any]


def _given(args: argparse.Namespace, config_class) -> dict[str, Any]:
    return {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(config_class)
        if getattr(args, field.name, None) is not None
    }


def configs_from_args(args: argparse.Namespace) -> RunArguments:
    """The preset's configs with every flag given applied by `replace`.

    Raises:
      ValueError: a flag value the configs refuse, or --mixed-precision
        contradicting --network-dtype.
    """
    family = getattr(args, "model", None)
    preset_name = args.preset or ("realnvp_digits" if family == "realnvp" else "digits")
    preset: Preset = PRESETS[preset_name]
    config_class = type(preset.model)
    if family is not None and config_class is not {"glow": GlowConfig, "realnvp": RealNVPConfig}[family]:
        raise ValueError(
            f"--model {family} does not match preset {preset_name!r} (a {config_class.__name__})"
        )
    model_changes = _given(args, config_class)
    other = GlowConfig if config_class is RealNVPConfig else RealNVPConfig
    foreign = sorted(set(_given(args, other)) - set(model_changes) - {"seed"})
    if foreign:
        flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise ValueError(f"{flags} do(es) not apply to a {config_class.__name__} model")
    if args.mixed_precision is not None and config_class is not GlowConfig:
        raise ValueError(
            f"--mixed-precision does not apply to a {config_class.__name__} model (its networks "
            "compute in float32)"
        )
    if args.mixed_precision is not None:
        dtype = MIXED_PRECISION_ALIASES[args.mixed_precision]
        if model_changes.get("network_dtype", dtype) != dtype:
            raise ValueError(
                f"--mixed-precision {args.mixed_precision} means --network-dtype {dtype}, "
                f"not {model_changes['network_dtype']}; pass one of them"
            )
        model_changes["network_dtype"] = dtype
    if args.conditional is not None:
        model_changes["conditional"] = args.conditional

    training_changes = _given(args, TrainingConfig)
    for name in ("checkpoint_every_steps", "checkpoint_every_minutes"):
        if training_changes.get(name) == 0:
            training_changes[name] = None
    if args.warmup_steps is not None:
        training_changes.update(warmup=args.warmup_steps, warmup_unit="steps")
    elif args.warmup_epochs is not None:
        training_changes.update(warmup=args.warmup_epochs, warmup_unit="epochs")

    options = RunOptions(
        **{
            **_given(args, RunOptions),
            "output_dir": args.output_dir or os.path.join("runs", preset_name),
        }
    )
    return RunArguments(
        preset.model, preset.training.replace(**training_changes), options, model_changes
    )
