"""The GlowConfig that a set of official OpenAI variables determines.

The variable names and shapes fix the architecture:

| GlowConfig field         | read from                                                      |
|--------------------------|----------------------------------------------------------------|
| num_levels, num_steps    | the scopes model/<level>/<step>/ (every level has the same K)  |
| image_shape[2] (C)       | model/0/0/actnorm_center/b holds 4 C channels                  |
| hidden_channels          | model/0/0/f1/l_1/W [3, 3, c/2 + 1, width]                      |
| coupling                 | f1/l_last/W has c outputs (affine) or c/2 (additive)           |
| permutation, lu          | invconv/W (dense), invconv/{P,L,U,sign_S,log_S} (LU),          |
|                          | shuffle/indices (shuffle), none of them (reverse)              |
| learn_top                | model/prior/p present                                          |
| num_classes              | model/prior/y_emb/W [n_y, 2 c_top]                             |
| classifier (weight_y>0)  | model/classifier present                                       |

What they cannot fix, the image size and n_bits_x, comes from an hps (see
`glow_tf.porting.hps`) or explicit values; nothing is guessed. An hps that
contradicts the weights is an error.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from glow_tf.config import GlowConfig
from glow_tf.porting.hps import COUPLING_CODES, PERMUTATION_CODES
from glow_tf.porting.openai_names import PortingError

__all__ = ["InferredConfig", "infer_config", "DEFAULT_WEIGHT_Y"]

DEFAULT_WEIGHT_Y = 0.01  # every conditional run in OpenAI's README uses --weight_y=0.01
_STEP = re.compile(r"model/(\d+)/(\d+)/(.+)")
_LU_LEAVES = ("P", "L", "U", "sign_S", "log_S")
# The GlowConfig fields the variables fix (see the module docstring).
_WEIGHT_FIELDS = (
    "num_levels",
    "num_steps",
    "hidden_channels",
    "coupling",
    "permutation",
    "lu_decomposed",
    "learn_top",
    "num_classes",
)


@dataclasses.dataclass
class InferredConfig:
    """A GlowConfig and, for each field, where its value came from.

    Attributes:
      config: the GlowConfig.
      provenance: field name -> "weights", "hps" or the flag that gave it.
      notes: what the user should know (e.g. a classifier head left out).
    """

    config: GlowConfig
    provenance: dict[str, str]
    notes: list[str]

    def describe(self) -> str:
        """One line per config field, with its origin."""
        lines = []
        for key, value in self.config.to_dict().items():
            origin = self.provenance.get(key, "default")
            lines.append(f"  {key:<16} {value!s:<16} [{origin}]")
        return "\n".join(lines)


def _shape(shapes: Mapping[str, tuple], name: str) -> tuple:
    if name not in shapes:
        raise PortingError(f"variable {name!r} is missing (needed to infer the architecture)")
    return tuple(shapes[name])


def _contiguous(indices: set[int], what: str) -> int:
    expected = set(range(max(indices) + 1))
    if indices != expected:
        raise PortingError(f"{what}: found {sorted(indices)}, missing {sorted(expected - indices)}")
    return len(indices)


def _step_permutation(leaves: set[str], prefix: str) -> tuple[str, bool]:
    kinds = set()
    if "invconv/W" in leaves:
        kinds.add(("conv1x1", False))
    if any(f"invconv/{leaf}" in leaves for leaf in _LU_LEAVES):
        kinds.add(("conv1x1", True))
    if "shuffle/indices" in leaves or "shuffle/indices_inverse" in leaves:
        kinds.add(("shuffle", False))
    if len(kinds) > 1:
        raise PortingError(f"{prefix} holds variables of several permutations: {sorted(kinds)}")
    return kinds.pop() if kinds else ("reverse", False)


def _architecture(shapes: Mapping[str, tuple]) -> dict[str, Any]:
    steps: dict[int, dict[int, set[str]]] = {}
    for name in shapes:
        match = _STEP.fullmatch(name)
        if match:
            level, step, leaf = int(match[1]), int(match[2]), match[3]
            steps.setdefault(level, {}).setdefault(step, set()).add(leaf)
    if not steps:
        examples = sorted(shapes)[:5]
        raise PortingError(
            f"no OpenAI Glow flow-step variables (model/<level>/<step>/...) among the "
            f"{len(shapes)} names read, e.g. {examples}"
        )
    num_levels = _contiguous(set(steps), "levels (model/<level>/)")
    depths = {level: _contiguous(set(steps[level]), f"steps of level {level}") for level in steps}
    if len(set(depths.values())) > 1:
        raise PortingError(f"levels have different numbers of steps {depths}: not an OpenAI Glow")
    channels = [_shape(shapes, f"model/{i}/0/actnorm_center/b")[-1] for i in range(num_levels)]
    for i in range(1, num_levels):
        if channels[i] != 2 * channels[i - 1]:
            raise PortingError(
                f"level {i} has {channels[i]} channels after level {i - 1}'s {channels[i - 1]}: "
                "a split then squeeze doubles them (model/<level>/0/actnorm_center/b)"
            )
    if channels[0] % 4:
        raise PortingError(
            f"model/0/0/actnorm_center/b has {channels[0]} channels: not 4x the image channels"
        )
    width = _shape(shapes, "model/0/0/f1/l_1/W")[-1]
    outputs = _shape(shapes, "model/0/0/f1/l_last/W")[-1]
    if outputs == channels[0]:
        coupling = "affine"
    elif 2 * outputs == channels[0]:
        coupling = "additive"
    else:
        raise PortingError(
            f"model/0/0/f1/l_last/W has {outputs} outputs for {channels[0]} channels: expected "
            f"{channels[0]} (affine) or {channels[0] // 2} (additive)"
        )
    permutations = {
        _step_permutation(leaves, f"model/{i}/{j}/")
        for i, level in steps.items()
        for j, leaves in level.items()
    }
    if len(permutations) > 1:
        raise PortingError(f"steps use different permutations {sorted(permutations)}")
    permutation, lu_decomposed = permutations.pop()
    learn_top = "model/prior/p/W" in shapes
    num_classes = _shape(shapes, "model/prior/y_emb/W")[0] if "model/prior/y_emb/W" in shapes else 0
    classifier = "model/classifier/W" in shapes
    if classifier and not num_classes:
        raise PortingError(
            "model/classifier without model/prior/y_emb: the official code builds the "
            "classifier head only for class-conditional (ycond) models"
        )
    return dict(
        num_levels=num_levels,
        num_steps=depths[0],
        image_channels=channels[0] // 4,
        hidden_channels=width,
        coupling=coupling,
        permutation=permutation,
        lu_decomposed=lu_decomposed,
        learn_top=learn_top,
        num_classes=num_classes,
        classifier=classifier,
    )


def _check_hps(hps: Mapping[str, Any], arch: dict[str, Any]) -> None:
    expected = {
        "n_levels": arch["num_levels"],
        "depth": arch["num_steps"],
        "width": arch["hidden_channels"],
        "flow_coupling": {v: k for k, v in COUPLING_CODES.items()}[arch["coupling"]],
        "flow_permutation": {v: k for k, v in PERMUTATION_CODES.items()}[arch["permutation"]],
        "learntop": arch["learn_top"],
        "ycond": arch["num_classes"] > 0,
    }
    if arch["num_classes"] and hps.get("ycond"):
        expected["n_y"] = arch["num_classes"]
    if arch["permutation"] == "conv1x1" and "use_lu" in hps:
        expected["use_lu"] = arch["lu_decomposed"]
    conflicts = [
        f"{key}={hps[key]!r} (weights: {value!r})"
        for key, value in expected.items()
        if key in hps
        and hps[key] != value
        and not (isinstance(value, bool) and bool(hps[key]) == value)
    ]
    if conflicts:
        raise PortingError(
            "the hps contradict the weights: "
            + ", ".join(conflicts)
            + "; is this the hps of another run?"
        )


def infer_config(
    shapes: Mapping[str, tuple],
    *,
    image_size: int | None = None,
    num_bits: int | None = None,
    weight_y: float | None = None,
    hps: Mapping[str, Any] | None = None,
    image_shape_hint: tuple[int, int, int] | None = None,
) -> InferredConfig:
    """The GlowConfig of the official variables {name: shape}.

    Args:
      shapes: OpenAI variable names and stored shapes.
      image_size: the (square) image size; overrides the hps.
      num_bits: n_bits_x; overrides the hps.
      weight_y: weight of the classifier loss, for a model with a classifier
        head (default: the hps's, else 0.01 as in every official conditional run).
      hps: the official hyper-parameters (hps.json), cross-checked against
        the weights.
      image_shape_hint: an image shape the weight file states (a graph's
        input placeholder), cross-checked against the image size.

    Raises:
      PortingError: the names do not form an official Glow, the hps
        contradict them, or the image size / n_bits are missing or invalid.
    """
    arch = _architecture(shapes)
    hps = dict(hps or {})
    _check_hps(hps, arch)
    provenance = dict.fromkeys(_WEIGHT_FIELDS, "weights")
    notes = []

    def given(flag_value, key, flag):
        if flag_value is not None:
            return int(flag_value), flag
        if key in hps and hps[key] is not None and int(hps[key]) > 0:
            return int(hps[key]), "hps"
        return None, None

    size, size_origin = given(image_size, "image_size", "--image-size")
    bits, bits_origin = given(num_bits, "n_bits_x", "--n-bits")
    lacking = []
    if size is None:
        lacking.append("the image size (--image-size N)")
    if bits is None:
        lacking.append("n_bits_x (--n-bits B)")
    if lacking:
        raise PortingError(
            f"the weights do not determine {' or '.join(lacking)}: pass it, or --hps with the "
            "run's hps.json / train.txt (nothing is guessed)"
        )
    if not 1 <= bits <= 8:
        raise PortingError(f"n_bits_x must be in 1..8, got {bits} [{bits_origin}]")
    factor = 2 ** arch["num_levels"]
    if size <= 0 or size % factor:
        raise PortingError(
            f"image size {size} [{size_origin}] is not divisible by 2**num_levels = {factor} "
            f"(the weights have {arch['num_levels']} levels)"
        )
    image_shape = (size, size, arch["image_channels"])
    if image_shape_hint is not None and tuple(image_shape_hint) != image_shape:
        raise PortingError(
            f"image shape {image_shape} [{size_origin}] disagrees with the file's input "
            f"placeholder {tuple(image_shape_hint)}"
        )
    provenance.update(image_shape=size_origin, num_bits=bits_origin)

    hps_classifier = bool(hps.get("ycond")) and float(hps.get("weight_y", 0.0)) > 0
    if arch["classifier"]:
        if weight_y is not None:
            resolved_weight_y, provenance["weight_y"] = float(weight_y), "--weight-y"
        elif hps_classifier:
            resolved_weight_y, provenance["weight_y"] = float(hps["weight_y"]), "hps"
        else:
            resolved_weight_y, provenance["weight_y"] = DEFAULT_WEIGHT_Y, "default"
            notes.append(
                f"the weights have a classifier head but no weight_y was given: using "
                f"{DEFAULT_WEIGHT_Y} (OpenAI's value; it only weighs the classifier loss in fit)"
            )
        if resolved_weight_y <= 0:
            raise PortingError(
                f"a model with a classifier head needs weight_y > 0, got {resolved_weight_y}"
            )
    else:
        resolved_weight_y, provenance["weight_y"] = 0.0, "weights"
        if hps_classifier or (weight_y is not None and weight_y > 0):
            notes.append(
                "the hps/flags ask for a classifier head (ycond, weight_y > 0) but the weights "
                "have no model/classifier (a frozen encode/decode graph leaves it out): "
                "ported without it, so bits_y / logits are not available"
            )
    config = GlowConfig(
        image_shape=image_shape,
        num_bits=bits,
        weight_y=resolved_weight_y,
        **{field: arch[field] for field in _WEIGHT_FIELDS},
    )
    return InferredConfig(config, provenance, notes)
