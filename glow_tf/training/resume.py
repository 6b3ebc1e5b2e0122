"""Continuing a run: which checkpoint, whether it fits the run's configs,
loading it (falling back past damaged ones) and training on from the exact
step and data position where it was written.

A checkpoint's `state.json` holds the `GlowConfig` dict ("config") and the
optimizer layout ("optimizer_layout") of the run that wrote it; a run may
continue it only with the same values, except for `RESUMABLE_DIFFERENCES`
(the precision of the coupling networks does not change the weights).

Resuming is exact: the weights, optimizer state and step come from the
checkpoint, the data stream restarts at its position (`training_dataset(...,
position=)`) and the dequantisation noise is drawn from (seed, step)
(`FlowModel.compile(noise_seed=)`), so an interrupted and resumed run trains
on the same batches with the same noise as an uninterrupted one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from glow_tf.config import GlowConfig
from glow_tf.training.checkpoint import (
    STATE_FILE,
    Checkpoint,
    CheckpointStore,
    checkpoint_problem,
    read_checkpoint,
    set_aside,
)
from glow_tf.training.config import TrainingConfig

__all__ = [
    "RESUMABLE_DIFFERENCES",
    "find_resume_checkpoint",
    "resume_candidates",
    "load_resume_checkpoint",
    "resume_point",
    "fit_from_position",
    "optimizer_layout",
    "check_compatible",
]

RESUMABLE_DIFFERENCES = ("network_dtype",)
# layout entries added since; a checkpoint without them was written with these
LAYOUT_DEFAULTS = {"dequantization": "uniform"}


def resume_candidates(resume: str, output_dir: str, store: CheckpointStore) -> list[Checkpoint]:
    """The checkpoints to try, newest first (a damaged one falls back to the
    next); empty to start fresh.

    Args:
      resume: "auto" (the checkpoints of `store`, if any), "never" (refuses a
        `store` that holds a checkpoint), or the path of a run directory, its
        checkpoints/ directory or one checkpoint.
      output_dir: the run directory (for messages).
      store: the run's own checkpoints.

    Raises:
      ValueError: "never" on a directory holding a run, or a path without
        a checkpoint.
    """
    if resume == "auto":
        return store.all_checkpoints()[::-1]
    if resume == "never":
        latest = store.latest()
        if latest is not None:
            raise ValueError(
                f"{output_dir!r} already holds a run (checkpoint {latest.name}, epoch "
                f"{latest.epoch}); continue it with --resume auto, or choose another --output-dir"
            )
        return []
    path = resume
    if os.path.isfile(path) and os.path.basename(path) in ("model.keras", STATE_FILE):
        path = os.path.dirname(path)
    if os.path.isfile(os.path.join(path, STATE_FILE)):
        return [read_checkpoint(path)]
    for directory in (os.path.join(path, "checkpoints"), path):
        found = CheckpointStore(directory).all_checkpoints()
        if found:
            return found[::-1]
    raise ValueError(
        f"--resume {resume!r}: no checkpoint there (expected a run directory, its "
        "checkpoints/ directory, or a checkpoints/step-* directory)"
    )


def find_resume_checkpoint(resume: str, output_dir: str, store: CheckpointStore):
    """The newest checkpoint with a readable state among `resume_candidates`, or None."""
    usable = [c for c in resume_candidates(resume, output_dir, store) if c.state is not None]
    return usable[0] if usable else None


def load_resume_checkpoint(
    candidates: list[Checkpoint],
    load: Callable[[Checkpoint], None],
    report: Callable[[str], None] | None = None,
    set_aside_damaged: bool = False,
) -> Checkpoint:
    """Loads the newest usable checkpoint of `candidates` (newest first) with
    `load`; a damaged one (see `checkpoint_problem`, or `load` raising) is
    reported and the previous one tried.

    Args:
      candidates: checkpoints, newest first (`resume_candidates`).
      load: loads a checkpoint into the model; raises if it cannot.
      report: prints a message (default: to stderr).
      set_aside_damaged: rename damaged checkpoints to `damaged-*` (the run's
        own store, chief only) so that the run does not meet them again.

    Raises:
      ValueError: no candidate could be loaded (each one's problem is named).
    """
    report = report or (lambda text: print(text, file=sys.stderr, flush=True))
    problems = []
    for index, checkpoint in enumerate(candidates):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            try:
                load(checkpoint)
                return checkpoint
            except Exception as failure:  # Keras raises many types for a damaged archive
                problem = f"it does not load ({type(failure).__name__}: {failure})"
        problems.append(f"{checkpoint.directory}: {problem}")
        moved = set_aside(checkpoint) if set_aside_damaged else None
        following = candidates[index + 1] if index + 1 < len(candidates) else None
        text = f"checkpoint {checkpoint.directory} is damaged: {problem}"
        text += f"; moved to {moved}" if moved else ""
        text += (
            f"; falling back to the previous checkpoint, {following.name}"
            if following is not None
            else ""
        )
        report(text)
    raise ValueError(
        "no checkpoint to resume from could be loaded ("
        + "; ".join(problems)
        + "). Pass --resume never with another --output-dir to start a new run"
    )


def resume_point(checkpoint: Checkpoint | None, steps_per_epoch: int) -> tuple[int, int, int]:
    """(data position, finished epochs, batches of the next epoch done) of a
    checkpoint; (0, 0, 0) for a fresh run. Checkpoints of older versions
    (epoch ends only, no position) continue at position epoch * steps_per_epoch."""
    if checkpoint is None:
        return 0, 0, 0
    epoch, batch = checkpoint.epoch, checkpoint.batch_in_epoch
    position = int(checkpoint.state.get("data_position", epoch * steps_per_epoch))
    if batch >= steps_per_epoch:  # --steps-per-epoch was lowered since: that epoch is done
        epoch, batch = epoch + 1, 0
    return position, epoch, batch


def check_steps_per_execution(
    steps_per_execution: int, steps_per_epoch: int, batch_in_epoch: int = 0
) -> None:
    """Raises ValueError unless `steps_per_execution` divides the steps of
    every `fit` call: Keras runs whole executions, so an epoch of 6 steps at
    4 steps per execution would train on 8 batches and the data position of
    the checkpoints would be wrong."""
    if steps_per_epoch % steps_per_execution:
        raise ValueError(
            f"--steps-per-execution {steps_per_execution} does not divide the "
            f"{steps_per_epoch} steps per epoch; pass a divisor or another --steps-per-epoch"
        )
    if batch_in_epoch % steps_per_execution:
        raise ValueError(
            f"the checkpoint to resume from is {batch_in_epoch} batches into its epoch, not a "
            f"multiple of --steps-per-execution {steps_per_execution}; resume with "
            "--steps-per-execution 1 (or a divisor of it) up to the end of that epoch"
        )


def fit_from_position(
    model,
    dataset_at: Callable[[int], object],
    position: int,
    initial_epoch: int,
    batch_in_epoch: int,
    epochs: int,
    steps_per_epoch: int,
    **fit_kwargs,
) -> None:
    """`model.fit` from a checkpoint's place in the data stream: first the
    rest of the epoch it was written in (if it was written mid-epoch), then
    the following epochs, each with the stream from the right position.

    Args:
      dataset_at: position -> the training dataset from that batch on.
      position: batches trained on so far.
      initial_epoch: finished epochs.
      batch_in_epoch: batches of epoch `initial_epoch` already trained on.
      epochs, steps_per_epoch, fit_kwargs: as for `fit`.
    """
    if batch_in_epoch and initial_epoch < epochs:
        remaining = steps_per_epoch - batch_in_epoch
        model.fit(
            dataset_at(position),
            epochs=initial_epoch + 1,
            initial_epoch=initial_epoch,
            steps_per_epoch=remaining,
            **fit_kwargs,
        )
        position, initial_epoch = position + remaining, initial_epoch + 1
    if initial_epoch < epochs:
        model.fit(
            dataset_at(position),
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            **fit_kwargs,
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
