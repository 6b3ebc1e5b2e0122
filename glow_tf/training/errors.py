"""The exception that stops a training run on purpose."""

from __future__ import annotations

__all__ = ["TrainingStopped"]


class TrainingStopped(RuntimeError):
    """Raised from a callback to stop `fit` with a message for the user
    (a NaN/Inf loss, a failed invertibility check, non-finite weights).

    The checkpoint callbacks never write after it, so the last good
    checkpoint stays intact.
    """
