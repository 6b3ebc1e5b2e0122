"""Resumable checkpoints of a training run, written so that a kill at any
moment leaves the last good one intact.

Layout under the run's `checkpoints/` directory, one directory per
checkpoint, named after the batches trained on so far (the data position):

    step-00001500/model.keras   weights, optimizer state (slots, step count, EMA)
    step-00001500/state.json    {"data_position": 1500, "epoch": 2, "batch_in_epoch": 300,
                                 "step": ..., "data_seed": ..., "noise_seed": ...,
                                 "config": GlowConfig dict, ...}

("epoch" counts finished epochs; "batch_in_epoch" the batches of the next
one already trained on; directories `epoch-NNNN` of older versions are read
too.) A checkpoint is written into a hidden staging directory first and
renamed into place (`glow_tf.saving.staged_directory`), so a directory named
`step-*` holds both files. The newest `keep` checkpoints are kept.

A checkpoint can still be damaged afterwards (a full disk, a copy cut
short): `checkpoint_problem` says what is wrong with one, and a resumed run
falls back to the previous checkpoint (`glow_tf.training.resume`);
`set_aside` moves a damaged one out of the way (kept, as `damaged-step-*`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import zipfile

from glow_tf.saving import save_keras_atomically, staged_directory, write_json_atomically

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "checkpoint_problem",
    "write_json_atomically",
    "save_keras_atomically",
]

_NAME = re.compile(r"^(step|epoch)-(\d+)$")
MODEL_FILE = "model.keras"
STATE_FILE = "state.json"
DAMAGED_PREFIX = "damaged-"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One checkpoint directory: where it is, its data position and saved state.

    Attributes:
      directory: the checkpoint's directory.
      position: batches trained on when it was written (the stream position).
      state: the parsed state.json, or None if it cannot be read.
      state_error: why state.json cannot be read, or None.
    """

    directory: str
    position: int
    state: dict | None
    state_error: str | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.directory)

    @property
    def model_path(self) -> str:
        return os.path.join(self.directory, MODEL_FILE)

    @property
    def epoch(self) -> int:
        """Finished epochs."""
        return int((self.state or {}).get("epoch", 0))

    @property
    def batch_in_epoch(self) -> int:
        """Batches of the next epoch already trained on (0 at an epoch's end)."""
        return int((self.state or {}).get("batch_in_epoch", 0))

    @property
    def step(self) -> int:
        """The optimizer's step count."""
        return int((self.state or {}).get("step", 0))


def read_checkpoint(directory: str) -> Checkpoint | None:
    """The checkpoint in `directory`, or None if it is not one (wrong name,
    no state.json: an interrupted copy). An unreadable state.json gives a
    checkpoint with `state=None` and the reason."""
    match = _NAME.match(os.path.basename(os.path.normpath(directory)))
    state_path = os.path.join(directory, STATE_FILE)
    if not os.path.isfile(state_path):
        return None
    state, error = None, None
    try:
        with open(state_path) as file:
            state = json.load(file)
        if not isinstance(state, dict):
            raise ValueError(f"expected a JSON object, got {type(state).__name__}")
        int(state.get("step", 0)), int(state.get("epoch", 0)), int(state.get("data_position", 0))
    except (OSError, ValueError, KeyError, TypeError) as failure:
        state, error = None, f"{STATE_FILE} is unreadable ({type(failure).__name__}: {failure})"
    if match and match.group(1) == "step":
        position = int(match.group(2))
    elif state is not None:  # an epoch-NNNN directory of an older version
        position = int(state.get("data_position", state.get("step", 0)))
    else:
        position = -1
    return Checkpoint(directory, position, state, error)


def checkpoint_problem(checkpoint: Checkpoint) -> str | None:
    """What makes `checkpoint` unusable, or None: an unreadable state.json, a
    missing, truncated or corrupt model.keras (every member's CRC is checked)."""
    if checkpoint.state is None:
        return checkpoint.state_error or f"{STATE_FILE} is unreadable"
    path = checkpoint.model_path
    if not os.path.isfile(path):
        return f"{MODEL_FILE} is missing"
    if not zipfile.is_zipfile(path):
        return f"{MODEL_FILE} is truncated or not a .keras archive"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except Exception as failure:  # zlib.error, BadZipFile, OSError, EOFError, ...
        return f"{MODEL_FILE} is damaged ({type(failure).__name__}: {failure})"
    if bad is not None:
        return f"{MODEL_FILE} is corrupt ({bad} fails its CRC check)"
    return None


def set_aside(checkpoint: Checkpoint) -> str | None:
    """Renames a damaged checkpoint to `damaged-<name>` beside it (kept for
    inspection, ignored by the store); returns the new path (None if it failed)."""
    target = os.path.join(os.path.dirname(checkpoint.directory), DAMAGED_PREFIX + checkpoint.name)
    if os.path.exists(target):
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.rename(checkpoint.directory, target)
    except OSError:
        return None
    return target


class CheckpointStore:
    """The resumable checkpoints of one run directory.

    Args:
      directory: where the `step-*` directories live.
      keep: how many of the newest checkpoints to keep (>= 1).
    """

    def __init__(self, directory: str, keep: int = 2):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = directory
        self.keep = keep

    def all_checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint directory, oldest first, including those whose
        state.json cannot be read (`state=None`)."""
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in os.listdir(self.directory):
            if _NAME.match(name):
                checkpoint = read_checkpoint(os.path.join(self.directory, name))
                if checkpoint is not None:
                    found.append(checkpoint)
        return sorted(found, key=lambda checkpoint: (checkpoint.position, checkpoint.name))

    def checkpoints(self) -> list[Checkpoint]:
        """Checkpoints with a readable state, oldest first."""
        return [checkpoint for checkpoint in self.all_checkpoints() if checkpoint.state is not None]

    def latest(self) -> Checkpoint | None:
        checkpoints = self.checkpoints()
        return checkpoints[-1] if checkpoints else None

    def save(self, model, position: int, state: dict) -> Checkpoint:
        """Writes the model (with its optimizer) and `state` as the checkpoint
        of data position `position`, then removes all but the newest `keep`."""
        final = os.path.join(self.directory, f"step-{int(position):08d}")
        state = {**state, "data_position": int(position)}
        with staged_directory(final, overwrite=True) as staging:
            model.save(os.path.join(staging, MODEL_FILE))
            write_json_atomically(os.path.join(staging, STATE_FILE), state)
        for old in self.all_checkpoints()[: -self.keep]:
            shutil.rmtree(old.directory, ignore_errors=True)
        return Checkpoint(final, int(position), state)
