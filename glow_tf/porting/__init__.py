"""Porting the official OpenAI Glow weights into GlowModel, verified.

    TF1 checkpoint (read_checkpoint) --+
                                       +--> OpenAIWeights --port_openai_weights--> GlowModel
    frozen GraphDef (read_frozen_graph)+        (infer_config + hps/flags, openai_names mapping)

    compare_with_reference(model, dir)  checks a model against official outputs

Command lines: `python -m glow_tf.porting.convert` and `python -m
glow_tf.porting.check`; see glow_tf/porting/README.md.
"""

from glow_tf.porting.checkpoint import read_checkpoint
from glow_tf.porting.frozen_graph import read_frozen_graph
from glow_tf.porting.hps import HpsError, config_from_hps, read_hps
from glow_tf.porting.infer_config import InferredConfig, infer_config
from glow_tf.porting.openai_names import (
    PortingError,
    export_openai_weights,
    load_openai_weights,
    openai_weight_slots,
)
from glow_tf.porting.openai_weights import OpenAIWeights
from glow_tf.porting.port import (
    PortResult,
    plan_port,
    port_checkpoint,
    port_frozen_graph,
    port_openai_weights,
)

__all__ = [
    "Comparison",
    "HpsError",
    "InferredConfig",
    "OpenAIWeights",
    "PortResult",
    "PortingError",
    "compare_with_reference",
    "config_from_hps",
    "export_openai_weights",
    "format_report",
    "infer_config",
    "load_openai_weights",
    "openai_weight_slots",
    "plan_port",
    "port_checkpoint",
    "port_frozen_graph",
    "port_openai_weights",
    "read_checkpoint",
    "read_frozen_graph",
    "read_hps",
]

_CHECK_NAMES = ("Comparison", "compare_with_reference", "format_report")


def __getattr__(name: str):
    # check.py is also a command line: imported here eagerly, `python -m
    # glow_tf.porting.check` would find it imported before running it (runpy warns)
    if name in _CHECK_NAMES:
        from glow_tf.porting import check

        return getattr(check, name)
    raise AttributeError(f"module 'glow_tf.porting' has no attribute {name!r}")
