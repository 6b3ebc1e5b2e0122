"""python -m export --model model.keras --out DIR: export a flow model for serving.

    python -m export --model model.keras --out exports [--name NAME] [--version N]
        [--formats saved_model,onnx] [--batch-size none|K] [--max-batch-size 256]
        [--opset 17] [--overwrite]

writes exports/<name>/<version>/ (see export/README.md) and prints what it
wrote. Any glow_tf family exports (GlowModel, RealNVPModel); the default
name is the family's ("glow", "realnvp"). Exit status 0 on success, 2 for
bad arguments or input (a missing or non-glow_tf model file, an existing
version without --overwrite), with one line `python -m export: error: ...`
on stderr.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from glow_tf.cli import command

__all__ = ["main"]


def _batch_size(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'none' or a positive int, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"batch size must be >= 1, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a glow_tf flow model (GlowModel, RealNVPModel; .keras) as a TF "
        "Serving SavedModel and ONNX decoder/encoder, in TF Serving's layout "
        "OUT/<name>/<version>/.",
    )
    parser.add_argument(
        "--model", type=pathlib.Path, required=True, help="a glow_tf model's .keras file"
    )
    parser.add_argument("--out", type=pathlib.Path, required=True, help="export root directory")
    parser.add_argument(
        "--name", help="served model name (default: the model's family, glow or realnvp)"
    )
    parser.add_argument(
        "--version", type=_positive_int, help="version number (default: highest existing + 1)"
    )
    parser.add_argument(
        "--formats", default="saved_model,onnx", help="saved_model, onnx or both (comma separated)"
    )
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=None,
        help="'none' (default) for a dynamic batch dimension, or a fixed batch size K",
    )
    parser.add_argument(
        "--max-batch-size",
        "--max-samples",  # its name before every signature had the cap
        dest="max_batch_size",
        type=_positive_int,
        default=None,
        help="largest batch a request may have: num_samples of sample, the first dimension "
        "of the other signatures' inputs (default: 256)",
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset, >= 17 (default 17)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing version directory"
    )
    return parser


@command("python -m export")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from export.exporter import export_model, parse_formats
    from export.onnx import DEFAULT_OPSET
    from export.served import DEFAULT_MAX_BATCH_SIZE
    from glow_tf.saving import load_flow_model

    formats = parse_formats(args.formats)
    model = load_flow_model(args.model)
    version_dir = export_model(
        model,
        args.out,
        name=args.name,
        version=args.version,
        formats=formats,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        max_batch_size=args.max_batch_size or DEFAULT_MAX_BATCH_SIZE,
        opset=DEFAULT_OPSET if args.opset is None else args.opset,
        source=str(args.model),
    )
    print(f"exported {args.model} -> {version_dir}")
    for path in sorted(version_dir.iterdir()):
        print(f"  {path.name}{'/' if path.is_dir() else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
