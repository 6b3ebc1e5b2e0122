"""Resumable checkpoints of a training run, written so that a kill at any
moment leaves the last good one intact.

Layout under the run's `checkpoints/` directory:

    epoch-0007/model.keras   weights, optimizer state (slots, step count, EMA)
    epoch-0007/state.json    {"epoch": 7, "step": ..., "config": GlowConfig dict, ...}

A checkpoint is written into a hidden staging directory first and renamed
into place (`glow_tf.saving.staged_directory`), so a directory named
`epoch-*` is always complete. The newest `keep` checkpoints are kept.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil

from glow_tf.saving import save_keras_atomically, staged_directory, write_json_atomically

__all__ = ["Checkpoint", "CheckpointStore", "write_json_atomically", "save_keras_atomically"]

_NAME = re.compile(r"^epoch-(\d+)$")
MODEL_FILE = "model.keras"
STATE_FILE = "state.json"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One complete checkpoint: its directory, epoch and saved state."""

    directory: str
    epoch: int
    state: dict

    @property
    def model_path(self) -> str:
        return os.path.join(self.directory, MODEL_FILE)

    @property
    def step(self) -> int:
        return int(self.state.get("step", 0))


class CheckpointStore:
    """The resumable checkpoints of one run directory.

    Args:
      directory: where the `epoch-*` directories live.
      keep: how many of the newest checkpoints to keep (>= 1).
    """

    def __init__(self, directory: str, keep: int = 2):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = directory
        self.keep = keep

    def checkpoints(self) -> list[Checkpoint]:
        """Complete checkpoints, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in os.listdir(self.directory):
            match = _NAME.match(name)
            path = os.path.join(self.directory, name)
            if not match or not os.path.isfile(os.path.join(path, STATE_FILE)):
                continue
            with open(os.path.join(path, STATE_FILE)) as file:
                state = json.load(file)
            found.append(Checkpoint(path, int(match.group(1)), state))
        return sorted(found, key=lambda checkpoint: checkpoint.epoch)

    def latest(self) -> Checkpoint | None:
        checkpoints = self.checkpoints()
        return checkpoints[-1] if checkpoints else None

    def save(self, model, epoch: int, state: dict) -> Checkpoint:
        """Writes the model (with its optimizer) and `state` as checkpoint
        `epoch`, then removes all but the newest `keep` checkpoints."""
        final = os.path.join(self.directory, f"epoch-{epoch:04d}")
        state = {**state, "epoch": epoch}
        with staged_directory(final, overwrite=True) as staging:
            model.save(os.path.join(staging, MODEL_FILE))
            write_json_atomically(os.path.join(staging, STATE_FILE), state)
        for old in self.checkpoints()[: -self.keep]:
            shutil.rmtree(old.directory, ignore_errors=True)
        return Checkpoint(final, epoch, state)
