"""The exceptions that stop a training run on purpose."""

from __future__ import annotations

import signal

__all__ = ["TrainingStopped", "TrainingInterrupted"]


class TrainingStopped(RuntimeError):
    """Raised from a callback to stop `fit` with a message for the user
    (a NaN/Inf loss, a failed invertibility check, non-finite weights).

    The checkpoint callbacks never write after it, so the last good
    checkpoint stays intact.
    """


class TrainingInterrupted(RuntimeError):
    """Raised from a callback to end `fit` at a step boundary after a SIGTERM
    or SIGINT, once the checkpoint of that step is written.

    Attributes:
      signal_number: the signal that asked the run to stop.
      exit_code: 128 + signal_number, the shell's convention (143 for
        SIGTERM, 130 for SIGINT).
    """

    def __init__(self, signal_number: int, message: str):
        super().__init__(message)
        self.signal_number = int(signal_number)

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signal_number).name
