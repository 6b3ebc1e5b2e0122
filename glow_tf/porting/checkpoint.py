"""Reads a TF1 `Saver` checkpoint as the official `train.py` writes it.

The official `model.save(path)` is `tf.train.Saver().save(sess, path,
write_meta_graph=False)`: a name-based V2 checkpoint (`PREFIX.index` +
`PREFIX.data-*`), no `.meta`, holding every global variable:

  model/...                                   the model's variables
  model/.../ExponentialMovingAverage          their Polyak averages (trainable ones)
  Variable, Variable_1, ...                   adam/adamax slots and step counter
                                              (created unnamed by optim.py)

The slots are dropped; the model variables are taken as stored, or with
`ema=True` from their `/ExponentialMovingAverage` copies (variables that are
not trained, like the shuffle indices or the LU `P` and `sign_S`, have no copy
and are taken as stored). A checkpoint written by `model.save_ema` already
stores the averages under the plain names: read it without `ema`.
"""

from __future__ import annotations

import os
import re

import numpy as np
import tensorflow as tf

from glow_tf.porting.openai_names import PortingError
from glow_tf.porting.openai_weights import OpenAIWeights

__all__ = [
    "read_checkpoint",
    "resolve_checkpoint_prefix",
    "EMA_SUFFIX",
    "UNTRAINED_LEAVES",
]

EMA_SUFFIX = "/ExponentialMovingAverage"
UNTRAINED_LEAVES = (
    "invconv/P",
    "invconv/sign_S",
    "shuffle/indices",
    "shuffle/indices_inverse",
)
_OPTIMIZER_SLOT = re.compile(r"Variable(_\d+)?")


def resolve_checkpoint_prefix(path: str | os.PathLike) -> str:
    """A checkpoint prefix from a prefix or a directory.

    For a directory, the `checkpoint` state file's latest checkpoint (looked
    up inside the directory, so absolute paths from the training machine
    still work), else its only `*.index` file.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        candidates = []
        state = tf.train.get_checkpoint_state(path)
        if state is not None and state.model_checkpoint_path:
            candidates.append(
                os.path.join(path, os.path.basename(state.model_checkpoint_path))
            )
        for candidate in candidates:
            if os.path.isfile(candidate + ".index"):
                return candidate
        indexes = sorted(
            name[: -len(".index")]
            for name in os.listdir(path)
            if name.endswith(".index")
        )
        if len(indexes) == 1:
            return os.path.join(path, indexes[0])
        if not indexes:
            raise PortingError(f"no checkpoint (*.index file) in directory {path!r}")
        raise PortingError(
            f"directory {path!r} holds {len(indexes)} checkpoints {indexes} and no usable "
            "'checkpoint' state file; pass the prefix of one, e.g. "
            f"{os.path.join(path, indexes[0])!r}"
        )
    if path.endswith(".index") or ".data-" in os.path.basename(path):
        path = (
            path[: path.rindex(".index")]
            if path.endswith(".index")
            else path[: path.rindex(".data-")]
        )
    if not os.path.isfile(path + ".index"):
        raise PortingError(
            f"no checkpoint at {path!r}: expected {path + '.index'!r} (pass the prefix, e.g. "
            "logs/model_best_loss.ckpt, or its directory)"
        )
    return path


def read_checkpoint(path: str | os.PathLike, ema: bool = False) -> OpenAIWeights:
    """Model variables of an official TF1 checkpoint, every tensor read and checked.

    Args:
      path: the checkpoint prefix (e.g. `logs/model_best_loss.ckpt`) or its
        directory.
      ema: take each trained variable's `/ExponentialMovingAverage` copy.

    Raises:
      PortingError: no checkpoint there, a truncated or corrupt checkpoint
        (every tensor the port uses is read, and checksummed by TensorFlow,
        before anything is returned), or `ema` asked of a checkpoint without
        averages.
    """
    prefix = resolve_checkpoint_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except Exception as error:  # OpError, or IndexError on short reads
        raise PortingError(
            f"cannot read checkpoint {prefix!r} (truncated or corrupt index?): {error}"
        ) from None
    slots = sorted(name for name in shapes if _OPTIMIZER_SLOT.fullmatch(name))
    averages = {
        name[: -len(EMA_SUFFIX)] for name in shapes if name.endswith(EMA_SUFFIX)
    }
    plain = sorted(
        name for name in shapes if not name.endswith(EMA_SUFFIX) and name not in slots
    )
    if ema:
        if not averages:
            raise PortingError(
                f"--ema: checkpoint {prefix!r} has no '<variable>{EMA_SUFFIX}' entries (one "
                "written by save_ema stores the averages under the plain names: read it "
                "without --ema)"
            )
        lacking = [
            name
            for name in plain
            if name not in averages and not name.endswith(UNTRAINED_LEAVES)
        ]
        if lacking:
            raise PortingError(
                f"--ema: {len(lacking)} trained variable(s) have no {EMA_SUFFIX} copy in "
                f"{prefix!r}, e.g. {lacking[:5]}"
            )
    variables = {}
    for name in plain:
        stored = name + EMA_SUFFIX if ema and name in averages else name
        try:
            variables[name] = np.asarray(reader.get_tensor(stored))
        except Exception as error:
            raise PortingError(
                f"cannot read {stored!r} from checkpoint {prefix!r} (truncated or corrupt "
                f"data file?): {error}"
            ) from None
    kind = "Polyak averages (--ema)" if ema else "trained values"
    notes = [
        f"checkpoint {prefix}: {len(shapes)} entries; {len(plain)} model variables "
        f"({kind}), {len(averages)} ExponentialMovingAverage copies"
        f"{' used' if ema else ' not used (--ema takes them)'}, {len(slots)} optimizer "
        "slots (Variable_N) ignored"
    ]
    return OpenAIWeights(variables, source=f"checkpoint {prefix}", notes=notes)
