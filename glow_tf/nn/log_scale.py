"""Log-scales stored as OpenAI stores them: a weight `logs`, log_scale = 3 * logs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["LOGSCALE_FACTOR", "StoredAsLogs"]

LOGSCALE_FACTOR = 3.0

_FACTOR_KEY = "logscale_factor"


class StoredAsLogs:
    """Mixin for a Keras layer whose log-scale is OpenAI's `logs` weight:

        log_scale = 3 * logs        (OpenAI's logscale_factor = 3)

    Gradient steps on `logs` then move log_scale as in the official code (an
    optimizer's step on `logs` is a step three times as large on log_scale),
    and OpenAI's `logs` variables map one to one onto these weights.

    The layer's saved weights carry the factor under the key
    "logscale_factor"; weights saved before glow_tf stored `logs` (a weight
    `log_scale` in the same slot) lack it and are refused on loading instead
    of being read as `logs`, which would triple every log-scale.
    """

    def add_logs_weight(self, size: int):
        """Creates the zero-initialised weight `logs` [size], read as stored
        (no autocasting: the layer casts it to the precision it computes in)."""
        self.logs = self.add_weight(
            shape=(size,), initializer="zeros", name="logs", autocast=False
        )
        return self.logs

    @property
    def log_scale(self) -> tf.Tensor:
        """3 * logs, read-only [size], in the weight's dtype."""
        return LOGSCALE_FACTOR * tf.convert_to_tensor(self.logs)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[_FACTOR_KEY] = np.float32(LOGSCALE_FACTOR)

    def load_own_variables(self, store):
        if _FACTOR_KEY not in store.keys():
            raise ValueError(
                f"layer {self.name!r}: these weights were saved before glow_tf stored "
                "log-scales as OpenAI's `logs` (log_scale = 3 * logs); loading them would "
                "read each log_scale as logs and triple it. Load the file with the glow_tf "
                "version that wrote it, or port the run again from its OpenAI checkpoint."
            )
        factor = float(np.asarray(store[_FACTOR_KEY]))
        if factor != LOGSCALE_FACTOR:
            raise ValueError(
                f"layer {self.name!r}: weights stored with logscale_factor {factor}, "
                f"expected {LOGSCALE_FACTOR}"
            )
        weights = self._trainable_variables + self._non_trainable_variables
        stored = sorted(key for key in store.keys() if key != _FACTOR_KEY)
        if len(stored) != len(weights):
            raise ValueError(
                f"layer {self.name!r} has {len(weights)} weights, the file stores {len(stored)}"
            )
        for i, weight in enumerate(weights):
            weight.assign(store[f"{i}"])
