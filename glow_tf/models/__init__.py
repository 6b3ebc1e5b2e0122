"""Flow models: the family-neutral `FlowModel` and the families built on it."""

from glow_tf.models.flow_model import Encoding, FlowModel
from glow_tf.models.glow import GlowModel, glow_level

__all__ = ["Encoding", "FlowModel", "GlowModel", "glow_level"]
