"""Learning-rate schedules."""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["LinearWarmup"]


@keras.saving.register_keras_serializable(package="glow_tf")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to a constant rate (OpenAI's `epochs_warmup`):

        lr(step) = learning_rate * min(1, (step + 1) / warmup_steps)

    `step` is the optimizer's iteration count (0 on the first update), so the
    first update uses learning_rate / warmup_steps, not 0; `warmup_steps = 0`
    is a constant rate.
    """

    def __init__(self, learning_rate: float, warmup_steps: int):
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        if self.warmup_steps == 0:
            return tf.constant(self.learning_rate, tf.float32)
        fraction = tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return self.learning_rate * fraction

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}
