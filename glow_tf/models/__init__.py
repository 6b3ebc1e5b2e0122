"""Flow models: the family-neutral `FlowModel` and the families built on it."""

from glow_tf.models.flow_model import Encoding, FlowModel
from glow_tf.models.glow import GlowModel, glow_level
from glow_tf.models.realnvp import RealNVPModel, realnvp_level
from glow_tf.models.families import FAMILIES, family_name, model_class_for  # noqa: I001

__all__ = [
    "Encoding",
    "FAMILIES",
    "FlowModel",
    "GlowModel",
    "RealNVPModel",
    "family_name",
    "glow_level",
    "model_class_for",
    "realnvp_level",
]
