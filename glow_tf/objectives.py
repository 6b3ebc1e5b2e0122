"""Log-likelihoods in nats and bits per dimension, as OpenAI's `bits_x` / `bits_y`."""

from __future__ import annotations

import math

import tensorflow as tf

__all__ = ["standard_normal_log_prob", "bits_per_dim", "classification_bits"]


def standard_normal_log_prob(eps: tf.Tensor) -> tf.Tensor:
    """sum over all but the first axis of log N(eps; 0, 1); shape [B]."""
    log_density = -0.5 * (math.log(2.0 * math.pi) + tf.square(eps))
    return tf.reduce_sum(tf.reshape(log_density, [tf.shape(eps)[0], -1]), axis=-1)


def bits_per_dim(log_prob_continuous: tf.Tensor, num_dims: int, num_bins: int) -> tf.Tensor:
    """OpenAI's `bits_x` of each example:

        objective = log p(x + u) - D * log(num_bins)
        bits_x = -objective / (D * log 2)

    where `log_prob_continuous` = log p(x + u) is the density of the
    dequantised image in the [-0.5, 0.5) scale, and the second term is the
    log-volume of one quantisation bin of that scale.
    """
    objective = log_prob_continuous - num_dims * math.log(num_bins)
    return -objective / (num_dims * math.log(2.0))


def classification_bits(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Cross-entropy of integer labels under logits, in bits; shape [B]."""
    nats = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=logits
    )
    return nats / math.log(2.0)
