"""Official OpenAI Glow weights -> a ready GlowModel, every variable accounted for.

    read_checkpoint / read_frozen_graph -> OpenAIWeights {name: array}
      -> infer_config (names and shapes; image size and n_bits from hps/flags)
      -> GlowModel(config) -> openai_weight_slots (one slot per official variable)
      -> every name mapped, none left over, shapes and values valid
      -> load_openai_weights (assigns all or nothing; marks the model initialised)

`plan_port` runs the same mapping on names and shapes alone, with the model's
weights left unallocated, so full-size configs can be checked in seconds.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from glow_tf.compat import never_allocated
from glow_tf.config import GlowConfig
from glow_tf.models import GlowModel
from glow_tf.porting.checkpoint import read_checkpoint
from glow_tf.porting.frozen_graph import read_frozen_graph
from glow_tf.porting.hps import read_hps
from glow_tf.porting.infer_config import InferredConfig, infer_config
from glow_tf.porting.openai_names import (
    PortingError,
    WeightSlot,
    check_names_and_shapes,
    load_openai_weights,
    mapped_names,
    openai_weight_slots,
)
from glow_tf.porting.openai_weights import OpenAIWeights
from glow_tf.porting.validate import MAX_CONDITION_NUMBER, check_invertible_convolutions

__all__ = [
    "PortResult",
    "plan_port",
    "unallocated_model",
    "port_openai_weights",
    "port_checkpoint",
    "port_frozen_graph",
]


@dataclasses.dataclass
class PortResult:
    """A ported model and how it was made.

    Attributes:
      model: the GlowModel, weights loaded, marked initialised.
      inferred: its config and where each field came from.
      num_weights: model weights filled.
      num_variables: OpenAI variables used (loaded, or validated against a
        loaded one, like shuffle/indices_inverse).
      notes: what the reader and the inference want the user to know.
    """

    model: GlowModel
    inferred: InferredConfig
    num_weights: int
    num_variables: int
    notes: list[str]


def _check_leftovers(slots: list[WeightSlot], names) -> None:
    unknown = sorted(set(names) - mapped_names(slots))
    if unknown:
        scopes = sorted({name.rsplit("/", 1)[0] for name in unknown})
        raise PortingError(
            f"{len(unknown)} variable(s) in unknown scopes, which no part of this config maps: "
            f"{scopes[:8]}{' ...' if len(scopes) > 8 else ''} (e.g. {unknown[:3]}); not an "
            "official OpenAI Glow of the inferred architecture"
        )


def unallocated_model(config: GlowConfig):
    """A context manager giving a GlowModel of `config` whose weights are
    never allocated (names, shapes, paths only); see `compat.never_allocated`."""
    return never_allocated(lambda: GlowModel(config))


def plan_port(shapes: Mapping[str, tuple], config: GlowConfig) -> list[tuple[str, str]]:
    """Dry run of the port: (OpenAI name, GlowModel weight path) for every variable.

    Builds the model's structure in a `keras.StatelessScope`, so its weights
    are never allocated, and applies the port's own mapping and checks:
    every slot found with its shape, no name left over.

    Raises:
      PortingError: like the real port, for missing, misshapen or unknown names.
    """
    with unallocated_model(config) as model:
        slots = openai_weight_slots(model)
        check_names_and_shapes(slots, shapes)
        _check_leftovers(slots, shapes)
        plan = [(slot.name, slot.variable.path) for slot in slots]
        plan += [
            (name, slot.variable.path)
            for slot in slots
            for name in slot.companions
            if name in shapes
        ]
    return plan


def port_openai_weights(
    weights: OpenAIWeights,
    *,
    image_size: int | None = None,
    num_bits: int | None = None,
    weight_y: float | None = None,
    hps: Mapping[str, Any] | str | os.PathLike | None = None,
    max_condition_number: float = MAX_CONDITION_NUMBER,
) -> PortResult:
    """A GlowModel holding `weights`, its config inferred from them.

    Args:
      weights: from `read_checkpoint` or `read_frozen_graph`.
      image_size, num_bits: what the weights cannot tell (override the hps).
      weight_y: classifier loss weight for models with a classifier head.
      hps: the run's hps (dict, or a path to hps.json / train.txt).
      max_condition_number: the largest cond(W) of a 1x1 convolution accepted
        (see `glow_tf.porting.validate`).

    Raises:
      PortingError: anything that keeps the weights from mapping exactly onto
        one GlowModel, including a singular or ill-conditioned 1x1 convolution;
        no model is returned half-loaded.
    """
    if hps is not None and not isinstance(hps, Mapping):
        hps = read_hps(hps)
    try:
        inferred = infer_config(
            weights.shapes,
            image_size=image_size,
            num_bits=num_bits,
            weight_y=weight_y,
            hps=hps,
            image_shape_hint=weights.image_shape,
        )
        model = GlowModel(inferred.config)
        slots = openai_weight_slots(model)
        _check_leftovers(slots, weights.variables)
        check_invertible_convolutions(weights.variables, max_condition_number)
        num_weights = load_openai_weights(model, weights.variables)
    except PortingError as error:
        if weights.hint:
            raise PortingError(f"{error}\n{weights.hint}") from None
        raise
    num_variables = len(mapped_names(slots) & set(weights.variables))
    return PortResult(model, inferred, num_weights, num_variables, weights.notes + inferred.notes)


def port_checkpoint(path: str | os.PathLike, *, ema: bool = False, **kwargs) -> PortResult:
    """`port_openai_weights(read_checkpoint(path, ema))`; see both."""
    return port_openai_weights(read_checkpoint(path, ema=ema), **kwargs)


def port_frozen_graph(path: str | os.PathLike, **kwargs) -> PortResult:
    """`port_openai_weights(read_frozen_graph(path))`; see both."""
    return port_openai_weights(read_frozen_graph(path), **kwargs)
