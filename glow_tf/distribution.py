"""A `tfd.TransformedDistribution` view of a Glow model, for TFP users."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

__all__ = ["glow_distribution"]

tfb = tfp.bijectors
tfd = tfp.distributions


def glow_distribution(model, y=None, temperature: float = 1.0) -> tfd.TransformedDistribution:
    """p(x | y) of the flow's continuous input x in [-0.5, 0.5)^(H, W, C).

        latents ~ N(0, temperature^2 I_D),   x = flow^-1(latents)

    `sample(n)` draws continuous images (`glow_tf.data.postprocess` turns
    them into uint8); `log_prob(x)` is log p(x) in nats, whose bits/dim is
    `-(log_prob(x) - D log n_bins) / (D log 2)` for dequantised inputs.
    A class-conditional model needs `y`: one label (broadcast to every
    sample) or one per event.

    The flow is built from the model's weights at call time; build a new
    distribution after training.
    """
    flow = model.flow(y)
    base = tfd.Sample(
        tfd.Normal(tf.constant(0.0, tf.float32), tf.constant(temperature, tf.float32)),
        sample_shape=[flow.num_latents],
    )
    return tfd.TransformedDistribution(base, tfb.Invert(flow), name="glow")
