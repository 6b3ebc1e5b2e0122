"""Optimizers of the training recipes: Adamax (OpenAI's default) or Adam,
linear warm-up, optional Polyak / EMA weights, loss scaling for float16."""

from __future__ import annotations

import math

import keras

from glow_tf.training.schedules import LinearWarmup

__all__ = ["make_optimizer", "initial_loss_scale", "OPTIMIZERS"]

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
    loss_scale: float | None = None,
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
      loss_scale: if set, wrap in a dynamic `keras.optimizers.LossScaleOptimizer`
        starting at this scale (needed when the coupling networks compute in
        float16; see `initial_loss_scale`).
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
    if loss_scale is not None:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=loss_scale)
    return optimizer


def initial_loss_scale(num_dims: int) -> float:
    """A starting loss scale for float16 coupling networks:

        2**ceil(log2(D)), at most 2**15 (Keras' default)

    The loss is a mean over the D = H * W * C dimensions (bits/dim), so the
    gradients reaching the activations shrink like 1/D; scaling by about D
    brings them to order one. Keras' fixed 2**15 overflows float16 on small
    images (8x8 digits: the first updates are skipped, and the dynamic scale
    only shrinks by halves), which alone cost 0.05 bits/dim after 115 updates.
    """
    return float(min(2**15, 2 ** math.ceil(math.log2(max(2, num_dims)))))
