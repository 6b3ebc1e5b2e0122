"""Optimizers of the training recipes: OpenAI's Adamax, Keras' Adamax or Adam,
linear warm-up, optional Polyak / EMA weights, loss scaling for float16."""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from glow_tf.training.schedules import LinearWarmup

__all__ = ["make_optimizer", "initial_loss_scale", "Adam", "Adamax", "OpenAIAdamax", "OPTIMIZERS"]


def _fusable(variable, gradient) -> bool:
    """Whether one fused TF kernel can update `variable` in place: a dense
    gradient, a plain resource variable, no distribution strategy (under one,
    Keras' per-replica update path is kept)."""
    return (
        not tf.distribute.has_strategy()
        and isinstance(gradient, tf.Tensor)
        and getattr(variable, "handle", None) is not None
        and tf.as_dtype(variable.dtype) in (tf.float32, tf.float64)
    )


def _slot_handles(optimizer, variable, *slot_lists):
    index = optimizer._get_variable_index(variable)  # noqa: SLF001 (Keras' own lookup)
    return [slots[index].handle for slots in slot_lists]


def _update_constants(optimizer, learning_rate, dtype) -> dict:
    """lr, beta_1, beta_2, epsilon and beta_i^t (t = iterations + 1) in
    `dtype`, built once per update (graph, learning-rate tensor) and shared
    by every weight's fused kernel, rather than a dozen ops per weight
    (eagerly, built afresh each call: nothing stale is reused)."""
    key = (tf.compat.v1.get_default_graph(), learning_rate, tf.as_dtype(dtype))
    cache = getattr(optimizer, "_glow_tf_update_constants", None)
    if tf.executing_eagerly() or cache is None or any(a is not b for a, b in zip(cache[0], key)):
        step = ops.cast(optimizer.iterations + 1, dtype)
        beta_1 = ops.cast(optimizer.beta_1, dtype)
        beta_2 = ops.cast(optimizer.beta_2, dtype)
        constants = dict(
            lr=ops.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=ops.cast(optimizer.epsilon, dtype),
            beta1_power=ops.power(beta_1, step),
            beta2_power=ops.power(beta_2, step),
        )
        cache = (key, constants)
        optimizer._glow_tf_update_constants = cache
    return cache[1]


@keras.saving.register_keras_serializable(package="glow_tf")
class Adam(keras.optimizers.Adam):
    """Keras' Adam, with each weight's update as one fused TF kernel
    (`ResourceApplyAdam`) instead of about twenty graph ops: the same update,

        m = m + (1 - beta_1) (g - m);   v = v + (1 - beta_2) (g^2 - v)
        w = w - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

    so a training graph has one update op per weight: tracing and graph
    optimisation (the time to the first step) and the per-step launch cost
    shrink with it. Falls back to Keras' update for amsgrad, under a
    distribution strategy, and for other dtypes.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not _fusable(variable, gradient):
            return super().update_step(gradient, variable, learning_rate)
        constants = _update_constants(self, learning_rate, variable.dtype)
        m, v = _slot_handles(self, variable, self._momentums, self._velocities)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m, v=v, grad=tf.cast(gradient, variable.dtype), **constants
        )


@keras.saving.register_keras_serializable(package="glow_tf")
class Adamax(keras.optimizers.Adamax):
    """Keras' Adamax, with each weight's update as one fused TF kernel
    (`ResourceApplyAdaMax`) instead of about twenty graph ops: the same update,

        m = m + (1 - beta_1) (g - m);   u = max(beta_2 u, |g|)
        w = w - lr / (1 - beta_1^t) * m / (u + epsilon)

    (see `Adam` for why). Falls back to Keras' update under a distribution
    strategy and for other dtypes.
    """

    def update_step(self, gradient, variable, learning_rate):
        if not _fusable(variable, gradient):
            return super().update_step(gradient, variable, learning_rate)
        constants = dict(_update_constants(self, learning_rate, variable.dtype))
        del constants["beta2_power"]
        m, u = _slot_handles(self, variable, self._m, self._u)
        tf.raw_ops.ResourceApplyAdaMax(
            var=variable.handle, m=m, v=u, grad=tf.cast(gradient, variable.dtype), **constants
        )


@keras.saving.register_keras_serializable(package="glow_tf")
class OpenAIAdamax(keras.optimizers.Optimizer):
    """Adamax as the official Glow code implements it (openai/glow `optim.py`,
    `adamax`). For each weight w with gradient g, at update t = 1, 2, ...:

        m1 = beta_1 * m1 + (1 - beta_1) * g
        m2 = max(beta_2 * m2, |g|)
        alpha_t = learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        w = decay_factor * w - alpha_t * m1 / (m2 + epsilon)

    with m1 = m2 = 0 before the first update. Unlike Keras' `Adamax`
    (Kingma & Ba 2014, section 7.1: step learning_rate / (1 - beta_1^t) *
    m1 / (m2 + epsilon)), the step carries Adam's sqrt(1 - beta_2^t) factor:
    the first updates are about sqrt(1 - beta_2) times the learning rate
    (0.03x for beta_2 = 0.999), growing to the full rate as t >> 1 / (1 - beta_2).
    OpenAI sets beta_2 = 1 - 1 / (train_its * polyak_epochs), the same decay
    as its Polyak averaging.

    The official code reads its counter t (starting at 1) in the same graph
    step that increments it, without ordering the two; t = 1 at the first
    update is what it computes when the read comes first, and what this
    optimizer uses (t = iterations + 1).

    Args:
      learning_rate: alpha (float or schedule; OpenAI's warm-up is a schedule).
      beta_1: OpenAI's `--beta1`.
      beta_2: decay of the infinity norm.
      epsilon: OpenAI's 1e-8.
      decay_factor: OpenAI's `--weight_decay`, a multiplicative factor on the
        weight at each update (1.0: none). Not Keras' `weight_decay`
        (decoupled decay scaled by the learning rate), which also works.
      **kwargs: Keras optimizer options (`use_ema`, `clipnorm`, `name`, ...).

    References:
      Kingma & Ba (2014), Adam, https://arxiv.org/abs/1412.6980
      openai/glow, optim.py, https://github.com/openai/glow
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        decay_factor: float = 1.0,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if not 0.0 <= beta_1 < 1.0 or not 0.0 <= beta_2 < 1.0:
            raise ValueError(f"beta_1 and beta_2 must lie in [0, 1), got {beta_1}, {beta_2}")
        if not 0.0 < decay_factor <= 1.0:
            raise ValueError(f"decay_factor must lie in (0, 1], got {decay_factor}")
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.decay_factor = decay_factor

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._m1, self._m2 = self.add_optimizer_variables(var_list, ["m1", "m2"])

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        t = ops.cast(self.iterations + 1, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        alpha_t = (
            ops.cast(learning_rate, dtype)
            * ops.sqrt(1.0 - ops.power(beta_2, t))
            / (1.0 - ops.power(beta_1, t))
        )
        index = self._get_variable_index(variable)
        m1 = beta_1 * self._m1[index] + (1.0 - beta_1) * gradient
        m2 = ops.maximum(beta_2 * self._m2[index], ops.abs(gradient))
        self.assign(self._m1[index], m1)
        self.assign(self._m2[index], m2)
        step = alpha_t * m1 / (m2 + self.epsilon)
        if self.decay_factor == 1.0:
            self.assign_sub(variable, step)
        else:
            self.assign(variable, self.decay_factor * variable - step)

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "decay_factor": self.decay_factor,
        }


OPTIMIZERS = {
    "openai_adamax": OpenAIAdamax,
    "adamax": Adamax,
    "adam": Adam,
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
      name: "openai_adamax" (the official code's Adamax, see `OpenAIAdamax`),
        "adamax" (Keras'), "adam" or "sgd" (with momentum beta_1).
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
