"""Resumable checkpoints of a training run, written so that a kill at any
moment leaves the last good one intact.

Layout under the run's `checkpoints/` directory:

    epoch-0007/model.keras   weights, optimizer state (slots, step count, EMA)
    epoch-0007/state.json    {"epoch": 7, "step": ..., "config": GlowConfig dict, ...}

A checkpoint is written into a hidden `.partial-*` directory first and renamed
into place (an atomic rename), so a directory named `epoch-*` is always
complete. The newest `keep` checkpoints are kept.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from typing import Any

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


def write_json_atomically(path: str, data: Any) -> None:
    """json.dump to `path` through a temporary file and an atomic rename."""
    temporary = f"{path}.partial"
    with open(temporary, "w") as file:
        json.dump(data, file, indent=1, sort_keys=True)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def save_keras_atomically(model, path: str) -> None:
    """`model.save(path)` through a temporary file and an atomic rename."""
    temporary = os.path.join(os.path.dirname(path) or ".", f".partial-{os.path.basename(path)}")
    model.save(temporary)
    os.replace(temporary, path)


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
        os.makedirs(self.directory, exist_ok=True)
        name = f"epoch-{epoch:04d}"
        partial = os.path.join(self.directory, f".partial-{name}")
        final = os.path.join(self.directory, name)
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        model.save(os.path.join(partial, MODEL_FILE))
        state = {**state, "epoch": epoch}
        write_json_atomically(os.path.join(partial, STATE_FILE), state)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(partial, final)
        for old in self.checkpoints()[: -self.keep]:
            shutil.rmtree(old.directory, ignore_errors=True)
        return Checkpoint(final, epoch, state)
