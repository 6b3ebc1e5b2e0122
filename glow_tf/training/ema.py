"""Polyak / EMA weights of a Keras optimizer with `use_ema=True`, swapped in
exactly (by copy, not by arithmetic) for evaluation, sampling and saving."""

from __future__ import annotations

import contextlib

import keras

from glow_tf.compat import moving_average_pairs

__all__ = ["ema_weights", "has_ema", "EMAEvaluation"]


def _base_optimizer(optimizer):
    return getattr(optimizer, "inner_optimizer", optimizer)


def has_ema(model) -> bool:
    optimizer = getattr(model, "optimizer", None)
    return bool(optimizer is not None and getattr(_base_optimizer(optimizer), "use_ema", False))


@contextlib.contextmanager
def ema_weights(model):
    """Within this context the model's trainable weights hold the optimizer's
    moving averages; on exit the training weights come back bit for bit.
    Does nothing for an optimizer without EMA (or one not yet built)."""
    pairs = moving_average_pairs(_base_optimizer(model.optimizer)) if has_ema(model) else []
    saved = [variable.numpy() for variable, _ in pairs]
    for variable, average in pairs:
        variable.assign(average)
    try:
        yield
    finally:
        for (variable, _), value in zip(pairs, saved, strict=True):
            variable.assign(value)


class EMAEvaluation(keras.callbacks.Callback):
    """Evaluates (`validation_data` of `fit`) with the EMA weights."""

    def __init__(self):
        super().__init__()
        self._context = None

    def on_test_begin(self, logs=None):
        self._context = ema_weights(self.model)
        self._context.__enter__()

    def on_test_end(self, logs=None):
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None
