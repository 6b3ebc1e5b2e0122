"""Reading a flow's intermediate activations, by the names of the layers that made them.

Containers (`FlowSequence`, `Level`, `MultiScaleFlow`) apply each member
through `forward_member`, which, inside `recording_intermediates()`, stores
the member's output and log-det under its path of names, e.g.

    "level_0/step_3/act_norm"            output of that ActNorm
    "level_0/step_3/act_norm:log_det"    its log-det [B]
    "level_0/step_3/coupling/network"    the coupling network's output h
    "top_prior"                          the standardised top latent

so a check against a reference implementation (glow_tf.porting.check) reads
every step of the one multi-scale loop instead of running a copy of it.
Outside the context nothing is stored and nothing is computed twice.
"""

from __future__ import annotations

import contextlib
import threading

import tensorflow as tf

__all__ = ["recording_intermediates", "recording_active", "forward_member", "record"]

_STATE = threading.local()


def _records() -> dict | None:
    return getattr(_STATE, "records", None)


@contextlib.contextmanager
def recording_intermediates():
    """Within, forward passes store their intermediates in the yielded dict
    (path -> tensor). Run the pass eagerly: inside a tf.function the stored
    values would be symbolic."""
    previous = (_records(), getattr(_STATE, "path", ()))
    _STATE.records, _STATE.path = {}, ()
    try:
        yield _STATE.records
    finally:
        _STATE.records, _STATE.path = previous


def recording_active() -> bool:
    return _records() is not None


def record(name: str, value: tf.Tensor) -> None:
    """Stores `value` under the current path + `name` while recording."""
    records = _records()
    if records is not None:
        records["/".join((*_STATE.path, name))] = value


def forward_member(bijector, x: tf.Tensor, name: str):
    """`bijector.forward_and_log_det(x)`, recorded under `name` while recording."""
    if _records() is None:
        return bijector.forward_and_log_det(x)
    _STATE.path = (*_STATE.path, name)
    try:
        y, log_det = bijector.forward_and_log_det(x)
    finally:
        _STATE.path = _STATE.path[:-1]
    record(name, y)
    record(name + ":log_det", log_det)
    return y, log_det
