"""Optimizers of the training recipes: Adamax (OpenAI's default) or Adam,
linear warm-up, optional Polyak / EMA weights, loss scaling for float16."""

from __future__ import annotations

import keras

from glow_tf.training.schedules import LinearWarmup

__all__ = ["make_optimizer", "OPTIMIZERS"]

OPTIMIZERS = {
    "adamax": keras.optimizers.Adamax,
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
}


def make_optimizer(
    name: str = "adamax",
    learning_rate: float = 1e-3,
    warmup_steps: int = 0,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    ema_decay: float | None = None,
    loss_scale: bool = False,
) -> keras.optimizers.Optimizer:
    """A Keras optimizer for `GlowModel.compile`.

    Args:
      name: "adamax", "adam" or "sgd" (with momentum beta_1).
      learning_rate: the rate after warm-up.
      warmup_steps: updates of linear warm-up from learning_rate / warmup_steps.
      beta_1, beta_2: the moment decays (SGD: momentum = beta_1).
      ema_decay: if set (e.g. 0.999), the optimizer also keeps an exponential
        moving average of the weights (Polyak averaging; Keras' `use_ema`),
        which the training loop swaps in for evaluation, sampling and the
        saved model.
      loss_scale: wrap in a dynamic `keras.optimizers.LossScaleOptimizer`
        (needed when the coupling networks compute in float16).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}")
    if ema_decay is not None and not 0.0 < ema_decay < 1.0:
        raise ValueError(f"ema_decay must lie in (0, 1), got {ema_decay}")
    kwargs = dict(learning_rate=LinearWarmup(learning_rate, warmup_steps))
    if name == "sgd":
        kwargs.update(momentum=beta_1)
    else:
        kwargs.update(beta_1=beta_1, beta_2=beta_2)
    if ema_decay is not None:
        kwargs.update(use_ema=True, ema_momentum=ema_decay)
    optimizer = OPTIMIZERS[name](**kwargs)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
