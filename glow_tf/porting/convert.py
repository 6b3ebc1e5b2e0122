"""Converts official OpenAI Glow (or TensorFlow RealNVP) weights into a model saved as `.keras`.

    python -m glow_tf.porting.convert (--checkpoint PREFIX_OR_DIR | --graph FILE.pb)
        [--hps hps.json] [--image-size N --n-bits B] [--ema] [--weight-y W]
        (--out model.keras | --dry-run)

Prints where the weights came from, the inferred config (each field with its
origin: weights, hps or flag), notes, and how many variables were mapped.
On any error it prints `python -m glow_tf.porting.convert: error: ...`, exits
with status 2 and writes nothing.
`--dry-run` maps every name without writing a model.

A checkpoint whose variables are named like the official TensorFlow RealNVP
code's (`model/scale_{s}/coupling_{k}/...`) is ported to a RealNVPModel
(`glow_tf.porting.realnvp_names`); `--hps` is then the official
hyper-parameters as JSON (see glow_tf/porting/README.md) and `--image-size`
the image size if the hps do not hold it.
"""

from __future__ import annotations

import argparse
import sys

from glow_tf.cli import command

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m glow_tf.porting.convert",
        description="Port official OpenAI Glow weights (TF1 checkpoint or frozen graph) "
        "to a glow_tf GlowModel.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint",
        metavar="PREFIX_OR_DIR",
        help="TF1 Saver checkpoint prefix (e.g. logs/model_best_loss.ckpt) or its folder",
    )
    source.add_argument(
        "--graph", metavar="FILE.pb", help="frozen GraphDef, e.g. graph_unoptimized.pb"
    )
    parser.add_argument(
        "--hps",
        metavar="hps.json",
        help="the run's hyper-parameters: hps.json, or train.py's train.txt log",
    )
    parser.add_argument("--image-size", type=int, metavar="N", help="image height = width")
    parser.add_argument("--n-bits", type=int, metavar="B", help="n_bits_x of the run")
    parser.add_argument(
        "--ema",
        action="store_true",
        help="take the Polyak averages (<var>/ExponentialMovingAverage)",
    )
    parser.add_argument(
        "--weight-y",
        type=float,
        metavar="W",
        help="classifier loss weight, for models with a classifier head",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", metavar="model.keras", help="where to save the GlowModel")
    target.add_argument(
        "--dry-run",
        action="store_true",
        help="map every variable and print the mapping, write nothing",
    )
    return parser


@command("python -m glow_tf.porting.convert")
def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.out is not None and not args.out.endswith(".keras"):
        raise ValueError(f"--out must end with .keras, got {args.out!r}")
    if args.ema and args.graph:
        raise ValueError("--ema applies to checkpoints; a frozen graph holds one set of weights")
    import numpy as np

    from glow_tf.porting.checkpoint import read_checkpoint
    from glow_tf.porting.frozen_graph import read_frozen_graph
    from glow_tf.porting.hps import read_hps
    from glow_tf.porting.infer_config import infer_config
    from glow_tf.porting.port import plan_port, port_openai_weights
    from glow_tf.saving import save_keras_atomically

    if args.checkpoint and _is_realnvp_checkpoint(args.checkpoint):
        return _convert_realnvp(args)
    hps = read_hps(args.hps) if args.hps else None
    if args.checkpoint:
        weights = read_checkpoint(args.checkpoint, ema=args.ema)
    else:
        weights = read_frozen_graph(args.graph)
    options = dict(
        image_size=args.image_size,
        num_bits=args.n_bits,
        weight_y=args.weight_y,
        hps=hps,
    )
    for note in weights.notes:
        print(note)
    if args.dry_run:
        inferred = infer_config(weights.shapes, image_shape_hint=weights.image_shape, **options)
        plan = plan_port(weights.shapes, inferred.config)
        print("inferred config:")
        print(inferred.describe())
        for note in inferred.notes:
            print(f"note: {note}")
        for name, path in plan:
            print(f"  {name:<48} -> {path}")
        print(f"dry run: all {len(plan)} variables map onto the model; nothing written")
        return 0
    result = port_openai_weights(weights, **options)
    print("inferred config:")
    print(result.inferred.describe())
    for note in result.inferred.notes:
        print(f"note: {note}")
    parameters = sum(int(np.prod(w.shape)) for w in result.model.weights if w.trainable)
    print(
        f"mapped {result.num_variables} OpenAI variables onto {result.num_weights} weights "
        f"of a GlowModel ({parameters:,} trainable parameters)"
    )
    save_keras_atomically(result.model, args.out)
    print(f"wrote {args.out}")
    return 0


def _is_realnvp_checkpoint(path) -> bool:
    import tensorflow as tf

    from glow_tf.porting.checkpoint import resolve_checkpoint_prefix
    from glow_tf.porting.realnvp_names import is_realnvp_names

    try:
        names = [name for name, _ in tf.train.list_variables(resolve_checkpoint_prefix(path))]
    except Exception:  # the Glow reader reports unreadable checkpoints
        return False
    return is_realnvp_names(names)


def _convert_realnvp(args) -> int:
    import numpy as np

    from glow_tf.porting.realnvp_names import (
        port_realnvp,
        read_realnvp_checkpoint,
        read_realnvp_hps,
        realnvp_config,
        realnvp_weight_slots,
    )
    from glow_tf.saving import save_keras_atomically

    if args.ema or args.n_bits or args.weight_y is not None:
        raise ValueError("--ema, --n-bits and --weight-y do not apply to a RealNVP checkpoint")
    variables = read_realnvp_checkpoint(args.checkpoint)
    hps = read_realnvp_hps(args.hps) if args.hps else None
    print(f"official TensorFlow RealNVP checkpoint {args.checkpoint}: {len(variables)} variables")
    if args.dry_run:
        from glow_tf.compat import never_allocated
        from glow_tf.models.realnvp import RealNVPModel

        config = realnvp_config(variables, hps, args.image_size)
        print(f"config: {config}")
        with never_allocated(lambda: RealNVPModel(config)) as model:
            slots = realnvp_weight_slots(model)
            for name, variable in slots.items():
                print(f"  {name:<60} -> {variable.path}")
        print(f"dry run: {len(slots)} variables map onto the model; nothing written")
        return 0
    result = port_realnvp(variables, hps, args.image_size)
    print(f"config: {result.config}")
    parameters = sum(int(np.prod(w.shape)) for w in result.model.weights if w.trainable)
    print(
        f"mapped {result.num_weights} official variables onto a RealNVPModel "
        f"({parameters:,} trainable parameters); {result.num_unused} unused "
        "(batch-norm step counters, global_step)"
    )
    save_keras_atomically(result.model, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
