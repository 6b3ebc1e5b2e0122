"""SIGTERM / SIGINT during training: finish the step, checkpoint, exit cleanly.

    with StopRequest() as stop:            # handlers installed while fit runs
        model.fit(..., callbacks=[..., StopOnSignal(stop, saver)])

The first SIGTERM (a preemptible machine going away, `kill`, a scheduler)
or SIGINT (Ctrl-C) only records itself; `glow_tf.training.callbacks.
StopOnSignal` writes a checkpoint at the next step boundary and raises
`TrainingInterrupted` (exit code 128 + signal: 143 for SIGTERM, 130 for
SIGINT). A second signal acts as it would without the handler (SIGTERM
kills, Ctrl-C raises KeyboardInterrupt). Handlers can only be installed
from the main thread; elsewhere the context does nothing.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["StopRequest", "STOP_SIGNALS"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Records the first stop signal received while the context is active.

    Attributes:
      signal_number: the signal received, or None.
    """

    def __init__(self, signals=STOP_SIGNALS):
        self.signals = tuple(signals)
        self.signal_number = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def _handle(self, signal_number, frame):
        if self.signal_number is None:
            self.signal_number = signal_number
        # a second signal of this kind acts as it would without us
        signal.signal(signal_number, self._previous.get(signal_number, signal.SIG_DFL))

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for number in self.signals:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info):
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}
        return False
