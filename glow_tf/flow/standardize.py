"""Standardize: z -> eps under a diagonal Gaussian with given mean and scale."""

from __future__ import annotations

import tensorflow as tf

from glow_tf.flow.base import GlowBijector

__all__ = ["Standardize"]


class Standardize(GlowBijector):
    """Elementwise z -> eps = (z - mean) / exp(log_scale) on events [h, w, c].

    `mean` and `log_scale` broadcast against [B, h, w, c] (a batch of
    per-example parameters, or [1, h, w, c] shared by all):

        forward:  eps = (z - mean) * exp(-log_scale)
        inverse:  z = mean + exp(log_scale) * eps
        log|det d eps/dz| = -sum(log_scale)

    With a standard-normal eps this gives z the density N(mean, exp(log_scale)^2):
    log p(z) = log N(eps; 0, 1) - sum(log_scale), OpenAI's `gaussian_diag.logp`.
    Scaling eps by a temperature T before the inverse is OpenAI's `eps_std`.
    """

    def __init__(self, mean, log_scale, validate_args=False, name="standardize"):
        parameters = dict(locals())
        self.mean = tf.convert_to_tensor(mean)
        self.log_scale = tf.convert_to_tensor(log_scale, dtype=self.mean.dtype)
        super().__init__(
            dtype=self.mean.dtype, validate_args=validate_args, parameters=parameters, name=name
        )

    def _log_det(self, z):
        log_scale = tf.broadcast_to(self.log_scale, tf.shape(z))
        return -tf.reduce_sum(log_scale, axis=[1, 2, 3])

    def _forward_and_log_det(self, z):
        return (z - self.mean) * tf.exp(-self.log_scale), self._log_det(z)

    def _inverse_and_log_det(self, eps):
        return self.mean + tf.exp(self.log_scale) * eps, -self._log_det(eps)
