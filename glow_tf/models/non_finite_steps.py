"""NonFiniteSteps: the train step's own record of the updates it did not apply.

`FlowModel.train_step` checks in the graph whether an update's loss and
(summed) gradients are finite and skips the update when they are not; this
record counts those steps so that a callback can read it every few hundred
steps instead of reading the loss on the host after every batch.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

__all__ = ["NonFiniteSteps", "NonFiniteSummary"]


class NonFiniteSummary(NamedTuple):
    """One host read of a `NonFiniteSteps` record.

    Attributes:
      count: updates skipped since the last reset.
      consecutive: skipped updates since the last applied one.
      longest_run: the most consecutive skipped updates since the last reset.
      first_step: the optimizer step the first skipped update would have
        made (optimizer iterations + 1 at that time), 0 if none.
      first_loss: the loss of that first skipped update (NaN, inf or finite
        when only the gradients were not finite).
    """

    count: int
    consecutive: int
    longest_run: int
    first_step: int
    first_loss: float


class NonFiniteSteps:
    """Counters of skipped (non-finite) training updates, kept on the device.

    Plain `tf.Variable`s on purpose: Keras does not track them, so they are
    not model weights (not saved, not exported, not in `model.weights`).
    Under a `tf.distribute` strategy every replica records the same values
    (the decision is taken on all-reduced quantities); the first replica's
    are kept.

        counts = [count, consecutive, longest_run, first_step]   int64 [4]
        first_loss                                               float32 []
    """

    def __init__(self, strategy: tf.distribute.Strategy | None = None):
        strategy = strategy or tf.distribute.get_strategy()
        options = dict(
            trainable=False,
            synchronization=tf.VariableSynchronization.ON_WRITE,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        with strategy.scope():
            self.counts = tf.Variable(tf.zeros([4], tf.int64), name="non_finite_counts", **options)
            self.first_loss = tf.Variable(0.0, name="first_non_finite_loss", **options)

    def record(self, finite: tf.Tensor, loss: tf.Tensor, iterations: tf.Tensor) -> None:
        """Records one update (in the graph): `finite` says whether it was applied."""
        count, consecutive, longest_run, first_step = tf.unstack(self.counts)
        skipped = tf.logical_not(finite)
        first = tf.logical_and(skipped, tf.equal(count, 0))
        increment = tf.cast(skipped, tf.int64)
        consecutive = (consecutive + 1) * increment
        self.counts.assign(
            tf.stack(
                [
                    count + increment,
                    consecutive,
                    tf.maximum(longest_run, consecutive),
                    tf.where(first, tf.cast(iterations, tf.int64) + 1, first_step),
                ]
            )
        )
        self.first_loss.assign(tf.where(first, tf.cast(loss, tf.float32), self.first_loss))

    def read(self) -> NonFiniteSummary:
        """The record, read on the host (two scalar transfers)."""
        count, consecutive, longest_run, first_step = (int(v) for v in self.counts.numpy())
        return NonFiniteSummary(
            count, consecutive, longest_run, first_step, float(self.first_loss.numpy())
        )

    def reset(self) -> None:
        self.counts.assign(tf.zeros([4], tf.int64))
        self.first_loss.assign(0.0)
