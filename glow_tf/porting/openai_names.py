"""OpenAI Glow variable names <-> GlowModel weights, with the conventions converted.

The official code (github.com/openai/glow, `model.py` / `tfops.py`) names its
variables by scope. For a model with levels i, steps j:

| OpenAI variable                              | GlowModel weight                                   | conversion         |
|----------------------------------------------|----------------------------------------------------|--------------------|
| model/i/j/actnorm_center/b       [1,1,1,C]   | levels[i].steps[j].act_norm.bias       [C]         | reshape            |
| model/i/j/actnorm_scale/logs     [1,1,1,C]   | levels[i].steps[j].act_norm.logs       [C]         | reshape            |
| model/i/j/invconv/W              [C,C]       | ...permutation.kernel (dense form)                 | as is (z @ W)      |
| model/i/j/invconv/{P,L,U,sign_S,log_S}       | ...permutation.{permutation,lower,upper,sign_s,log_s} | as is           |
| model/i/j/shuffle/indices(_inverse) [C]      | ...permutation.indices                             | inverse checked    |
| model/i/j/f1/l_1/W               [3,3,C/2+1,W]| ...coupling.network.conv_in.kernel                | as is (edge bias)  |
| model/i/j/f1/l_1/actnorm_*                   | ...coupling.network.conv_in.norm.{bias,logs}       | as actnorm         |
| model/i/j/f1/l_2/W               [1,1,W,W]   | ...coupling.network.conv_hidden.kernel             | as is              |
| model/i/j/f1/l_2/actnorm_*                   | ...coupling.network.conv_hidden.norm.*             | as actnorm         |
| model/i/j/f1/l_last/{W,b,logs}               | ...coupling.network.conv_out.{kernel,bias,logs}    | reshape            |
| model/pool{i}/conv/{W,b,logs}                | levels[i].split.prior_network.*                    | reshape            |
| model/prior/p/{W,b,logs}                     | top_prior.learned.*                                | reshape            |
| model/prior/y_emb/{W,b,logs}                 | top_prior.class_embedding.*                        | reshape            |
| model/classifier/{W,b,logs}                  | classifier.*                                       | reshape            |

Every `logs` is loaded as is: the model stores log-scales as OpenAI does
(`logs`, with log_scale = LOGSCALE_FACTOR * logs = 3 * logs, see
`glow_tf.nn.log_scale`), so a ported checkpoint keeps its optimizer
geometry and the forward pass computes the official `logs * 3`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from glow_tf.nn.log_scale import LOGSCALE_FACTOR

__all__ = [
    "LOGSCALE_FACTOR",
    "WeightSlot",
    "openai_weight_slots",
    "load_openai_weights",
    "check_names_and_shapes",
    "mapped_names",
    "export_openai_weights",
    "PortingError",
]

class PortingError(ValueError):
    """A set of OpenAI weights that cannot be mapped onto the model as asked."""


@dataclass
class WeightSlot:
    """One OpenAI variable and the model weight it fills.

    Attributes:
      name: the OpenAI variable name, e.g. "model/0/0/invconv/W".
      variable: the Keras variable it fills.
      shape: the shape OpenAI stores.
      to_model: numpy conversion OpenAI value -> model value.
      to_openai: the inverse conversion.
      check: optional validation `check(value, companions)` of the OpenAI value
        and of those companions present (raises PortingError).
      companions: OpenAI variables redundant with this one (same shape),
        validated against it when present but not loaded, e.g.
        "shuffle/indices_inverse".
    """

    name: str
    variable: object
    shape: tuple
    to_model: Callable[[np.ndarray], np.ndarray]
    to_openai: Callable[[np.ndarray], np.ndarray]
    check: Callable[[np.ndarray, dict], None] | None = None
    companions: tuple[str, ...] = ()


def _as_is(value):
    return np.asarray(value)


def _flat(value):
    return np.asarray(value).reshape(-1)


def _reshape(shape):
    return lambda value: np.asarray(value).reshape(shape)


def _actnorm_slots(prefix, layer):
    channels = layer.bias.shape[0]
    shape = (1, 1, 1, channels)
    return [
        WeightSlot(f"{prefix}actnorm_center/b", layer.bias, shape, _flat, _reshape(shape)),
        WeightSlot(f"{prefix}actnorm_scale/logs", layer.logs, shape, _flat, _reshape(shape)),
    ]


def _scaled_linear_slots(prefix, layer, bias_shape):
    """W, b, logs of OpenAI's conv2d_zeros / linear_zeros."""
    units = layer.bias.shape[0]
    return [
        WeightSlot(f"{prefix}/W", layer.kernel, tuple(layer.kernel.shape), _as_is, _as_is),
        WeightSlot(f"{prefix}/b", layer.bias, bias_shape, _flat, _reshape(bias_shape)),
        WeightSlot(f"{prefix}/logs", layer.logs, (1, units), _flat, _reshape((1, units))),
    ]


def _zero_conv_slots(prefix, layer):
    return _scaled_linear_slots(prefix, layer, (1, 1, 1, layer.bias.shape[0]))


def _linear_zeros_slots(prefix, layer):
    return _scaled_linear_slots(prefix, layer, (1, layer.bias.shape[0]))


def _permutation_slots(prefix, layer, permutation, lu_decomposed):
    if permutation == "reverse":
        return []
    if permutation == "shuffle":
        channels = layer.indices.shape[0]
        inverse_name = f"{prefix}shuffle/indices_inverse"

        def check(indices, companions):
            indices = np.asarray(indices)
            if sorted(indices.tolist()) != list(range(channels)):
                raise PortingError(f"{prefix}shuffle/indices is not a permutation of 0..{channels - 1}")
            # the model gathers with `indices` forward and their inverse backward;
            # OpenAI stores that inverse too and decodes with it
            if inverse_name in companions and not np.array_equal(
                np.asarray(companions[inverse_name]), np.argsort(indices)
            ):
                raise PortingError(
                    f"{inverse_name} is not the inverse permutation of {prefix}shuffle/indices"
                )

        return [
            WeightSlot(
                f"{prefix}shuffle/indices", layer.indices, (channels,),
                lambda v: np.asarray(v, np.int32), _as_is, check, (inverse_name,),
            )
        ]
    if lu_decomposed:
        names = {"P": layer.permutation, "L": layer.lower, "U": layer.upper,
                 "sign_S": layer.sign_s, "log_S": layer.log_s}
        return [
            WeightSlot(f"{prefix}invconv/{name}", var, tuple(var.shape), _as_is, _as_is)
            for name, var in names.items()
        ]
    kernel = layer.kernel
    return [WeightSlot(f"{prefix}invconv/W", kernel, tuple(kernel.shape), _as_is, _as_is)]


def openai_weight_slots(model) -> list[WeightSlot]:
    """Every OpenAI variable a `GlowModel` of this config has, with its weight."""
    config = model.config
    slots = []
    for i, level in enumerate(model.levels):
        for j, step in enumerate(level.steps):
            prefix = f"model/{i}/{j}/"
            slots += _actnorm_slots(prefix, step.act_norm)
            slots += _permutation_slots(
                prefix, step.permutation, config.permutation, config.lu_decomposed
            )
            network = step.coupling.network
            for name, conv in (("l_1", network.conv_in), ("l_2", network.conv_hidden)):
                slots.append(
                    WeightSlot(f"{prefix}f1/{name}/W", conv.kernel, tuple(conv.kernel.shape),
                               _as_is, _as_is)
                )
                slots += _actnorm_slots(f"{prefix}f1/{name}/", conv.norm)
            slots += _zero_conv_slots(f"{prefix}f1/l_last", network.conv_out)
        if level.split is not None:
            slots += _zero_conv_slots(f"model/pool{i}/conv", level.split.prior_network)
    if model.top_prior.learned is not None:
        slots += _zero_conv_slots("model/prior/p", model.top_prior.learned)
    if model.top_prior.class_embedding is not None:
        slots += _linear_zeros_slots("model/prior/y_emb", model.top_prior.class_embedding)
    if model.classifier is not None:
        slots += _linear_zeros_slots("model/classifier", model.classifier)
    return slots


def mapped_names(slots: list[WeightSlot]) -> set[str]:
    """Every OpenAI name the slots account for (loaded or validated)."""
    return {slot.name for slot in slots} | {name for slot in slots for name in slot.companions}


def check_names_and_shapes(slots: list[WeightSlot], shapes: Mapping[str, tuple]) -> None:
    """Raises PortingError unless every slot's variable is in `shapes` with its shape.

    `shapes` maps OpenAI names to stored shapes. Names that no slot accounts
    for are not checked here (see `mapped_names`).
    """
    missing = [slot.name for slot in slots if slot.name not in shapes]
    if missing:
        raise PortingError(
            f"{len(missing)} variable(s) of this config are missing, e.g. {missing[:5]}"
        )
    for slot in slots:
        for name in (slot.name, *(c for c in slot.companions if c in shapes)):
            found = tuple(shapes[name])
            if found != tuple(slot.shape):
                raise PortingError(
                    f"{name}: expected shape {list(slot.shape)}, found {list(found)}"
                )


def load_openai_weights(model, variables: Mapping[str, np.ndarray]) -> int:
    """Fills `model` from OpenAI variables {name: array}; returns how many.

    Everything is validated before anything is assigned: a missing variable,
    a shape mismatch or an invalid value raises `PortingError` naming the
    variable, and leaves the model untouched. Names outside the model's slots
    are ignored here (`glow_tf.porting` decides what may be left over). Marks
    the model initialised (no data-dependent init must run afterwards).
    """
    slots = openai_weight_slots(model)
    check_names_and_shapes(slots, {name: np.shape(value) for name, value in variables.items()})
    values = []
    for slot in slots:
        value = np.asarray(variables[slot.name])
        integer = "int" in str(slot.variable.dtype)
        if value.dtype.kind not in ("iu" if integer else "f"):
            raise PortingError(
                f"{slot.name}: expected {'integer' if integer else 'float'} values, found "
                f"dtype {value.dtype}"
            )
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise PortingError(f"{slot.name}: contains NaN or Inf")
        if slot.check is not None:
            companions = {name: variables[name] for name in slot.companions if name in variables}
            slot.check(value, companions)
        converted = slot.to_model(value)
        values.append(converted.astype(slot.variable.dtype).reshape(slot.variable.shape))
    for slot, value in zip(slots, values, strict=True):
        slot.variable.assign(value)
    model.initialized.assign(1)
    return len(slots)


def export_openai_weights(model) -> dict[str, np.ndarray]:
    """The model's weights under OpenAI's names and conventions (inverse of loading)."""
    weights = {}
    for slot in openai_weight_slots(model):
        weights[slot.name] = slot.to_openai(np.asarray(slot.variable.numpy())).reshape(slot.shape)
        if slot.name.endswith("shuffle/indices"):
            weights[slot.name.replace("indices", "indices_inverse")] = np.argsort(
                weights[slot.name]
            ).astype(np.int32)
    return weights
