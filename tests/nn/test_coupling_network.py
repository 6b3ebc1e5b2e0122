"""A coupling network with a mixed dtype policy computes in half precision in
training passes and in float32 on the same float32 weights in all others."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.nn.coupling_network import CouplingNetwork


def _network(dtype=None):
    network = CouplingNetwork(8, 4, seed=0, dtype=dtype)
    network.build((None, 4, 4, 2))
    rng = np.random.default_rng(0)
    for weight in network.conv_out.weights:
        weight.assign(rng.normal(0.0, 0.1, weight.shape).astype(np.float32))
    return network


def _conv_dtypes(network, x, training):
    graph = tf.function(lambda x: network(x, training=training)).get_concrete_function(x).graph
    return {op.get_attr("T").name for op in graph.get_operations() if op.type == "Conv2D"}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_only_in_training(dtype):
    reference = _network()
    network = _network(f"mixed_{dtype}")
    network.set_weights(reference.get_weights())
    assert all(w.dtype == "float32" for w in network.weights)
    x = tf.random.stateless_normal([2, 4, 4, 2], seed=[1, 2])

    inference = network(x, training=False)
    assert inference.dtype == tf.float32
    np.testing.assert_array_equal(inference, reference(x))
    assert _conv_dtypes(network, x, training=False) == {"float32"}

    with tf.GradientTape() as tape:
        trained = network(x, training=True)
        loss = tf.reduce_sum(tf.cast(trained, tf.float32) ** 2)
    assert trained.dtype == dtype
    error = np.max(np.abs(tf.cast(trained, tf.float32) - reference(x)))
    assert 0 < error < 0.05 * np.max(np.abs(reference(x)))
    assert _conv_dtypes(network, x, training=True) == {dtype}
    gradients = tape.gradient(loss, network.trainable_variables)
    assert all(g is not None and g.dtype == tf.float32 for g in gradients)
