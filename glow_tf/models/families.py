"""The registry of flow families: config class and model class by name.

    model_class_for("realnvp")          -> RealNVPModel
    model_class_for(RealNVPConfig(...)) -> RealNVPModel
    family_name(config_or_model)        -> "glow" / "realnvp"

Loading (`glow_tf.saving`), the training run and the command line look
families up here, so a new family is one entry.
"""

from __future__ import annotations

from glow_tf.models.flow_model import FlowModel
from glow_tf.models.glow import GlowModel
from glow_tf.models.realnvp import RealNVPModel

__all__ = ["FAMILIES", "model_class_for", "family_name", "registered_names"]

FAMILIES: dict[str, type[FlowModel]] = {"glow": GlowModel, "realnvp": RealNVPModel}


def model_class_for(config_or_name) -> type[FlowModel]:
    """The `FlowModel` subclass of a family name or of a config instance."""
    if isinstance(config_or_name, str):
        if config_or_name not in FAMILIES:
            raise ValueError(
                f"unknown model family {config_or_name!r}; expected one of {sorted(FAMILIES)}"
            )
        return FAMILIES[config_or_name]
    for model_class in FAMILIES.values():
        if isinstance(config_or_name, model_class.config_class):
            return model_class
    raise TypeError(
        f"no model family takes a {type(config_or_name).__name__}; expected one of "
        f"{[c.config_class.__name__ for c in FAMILIES.values()]}"
    )


def family_name(config_or_model) -> str:
    """"glow", "realnvp", ... for a config or a model."""
    config = getattr(config_or_model, "config", config_or_model)
    model_class = model_class_for(config)
    return next(name for name, cls in FAMILIES.items() if cls is model_class)


def registered_names() -> dict[str, type[FlowModel]]:
    """Keras registered name ("glow_tf>GlowModel", ...) -> model class."""
    return {f"glow_tf>{cls.__name__}": cls for cls in FAMILIES.values()}

