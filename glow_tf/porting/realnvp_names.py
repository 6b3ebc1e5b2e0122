"""Official TensorFlow RealNVP variable names <-> RealNVPModel weights.

The official code (github.com/tensorflow/models, `research/real_nvp/`) names
its variables by scope. For scale s and coupling k (`coupling_0` .. `_3`
checkerboard, `_4` .. `_6` channel), under `model/scale_{s}/coupling_{k}/`:

| official variable (suffix)          | RealNVPModel weight under levels[s] step coupling_k | |
|-------------------------------------|-----------------------------------------------------|-|
| rescaling_scale / scale     []      | coupling/log_scale_factor   (a of log_s = a tanh r) | |
| scale_shift                 []      | coupling/log_scale_shift    (only without batch norm)| |
| bn_in/{beta,mean,var}       [C']    | coupling/network/bn_in/{beta,moving_mean,moving_variance} | |
| bn_out/{mean,var}           [C']    | batch_norm/{moving_mean,moving_variance}            | |
| resnet/h_in/{weights,biases}        | coupling/network/h_in/{kernel,bias}                 | |
| resnet/skip_in/{weights,biases,magnitude} | coupling/network/skip_in/{kernel,bias,magnitude} | |
| resnet/block_b/bn_in/*              | coupling/network/block_b_bn_in/*                    | |
| resnet/block_b/h_0/weights(,biases) | coupling/network/block_b_h_0/kernel(,bias)          | |
| resnet/block_b/bn_0/*               | coupling/network/block_b_bn_0/*                     | |
| resnet/block_b/out/{weights,biases,magnitude} | coupling/network/block_b_out/*            | |
| resnet/skip_b/*                     | coupling/network/skip_b/*                           | |
| resnet/bn_pre_out/*                 | coupling/network/bn_pre_out/*                       | |
| resnet/out/{weights,biases,magnitude} | coupling/network/out/*                            | |

Every value is loaded as stored (same layouts). Not loaded, and accounted
for: every batch norm's `step` (it only matters for the official `bn_lag`
option, 0 by default, which the port refuses otherwise) and
`model/global_step`. A checkpoint's Adam slots (`.../Adam`, `.../Adam_1`,
`model/beta1_power`, `model/beta2_power`) are dropped by the reader.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from glow_tf.config import RealNVPConfig
from glow_tf.porting.openai_names import PortingError

__all__ = [
    "REALNVP_NAME",
    "is_realnvp_names",
    "realnvp_weight_slots",
    "load_realnvp_weights",
    "realnvp_config",
    "read_realnvp_checkpoint",
    "read_realnvp_hps",
    "port_realnvp",
    "RealNVPPort",
]

REALNVP_NAME = re.compile(r"model/scale_(\d+)/coupling_(\d+)/(.+)")
UNUSED_LEAVES = ("/step",)
UNUSED_NAMES = ("model/global_step",)
_OPTIMIZER = re.compile(r".*/Adam(_1)?|model/beta[12]_power")
_WEIGHT = {
    "kernel": "weights",
    "bias": "biases",
    "magnitude": "magnitude",
    "beta": "beta",
    "moving_mean": "mean",
    "moving_variance": "var",
}
_BLOCK_LAYER = re.compile(r"block_(\d+)_(bn_in|h_0|bn_0|out)")


def is_realnvp_names(names) -> bool:
    """Whether variable names look like an official RealNVP model's."""
    return any(REALNVP_NAME.fullmatch(name) for name in names)


def _official_suffix(relative: str, checkerboard: bool) -> str:
    """A coupling layer's weight path (relative to it) -> the official suffix."""
    parts = relative.split("/")
    if parts == ["coupling", "log_scale_factor"]:
        return "rescaling_scale" if checkerboard else "scale"
    if parts == ["coupling", "log_scale_shift"]:
        return "scale_shift"
    if parts[0] == "batch_norm":
        return "bn_out/" + _WEIGHT[parts[1]]
    if parts[:2] == ["coupling", "network"] and len(parts) == 4:
        layer, weight = parts[2], _WEIGHT[parts[3]]
        if layer == "bn_in":
            return f"bn_in/{weight}"
        block = _BLOCK_LAYER.fullmatch(layer)
        if block:
            layer = f"block_{block.group(1)}/{block.group(2)}"
        return f"resnet/{layer}/{weight}"
    raise PortingError(f"no official RealNVP name for the weight {relative!r}")


def realnvp_weight_slots(model) -> dict[str, Any]:
    """Official variable name -> the RealNVPModel's Keras variable it fills."""
    from glow_tf.flow.realnvp_coupling import RealNVPCouplingLayer

    slots = {}
    for scale, level in enumerate(model.levels):
        for step in level.steps:
            if not isinstance(step, RealNVPCouplingLayer):
                continue
            prefix = f"model/scale_{scale}/{step.name}/"
            for variable in step.weights:
                relative = variable.path.split(f"/{level.name}/{step.name}/", 1)[1]
                slots[prefix + _official_suffix(relative, step.mask.checkerboard)] = variable
    return slots


def _unused(name: str) -> bool:
    return name in UNUSED_NAMES or name.endswith(UNUSED_LEAVES)


def load_realnvp_weights(model, variables: Mapping[str, np.ndarray]) -> int:
    """Assigns official values to the model, all or nothing; returns how many.

    Raises:
      PortingError: a variable of the model missing from `variables`, a
        shape mismatch, a non-finite value, or an official variable that
        maps to nothing (not an official RealNVP of this architecture).
    """
    slots = realnvp_weight_slots(model)
    missing = sorted(set(slots) - set(variables))
    if missing:
        raise PortingError(
            f"{len(missing)} variable(s) of the model are not in the official weights, e.g. "
            f"{missing[:4]}; not an official RealNVP of this config"
        )
    unknown = sorted(name for name in variables if name not in slots and not _unused(name))
    if unknown:
        raise PortingError(
            f"{len(unknown)} official variable(s) map onto no weight of this config, e.g. "
            f"{unknown[:4]}"
        )
    values = {}
    for name, variable in slots.items():
        value = np.asarray(variables[name])
        if tuple(value.shape) != tuple(variable.shape):
            raise PortingError(
                f"{name}: official shape {tuple(value.shape)}, the model's "
                f"{variable.path} has {tuple(variable.shape)}"
            )
        if not np.all(np.isfinite(value)):
            raise PortingError(f"{name} holds non-finite values")
        values[name] = value
    for name, variable in slots.items():
        variable.assign(values[name].astype(variable.dtype))
    return len(slots)


def read_realnvp_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The model variables of an official RealNVP TF1 checkpoint (prefix or
    folder); Adam slots and beta powers are dropped."""
    import tensorflow as tf

    from glow_tf.porting.checkpoint import resolve_checkpoint_prefix

    prefix = resolve_checkpoint_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = [n for n in reader.get_variable_to_shape_map() if not _OPTIMIZER.fullmatch(n)]
        return {name: np.asarray(reader.get_tensor(name)) for name in sorted(names)}
    except Exception as error:
        raise PortingError(f"cannot read checkpoint {prefix!r}: {error}") from None


def read_realnvp_hps(path: str | os.PathLike) -> dict[str, Any]:
    """The official hyper-parameters saved as JSON (see glow_tf/porting/README.md)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as file:
            hps = json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        raise PortingError(f"cannot read RealNVP hps {path!r}: {error}") from None
    if not isinstance(hps, dict):
        raise PortingError(f"{path!r} holds no JSON object of hps")
    return hps


def _scales(names) -> dict[int, set[int]]:
    scales: dict[int, set[int]] = {}
    for name in names:
        match = REALNVP_NAME.fullmatch(name)
        if match:
            scales.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    return scales


def realnvp_config(
    variables: Mapping[str, np.ndarray],
    hps: Mapping[str, Any] | None = None,
    image_size: int | None = None,
) -> RealNVPConfig:
    """The RealNVPConfig of official weights: the architecture from the
    variables' names and shapes, the image size from `image_size`, the hps'
    `_image_shape` or its `image_size` flag; checked against the hps.

    Raises:
      PortingError: the weights are not a RealNVP this package builds
        (recursion_type other than 2, bn_lag, bottleneck) or contradict the hps.
    """
    hps = dict(hps or {})
    flags = hps.get("_FLAGS", {})
    names = list(variables)
    scales = _scales(names)
    if not scales:
        raise PortingError("no model/scale_*/coupling_* variables: not an official RealNVP")
    num_levels = max(scales) + 1
    if sorted(scales) != list(range(num_levels)):
        raise PortingError(f"scales {sorted(scales)} are not 0 .. {num_levels - 1}")
    h_in = variables["model/scale_0/coupling_0/resnet/h_in/weights"]
    channels = (h_in.shape[2] - 1) // 2
    base = "model/scale_0/coupling_0/"
    blocks = {int(m.group(1)) for n in names if (m := re.search(r"resnet/block_(\d+)/", n))}
    out_channels = variables[base + "resnet/out/weights"].shape[-1]
    shape = hps.get("_image_shape")
    if image_size is None:
        image_size = shape[0] if shape else flags.get("image_size")
    if image_size is None:
        raise PortingError(
            "the image size is not in the weights: pass --image-size or an hps.json with "
            "_image_shape or _FLAGS.image_size"
        )
    if int(flags.get("recursion_type", 2)) != 2:
        raise PortingError(
            f"recursion_type {flags['recursion_type']} is not supported (only 2, the default)"
        )
    for option in ("bn_lag", "bottleneck"):
        if hps.get(option, 0):
            raise PortingError(f"official option {option}={hps[option]} is not supported")
    config = RealNVPConfig(
        image_shape=(int(image_size), int(image_size), int(channels)),
        num_levels=num_levels,
        hidden_channels=int(h_in.shape[-1]),
        num_blocks=len(blocks),
        coupling="affine" if out_channels == 2 * channels else "additive",
        batch_norm=base + "bn_out/mean" in variables,
        skip=base + "resnet/skip_in/weights" in variables,
        data_constraint=float(hps.get("data_constraint", 0.9)),
        l2_coeff=float(hps.get("l2_coeff", 5e-5)),
    )
    expected = {
        "n_scale": config.num_levels,
        "base_dim": config.hidden_channels,
        "residual_blocks": config.num_blocks,
        "use_aff": int(config.coupling == "affine"),
        "use_batch_norm": int(config.batch_norm),
        "skip": int(config.skip),
    }
    for key, value in expected.items():
        if key in hps and int(hps[key]) != value:
            raise PortingError(f"hps {key}={hps[key]} but the weights say {value}")
    return config


@dataclasses.dataclass
class RealNVPPort:
    """A ported RealNVPModel, its config and how many variables were loaded."""

    model: Any
    config: RealNVPConfig
    num_weights: int
    num_unused: int


def port_realnvp(
    variables: Mapping[str, np.ndarray],
    hps: Mapping[str, Any] | None = None,
    image_size: int | None = None,
) -> RealNVPPort:
    """A RealNVPModel holding official weights (see `realnvp_config`)."""
    from glow_tf.models.realnvp import RealNVPModel

    config = realnvp_config(variables, hps, image_size)
    model = RealNVPModel(config)
    num_weights = load_realnvp_weights(model, variables)
    num_unused = sum(_unused(name) for name in variables)
    return RealNVPPort(model, config, num_weights, num_unused)
