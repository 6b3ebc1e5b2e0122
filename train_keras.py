"""Train a Glow model with Keras `fit`, from the built-in digits to CelebA-HQ.

    python train_keras.py                                  # digits, ~3 min on 2 CPU cores
    python train_keras.py --preset digits_conditional      # class-conditional digits
    python train_keras.py --preset cifar10 --batch-size 64 --output-dir runs/cifar10
    python train_keras.py --dataset folder:/data/faces --image-size 64 --num-levels 4
    python train_keras.py --network-dtype bfloat16         # = --mixed-precision bf16

A preset (`glow_tf.presets`) is a `GlowConfig` and a `TrainingConfig`; every
flag replaces the config field of its name (see `glow_tf.training.arguments`),
and `glow_tf.training.run.train` does the rest. Writes into --output-dir
(default runs/<preset>):

    model.keras            the model after the last epoch (EMA weights with --ema-decay)
    best.keras             the model with the best test bits/dim
    samples.png            samples, one row per temperature (0.5, 0.7, 1.0)
    reconstructions.png    test images next to decode(encode(image))
    log.csv                epoch, step, train and test bits/dim, learning rate, time
    images/                sample grids and reconstructions every --sample-every epochs
    tensorboard/           scalars and sample grids (tensorboard --logdir DIR/tensorboard)
    checkpoints/step-*/    resumable checkpoints (weights, optimizer state, data position),
                           every epoch and every --checkpoint-every-minutes (10)
    run.json               the configurations of the run
    summary.json           final and best test bits/dim

Running the same command again continues a run that was killed, from its last
checkpoint (same step count, optimizer state, data position and noise: the
weights an uninterrupted run would reach), falling back past a damaged one;
see --resume. SIGTERM / Ctrl-C checkpoint the current step first. Exit codes:
0 done, 1 stopped by a guard (NaN loss, failed invertibility check), 2 bad
input, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from glow_tf.cli import command  # noqa: E402  (before TensorFlow, to quieten it)

__all__ = ["main", "train", "parse_args"]


def parse_args(argv=None) -> argparse.Namespace:
    from glow_tf.training.arguments import build_parser

    return build_parser().parse_args(argv)


def train(args: argparse.Namespace):
    """Runs the training the parsed `args` describe; returns (exit code, model)."""
    from glow_tf.training.arguments import configs_from_args
    from glow_tf.training.run import train as run_training

    run = configs_from_args(args)
    return run_training(run.model_config, run.training, run.options, **run.model_changes)


@command(
    "train_keras.py",
    interrupted="run the same command again to continue from the last checkpoint",
)
def main(argv=None) -> int:
    return train(parse_args(argv)).code


if __name__ == "__main__":
    sys.exit(main())
