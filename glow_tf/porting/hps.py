"""OpenAI's `hps` (train.py's hyper-parameters) -> GlowConfig.

The official `train.py` keeps every hyper-parameter in one namespace, `hps`,
and writes it as JSON: the first line of its `train.txt` / `test.txt` logs
(`utils.ResultLogger`) is `json.dumps(hps.__dict__)`, and the reference
fixtures ship it as `hps.json`. The fields a GlowConfig needs:

| hps field        | GlowConfig                  | codes                                   |
|------------------|-----------------------------|-----------------------------------------|
| image_size       | image_shape = (s, s, 3)     |                                         |
| n_levels         | num_levels                  |                                         |
| depth            | num_steps                   |                                         |
| width            | hidden_channels             |                                         |
| flow_coupling    | coupling                    | 0 additive, 1 affine                    |
| flow_permutation | permutation                 | 0 reverse, 1 shuffle, 2 conv1x1         |
| use_lu           | lu_decomposed               | a code edit, not a flag; False if absent|
| n_bits_x         | num_bits                    |                                         |
| learntop         | learn_top                   |                                         |
| ycond, n_y       | num_classes = n_y if ycond  |                                         |
| weight_y         | weight_y if ycond           | classifier head iff ycond, weight_y > 0 |
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from glow_tf.config import GlowConfig

__all__ = [
    "COUPLING_CODES",
    "PERMUTATION_CODES",
    "read_hps",
    "config_from_hps",
    "HpsError",
]

COUPLING_CODES = {0: "additive", 1: "affine"}
PERMUTATION_CODES = {0: "reverse", 1: "shuffle", 2: "conv1x1"}
# GlowConfig field -> (hps key, how its value reads: a type or the official codes)
_HPS_FIELDS = {
    "num_levels": ("n_levels", int),
    "num_steps": ("depth", int),
    "hidden_channels": ("width", int),
    "coupling": ("flow_coupling", COUPLING_CODES),
    "permutation": ("flow_permutation", PERMUTATION_CODES),
    "num_bits": ("n_bits_x", int),
    "learn_top": ("learntop", bool),
}
_REQUIRED = ("image_size", *(key for key, _ in _HPS_FIELDS.values()))


class HpsError(ValueError):
    """An hps file or dict that cannot be read or does not describe a model."""


def read_hps(path: str | os.PathLike) -> dict[str, Any]:
    """Reads OpenAI hyper-parameters from `hps.json` or a `train.txt` / `test.txt` log.

    A file that is one JSON object is taken whole; otherwise its first line
    must be the JSON object the official `ResultLogger` writes.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise HpsError(f"hps file {path!r} does not exist")
    with open(path, encoding="utf-8") as file:
        text = file.read()
    try:
        hps = json.loads(text)
    except json.JSONDecodeError:
        first_line = text.split("\n", 1)[0]
        try:
            hps = json.loads(first_line)
        except json.JSONDecodeError as error:
            raise HpsError(
                f"{path!r} is neither a JSON object nor a train.py log whose first line is "
                f"the JSON hps ({error})"
            ) from None
    if not isinstance(hps, dict):
        raise HpsError(f"{path!r} holds a JSON {type(hps).__name__}, expected an object of hps")
    return hps


def _get(hps: Mapping[str, Any], key: str):
    if key not in hps:
        raise HpsError(f"hps has no {key!r} (needed for the GlowConfig)")
    return hps[key]


def _read(hps: Mapping[str, Any], key: str, reader) -> Any:
    value = _get(hps, key)
    if not isinstance(reader, Mapping):
        return reader(value)
    if value not in reader:
        raise HpsError(f"hps {key}={value!r} is not one of the official codes {dict(reader)}")
    return reader[value]


def config_from_hps(hps: Mapping[str, Any], image_channels: int = 3) -> GlowConfig:
    """The GlowConfig of the model the official code builds from `hps`.

    Args:
      hps: the official hyper-parameters (see `read_hps`).
      image_channels: channels of the images (3 in every official run).

    Raises:
      HpsError: a needed field is missing or holds an unknown code; the
        config's own ValueError for inconsistent values (e.g. an image size
        not divisible by 2**n_levels).
    """
    missing = [key for key in _REQUIRED if key not in hps]
    if missing:
        raise HpsError(f"hps lacks {missing} (needed for the GlowConfig)")
    image_size = int(_get(hps, "image_size"))
    if image_size <= 0:
        raise HpsError(
            f"hps image_size={image_size} is unresolved (train.py sets it from the problem at "
            "run time); give the real image size"
        )
    conditional = bool(hps.get("ycond", False))
    return GlowConfig(
        image_shape=(image_size, image_size, image_channels),
        lu_decomposed=bool(hps.get("use_lu", False)) and hps["flow_permutation"] == 2,
        num_classes=int(_get(hps, "n_y")) if conditional else 0,
        weight_y=float(hps.get("weight_y", 0.0)) if conditional else 0.0,
        **{field: _read(hps, key, reader) for field, (key, reader) in _HPS_FIELDS.items()},
    )
