"""A thread-local switch for modes the layers are built in (no glow_tf imports)."""

from __future__ import annotations

import contextlib
import threading

__all__ = ["ScopedFlag"]


class ScopedFlag:
    """A thread-local switch that is on only inside `with flag.enabled():`.

    How a caller asks layers for a different way of building their bijectors
    (data-dependent init, precomputed inverses for export) without threading
    an argument through every container.
    """

    def __init__(self):
        self._state = threading.local()

    @property
    def active(self) -> bool:
        return getattr(self._state, "active", False)

    @contextlib.contextmanager
    def enabled(self, value: bool = True):
        previous = self.active
        self._state.active = value
        try:
            yield
        finally:
            self._state.active = previous

    def disabled(self):
        """Off inside `with flag.disabled():`, even within an enclosing `enabled()`."""
        return self.enabled(False)
