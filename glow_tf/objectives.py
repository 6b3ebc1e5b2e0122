"""Log-likelihoods in nats and bits per dimension, as OpenAI's `bits_x` / `bits_y`."""

from __future__ import annotations

import math

import tensorflow as tf

__all__ = ["standard_normal_log_prob", "bits_per_dim", "classification_bits"]


def standard_normal_log_prob(eps: tf.Tensor) -> tf.Tensor:
    """sum over all but the first axis of log N(eps; 0, 1); shape [B]."""
    log_density = -0.5 * (math.log(2.0 * math.pi) + tf.square(eps))
    return tf.reduce_sum(tf.reshape(log_density, [tf.shape(eps)[0], -1]), axis=-1)


def bits_per_dim(log_likelihood: tf.Tensor, num_dims: int) -> tf.Tensor:
    """Bits per dimension of each example (OpenAI's `bits_x`):

        bits/dim = -log_likelihood / (D * log 2)

    where `log_likelihood` = log p(x + u) - log q(u | x) is the dequantised
    lower bound of the discrete log-likelihood in nats: the density of the
    continuous input in the [-0.5, 0.5) scale minus the log-density of the
    dequantisation noise (D * log n_bins for uniform noise, the log-volume of
    one quantisation bin).
    """
    return -log_likelihood / (num_dims * math.log(2.0))


def classification_bits(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Cross-entropy of integer labels under logits, in bits; shape [B]."""
    nats = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=logits
    )
    return nats / math.log(2.0)
