"""Transform and log-det come from one evaluation of each coupling network."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from glow_tf import GlowModel
from glow_tf.flow import AffineCoupling
from glow_tf.nn import CouplingNetwork

tfb, tfd = tfp.bijectors, tfp.distributions


class CountingNetwork:
    def __init__(self, channels):
        self.calls = 0
        self.kernel = tf.constant(np.random.default_rng(0).standard_normal((channels, 2 * channels)) * 0.1, tf.float32)

    def __call__(self, x1):
        self.calls += 1
        return tf.einsum("bhwc,cd->bhwd", x1, self.kernel)


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_forward_then_log_det_runs_the_network_once(mode):
    network = CountingNetwork(2)
    bijector = AffineCoupling(network)

    def both(x):
        return bijector.forward(x), bijector.forward_log_det_jacobian(x, event_ndims=3)

    if mode == "function":
        both = tf.function(both)
    both(tf.ones([3, 2, 2, 4]))
    assert network.calls == 1


def test_transformed_distribution_log_prob_runs_the_network_once():
    network = CountingNetwork(2)
    flow = AffineCoupling(network)
    distribution = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0.0, 1.0), [2, 2, 4]), tfb.Invert(flow)
    )
    log_prob = distribution.log_prob(tf.ones([3, 2, 2, 4]))
    assert network.calls == 1
    assert log_prob.shape == [3]


@pytest.mark.parametrize("loop_steps", [False, True])
def test_model_objective_runs_each_coupling_network_once(tiny_model, monkeypatch, loop_steps):
    """Each coupling network is traced once per pass: unrolled, once per
    step; as a loop (`StepLoop`), once per level, the one body running the
    level's K steps."""
    model = tiny_model
    if not loop_steps:
        model = GlowModel(tiny_model.config.replace(loop_steps=False))
        model.build()
        model.set_weights(tiny_model.get_weights())
    calls = []
    original = CouplingNetwork.call

    def counting(self, inputs, training=None):
        calls.append(self.path)
        return original(self, inputs, training=training)

    monkeypatch.setattr(CouplingNetwork, "call", counting)
    images = np.zeros((2, *model.config.image_shape), np.uint8)
    tf.function(model.bits_per_dim)(images)  # a fresh trace sees every call
    config = model.config
    traced = config.num_levels if loop_steps else config.num_levels * config.num_steps
    assert len(calls) == traced
    assert len(set(calls)) == len(calls)