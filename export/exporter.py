"""export_model: a flow model -> OUT/<name>/<version>/ with a SavedModel and ONNX graphs.

Any family of `glow_tf.models.families` (GlowModel, RealNVPModel) exports the
same way; the family and its config are recorded in glow_export.json.

Layout:

    OUT/<name>/<version>/
      saved_model.pb, variables/     TF Serving's SavedModel (format "saved_model")
      decoder.onnx, encoder.onnx     ONNX graphs (format "onnx")
      glow_export.json               what was exported: family, config, signatures, versions
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import pathlib
from collections.abc import Iterable

import keras
import onnx
import tensorflow as tf

from export.layout import METADATA_FILE, staged_version_dir
from export.onnx import DEFAULT_OPSET, check_onnx_export, write_onnx
from export.saved_model import DEFAULT_SIGNATURE, write_saved_model
from export.served import (
    DEFAULT_MAX_BATCH_SIZE,
    MAX_ABS_LATENT,
    ONNX_GRAPHS,
    SIGNATURES,
    ServedFlow,
)
from glow_tf import FlowModel
from glow_tf.models.families import family_name

__all__ = ["export_model", "parse_formats", "FORMATS"]

FORMATS = ("saved_model", "onnx")


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """Formats as "saved_model,onnx" or a list of names -> a validated tuple, canonical order."""
    if isinstance(formats, str):
        formats = [part.strip() for part in formats.split(",") if part.strip()]
    formats = set(formats)
    unknown = sorted(formats - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export formats {unknown}; expected some of {list(FORMATS)}")
    if not formats:
        raise ValueError(f"no export format given; expected some of {list(FORMATS)}")
    return tuple(f for f in FORMATS if f in formats)


def export_model(
    model: FlowModel,
    out: str | pathlib.Path,
    name: str | None = None,
    version: int | None = None,
    formats: str | Iterable[str] = FORMATS,
    batch_size: int | None = None,
    overwrite: bool = False,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    opset: int = DEFAULT_OPSET,
    source: str | None = None,
) -> pathlib.Path:
    """Exports `model` for serving; returns the version directory written.

    Args:
      model: an initialised `FlowModel` (GlowModel, RealNVPModel, ...).
      out: the export root; the model goes to out/<name>/<version>/.
      name: the served model's name (`/v1/models/<name>:predict`); default:
        the model's family ("glow", "realnvp").
      version: a positive int, or None for 1 + the highest existing version.
      formats: "saved_model", "onnx", or both (a list or "saved_model,onnx").
      batch_size: None for a dynamic batch dimension, or a fixed size K.
      overwrite: replace an existing version directory (never done otherwise).
      max_batch_size: the largest batch a request may have (`num_samples` of `sample`,
        the first dimension of the other signatures' inputs); larger ones are refused.
      opset: the ONNX opset (>= 17).
      source: where the model came from, recorded in glow_export.json.

    Raises:
      FileExistsError: the version exists and `overwrite` is False.
      ValueError / TypeError: bad arguments or an uninitialised model.
    """
    formats = parse_formats(formats)
    if "onnx" in formats:
        check_onnx_export(model.config, opset)
    served = ServedFlow(model, max_batch_size=max_batch_size, batch_size=batch_size)
    if name is None:
        name = family_name(model)
    with staged_version_dir(pathlib.Path(out), name, version, overwrite) as (staging, version):
        files = []
        if "saved_model" in formats:
            write_saved_model(served, staging)
            files += ["saved_model.pb", "variables/"]
        if "onnx" in formats:
            files += [path.name for path in write_onnx(served, staging, opset).values()]
        metadata = _metadata(served, name, version, formats, files, opset, source)
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=1) + "\n")
    return pathlib.Path(out) / name / str(version)


def _metadata(served, name, version, formats, files, opset, source) -> dict:
    description = served.describe(
        (SIGNATURES if "saved_model" in formats else ())
        + (ONNX_GRAPHS if "onnx" in formats else ())
    )
    return {
        "format": "glow_tf export 2",
        "name": name,
        "version": version,
        "formats": list(formats),
        "files": files,
        "source": source,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "family": family_name(served.model),
        "model_config": served.config.to_dict(),
        **({"glow_config": served.config.to_dict()} if family_name(served.model) == "glow" else {}),
        "batch_size": served.batch_size,
        "max_batch_size": served.max_batch_size,
        "max_abs_latent": MAX_ABS_LATENT,
        "dequantization": "encode: bin centre, u = 0.5 / n_bins; encode_with_noise: given u",
        "saved_model": {
            "default_signature": DEFAULT_SIGNATURE,
            "signatures": {k: description[k] for k in SIGNATURES},
        }
        if "saved_model" in formats
        else None,
        "onnx": {
            "opset": opset,
            "tf2onnx": importlib.metadata.version("tf2onnx"),
            "graphs": {k: description[k] for k in ONNX_GRAPHS},
        }
        if "onnx" in formats
        else None,
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "onnx": onnx.__version__,
        },
    }
