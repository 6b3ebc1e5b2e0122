"""glow_tf's Adam / Adamax: Keras' updates, one fused kernel per weight."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from glow_tf.training.optimizers import OPTIMIZERS, Adam, Adamax

PAIRS = {
    "adam": (Adam, keras.optimizers.Adam),
    "adamax": (Adamax, keras.optimizers.Adamax),
}


def _weights(dtype):
    rng = np.random.default_rng(0)
    return [rng.normal(size=shape).astype(dtype) for shape in ((3, 4), (5,))]


def _train(make_optimizer, dtype, steps=25, strategy=None):
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        optimizer = make_optimizer()
        variables = [keras.Variable(w) for w in _weights(dtype)]
        optimizer.build(variables)
    rng = np.random.default_rng(1)

    @tf.function
    def step(gradients):
        strategy.run(lambda g: optimizer.apply_gradients(zip(g, variables)), (gradients,))

    for _ in range(steps):
        step([tf.constant(rng.normal(size=v.shape).astype(dtype)) for v in variables])
    return [v.numpy() for v in variables], step


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_updates_as_keras(name, dtype):
    # Keras' ops round its Python constants (1 - beta_1, ...) to float32 even
    # for float64 weights, the fused kernels do not: agreement to ~1e-6 in both.
    rtol = 2e-6
    fused, keras_class = PAIRS[name]
    ours, _ = _train(lambda: fused(learning_rate=0.01, beta_2=0.99), dtype)
    theirs, _ = _train(lambda: keras_class(learning_rate=0.01, beta_2=0.99), dtype)
    start = _weights(dtype)
    for a, b, w in zip(ours, theirs, start):
        assert np.abs(a - w).max() > 0.02  # the weights moved
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_one_kernel_per_weight(name):
    fused, keras_class = PAIRS[name]
    kernel = {"adam": "ResourceApplyAdam", "adamax": "ResourceApplyAdaMax"}[name]

    def op_types(make_optimizer):
        _, step = _train(make_optimizer, "float32", steps=1)
        graph = step.get_concrete_function(
            [tf.TensorSpec((3, 4)), tf.TensorSpec((5,))]
        ).graph.as_graph_def()
        nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
        return [node.op for node in nodes]

    ours, theirs = op_types(lambda: fused(0.01)), op_types(lambda: keras_class(0.01))
    assert ours.count(kernel) == 2
    assert theirs.count(kernel) == 0
    assert len(ours) < len(theirs)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_eager_updates_build_their_constants_each_call(name):
    fused, keras_class = PAIRS[name]
    results = []
    for optimizer in (fused(0.01, beta_2=0.99), keras_class(0.01, beta_2=0.99)):
        variable = keras.Variable(_weights("float32")[0])
        optimizer.build([variable])
        rng = np.random.default_rng(2)
        for _ in range(10):  # eager calls: beta_1^t must follow the step count
            optimizer.apply_gradients([(tf.constant(rng.normal(size=(3, 4)), tf.float32), variable)])
        results.append(variable.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=2e-6, atol=2e-6)


def test_amsgrad_takes_keras_update():
    ours, _ = _train(lambda: Adam(0.01, amsgrad=True), "float32", steps=5)
    theirs, _ = _train(lambda: keras.optimizers.Adam(0.01, amsgrad=True), "float32", steps=5)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)  # the same (Keras') code path


def test_the_recipe_names_and_serialisation():
    assert OPTIMIZERS["adam"] is Adam and OPTIMIZERS["adamax"] is Adamax
    optimizer = Adamax(learning_rate=0.003, beta_1=0.8)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is Adamax
    assert restored.get_config() == optimizer.get_config()
