"""Continuing a run: which checkpoint, and whether it fits the run's configs.

A checkpoint's `state.json` holds the `GlowConfig` dict ("config") and the
optimizer layout ("optimizer_layout") of the run that wrote it; a run may
continue it only with the same values, except for `RESUMABLE_DIFFERENCES`
(the precision of the coupling networks does not change the weights).
"""

from __future__ import annotations

import json
import os

from glow_tf.config import GlowConfig
from glow_tf.training.checkpoint import STATE_FILE, Checkpoint, CheckpointStore
from glow_tf.training.config import TrainingConfig

__all__ = [
    "RESUMABLE_DIFFERENCES",
    "find_resume_checkpoint",
    "optimizer_layout",
    "check_compatible",
]

RESUMABLE_DIFFERENCES = ("network_dtype",)
# layout entries added since; a checkpoint without them was written with these
LAYOUT_DEFAULTS = {"dequantization": "uniform"}


def find_resume_checkpoint(resume: str, output_dir: str, store: CheckpointStore):
    """The checkpoint to continue from, or None to start fresh.

    Args:
      resume: "auto" (the newest checkpoint of `store`, if any), "never"
        (refuses a `store` that holds a checkpoint), or the path of a run
        directory, its checkpoints/ directory or one checkpoint.
      output_dir: the run directory (for messages).
      store: the run's own checkpoints.

    Raises:
      ValueError: "never" on a directory holding a run, or a path without
        a checkpoint.
    """
    if resume == "auto":
        return store.latest()
    if resume == "never":
        latest = store.latest()
        if latest is not None:
            raise ValueError(
                f"{output_dir!r} already holds a run (checkpoint of epoch {latest.epoch}); "
                "continue it with --resume auto, or choose another --output-dir"
            )
        return None
    path = resume
    if os.path.isfile(path) and os.path.basename(path) in ("model.keras", STATE_FILE):
        path = os.path.dirname(path)
    if os.path.isfile(os.path.join(path, STATE_FILE)):
        with open(os.path.join(path, STATE_FILE)) as file:
            state = json.load(file)
        return Checkpoint(path, int(state["epoch"]), state)
    for directory in (os.path.join(path, "checkpoints"), path):
        latest = CheckpointStore(directory).latest()
        if latest is not None:
            return latest
    raise ValueError(
        f"--resume {resume!r}: no checkpoint there (expected a run directory, its "
        "checkpoints/ directory, or a checkpoints/epoch-* directory)"
    )


def optimizer_layout(config: GlowConfig, training: TrainingConfig) -> dict:
    """What decides the optimizer's saved variables (a checkpoint's optimizer
    state only loads into the same layout), and the model's beyond its config
    (a learned dequantizer's weights)."""
    return {
        "optimizer": training.optimizer,
        "ema": training.ema_decay is not None,
        "loss_scale": config.network_dtype == "float16",
        "dequantization": training.dequantization,
    }


def check_compatible(checkpoint: Checkpoint, config: GlowConfig, layout: dict) -> None:
    """Raises ValueError naming the fields when the checkpoint was trained
    with another model configuration or optimizer layout."""
    saved = dict(checkpoint.state.get("config", {}))
    saved.update({**LAYOUT_DEFAULTS, **checkpoint.state.get("optimizer_layout", {})})
    wanted = {**config.to_dict(), **layout}
    differences = {
        key: (saved.get(key), wanted.get(key))
        for key in sorted(set(saved) | set(wanted))
        if key not in RESUMABLE_DIFFERENCES and saved.get(key) != wanted.get(key)
    }
    if differences:
        text = ", ".join(
            f"{key}: checkpoint {old!r}, now {new!r}" for key, (old, new) in differences.items()
        )
        raise ValueError(
            f"cannot resume from {checkpoint.directory!r}: it holds a model or optimizer with "
            f"another configuration ({text}). Pass the same settings, or another "
            "--output-dir to start a new run"
        )
