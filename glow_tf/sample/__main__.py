"""The paper's qualitative experiments from the command line, on a saved model.

    python -m glow_tf.sample grid        --model runs/digits/model.keras --out grid.png
        [--temperatures 0 0.5 0.7 1.0] [--per-row 8] [--seed 0] [--label 3]
    python -m glow_tf.sample reconstruct --model M --dataset digits --out recon.png [--count 8]
    python -m glow_tf.sample interpolate --model M --dataset digits --pairs 0 1 2 3 --out interp.png
        [--steps 8]                      (test images 0->1 and 2->3, one strip each)
    python -m glow_tf.sample direction   --model M --dataset celeb_a --attribute Smiling \
        --out smile.npz
    python -m glow_tf.sample direction   --model M --dataset digits --label 0 --out zero.npz
        [--split train] [--examples 2000]
    python -m glow_tf.sample manipulate  --model M --dataset celeb_a --direction smile.npz
        --out smile.png [--strengths -1 -0.5 0 0.5 1] [--count 4]

Images come from the test split of `--dataset` (any train_keras.py dataset
spec, resized to the model's image size); a class-conditional model uses the
dataset's labels, or `--label` for samples. Every command writes one PNG
(an .npz for `direction`).
"""

from __future__ import annotations

import argparse
import sys

from glow_tf.cli import command

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m glow_tf.sample", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, help_text, dataset=True):
        sub = commands.add_parser(
            name, help=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        sub.add_argument("--model", required=True, help="a .keras file written by train_keras.py")
        sub.add_argument("--out", required=True, help="output file")
        sub.add_argument("--scale", type=int, default=None, help="pixel repeat factor of the PNG")
        if dataset:
            sub.add_argument("--dataset", required=True, help="dataset spec, as for train_keras.py")
            sub.add_argument("--data-dir", default=None)
            sub.add_argument("--seed", type=int, default=0, help="which test images (shuffle seed)")
        return sub

    grid = command("grid", "sample grid, one row per temperature", dataset=False)
    grid.add_argument("--temperatures", type=float, nargs="+", default=[0.0, 0.5, 0.7, 1.0])
    grid.add_argument("--per-row", type=int, default=8)
    grid.add_argument("--seed", type=int, default=0)
    grid.add_argument("--label", type=int, default=None, help="class of every sample (conditional)")

    reconstruct = command("reconstruct", "test images next to decode(encode(image))")
    reconstruct.add_argument("--count", type=int, default=8)

    interpolate = command("interpolate", "decode((1-a) z1 + a z2) between encoded test images")
    interpolate.add_argument(
        "--pairs", type=int, nargs="+", default=[0, 1], help="test image indices, two per strip"
    )
    interpolate.add_argument("--steps", type=int, default=8)

    direction = command("direction", "attribute direction mean(z|attr) - mean(z|not attr)")
    group = direction.add_mutually_exclusive_group(required=True)
    group.add_argument("--attribute", help="attribute name of the dataset (e.g. CelebA's Smiling)")
    group.add_argument("--label", type=int, help="class k: images of class k against the others")
    direction.add_argument("--split", choices=("train", "test"), default="train")
    direction.add_argument("--examples", type=int, default=2000, help="labelled images to encode")

    manipulate = command("manipulate", "decode(encode(image) + s * direction) strips")
    manipulate.add_argument("--direction", required=True, help=".npz written by `direction`")
    manipulate.add_argument(
        "--strengths", type=float, nargs="+", default=[-1.0, -0.5, 0.0, 0.5, 1.0]
    )
    manipulate.add_argument("--count", type=int, default=4)
    return parser


def _source(args, model):
    from glow_tf.data.datasets import load_source

    height, _, channels = model.config.image_shape
    size = None if args.dataset == "digits" else height
    source = load_source(args.dataset, image_size=size, data_dir=args.data_dir, channels=channels)
    if tuple(source.image_shape) != tuple(model.config.image_shape):
        raise ValueError(
            f"dataset {args.dataset!r} gives images of shape {source.image_shape}, but the model "
            f"takes {model.config.image_shape}"
        )
    return source


def _labels(model, batch):
    if not model.config.conditional:
        return None
    if "label" not in batch:
        raise ValueError("this class-conditional model needs a dataset with labels")
    return batch["label"]


def _test_images(args, model, count):
    from glow_tf.data.pipeline import fixed_batch

    batch = fixed_batch(_source(args, model), "test", count, seed=args.seed)
    if len(batch["image"]) < count:
        raise ValueError(f"the test split has only {len(batch['image'])} images, {count} needed")
    return batch["image"], _labels(model, batch)


def run(args) -> str:
    import numpy as np

    from glow_tf import sample as experiments
    from glow_tf.saving import load_glow_model

    model = load_glow_model(args.model)
    config = model.config
    scale = args.scale or max(1, 64 // config.image_shape[0])

    if args.command == "grid":
        labels = None
        if config.conditional:
            labels = (
                np.full(args.per_row, args.label)
                if args.label is not None
                else np.arange(args.per_row) % config.num_classes
            )
        elif args.label is not None:
            raise ValueError("--label needs a class-conditional model")
        images = experiments.temperature_grid(
            model, args.temperatures, args.per_row, args.seed, y=labels
        )
        return experiments.write_png(
            args.out, experiments.image_grid(images, args.per_row, scale=scale)
        )

    if args.command == "reconstruct":
        images, labels = _test_images(args, model, args.count)
        pairs = experiments.reconstructions(model, images, labels)
        return experiments.write_png(
            args.out, experiments.image_grid(pairs, 2 * min(args.count, 4), scale=scale)
        )

    if args.command == "interpolate":
        if len(args.pairs) % 2:
            raise ValueError(f"--pairs takes image indices two by two, got {len(args.pairs)}")
        images, labels = _test_images(args, model, max(args.pairs) + 1)
        strips = []
        for first, second in zip(args.pairs[::2], args.pairs[1::2], strict=True):
            label = None
            if labels is not None:
                label = labels[first]
            strips.append(
                experiments.interpolation(model, images[first], images[second], args.steps, y=label)
            )
        grid = experiments.image_grid(np.concatenate(strips), args.steps, scale=scale)
        return experiments.write_png(args.out, grid)

    if args.command == "direction":
        from glow_tf.data.pipeline import fixed_batch

        source = _source(args, model)
        batch = fixed_batch(source, args.split, args.examples, seed=args.seed)
        if args.attribute is not None:
            if args.attribute not in source.attribute_names:
                raise ValueError(
                    f"dataset {source.name!r} has no attribute {args.attribute!r}; it has "
                    f"{list(source.attribute_names) or 'none (use --label for classes)'}"
                )
            has = batch["attributes"][:, source.attribute_names.index(args.attribute)] > 0
            name = args.attribute
        else:
            if not source.has_labels:
                raise ValueError(f"dataset {source.name!r} has no class labels for --label")
            has = batch["label"] == args.label
            name = f"label={args.label}"
        direction = experiments.attribute_direction(
            model, batch["image"], has, _labels(model, batch)
        )
        return experiments.save_direction(
            args.out,
            direction,
            attribute=name,
            dataset=source.name,
            config=config.to_dict(),
            with_attribute=int(has.sum()),
            without_attribute=int((~has).sum()),
        )

    if args.command == "manipulate":
        direction, _ = experiments.load_direction(args.direction, config.num_dims)
        images, labels = _test_images(args, model, args.count)
        strips = experiments.manipulation(model, images, direction, args.strengths, labels)
        grid = experiments.image_grid(strips, len(args.strengths), scale=scale)
        return experiments.write_png(args.out, grid)
    raise ValueError(f"unknown command {args.command!r}")


@command("python -m glow_tf.sample")
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    print(f"wrote {run(args)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
