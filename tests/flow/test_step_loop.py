"""StepLoop: a level's steps as one tf.while_loop computes what the unrolled
steps compute; its recomputed backward pass gives autodiff's gradients; the
traced graph does not grow with the number of steps."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import GlowConfig, GlowModel
from glow_tf.flow import precomputed_inverses, recording_intermediates
from glow_tf.flow.step_loop import StepLoop
from tests.conftest import tiny_images, trained_like

LOOPED = GlowConfig(
    image_shape=(8, 8, 3),
    num_levels=2,
    num_steps=3,
    hidden_channels=8,
    num_bits=5,
    lu_decomposed=True,
    loop_steps=True,
)


VARIANTS = {
    "unrolled": LOOPED.replace(loop_steps=False),
    "loop": LOOPED,
    "recompute": LOOPED.replace(recompute_gradients=True),
}


@pytest.fixture(scope="module")
def models32() -> dict[str, GlowModel]:
    """The same trained-like weights, unrolled / looped / looped + recomputed."""
    reference = trained_like(GlowModel(VARIANTS["unrolled"]), tiny_images(8, (8, 8, 3), seed=3))
    models = {"unrolled": reference}
    for name in ("loop", "recompute"):
        models[name] = GlowModel(VARIANTS[name])
        models[name].build()
        models[name].set_weights(reference.get_weights())
    return models


@pytest.fixture(scope="module")
def models64(models32) -> dict[str, GlowModel]:
    """`models32`'s weights in float64 models (flows only: no dequantiser pass)."""
    weights = models32["unrolled"].get_weights()
    models = {}
    for name, config in VARIANTS.items():
        models[name] = GlowModel(config, dtype="float64")
        models[name].build()
        for variable, value in zip(models[name].weights, weights):
            variable.assign(np.asarray(value).astype(variable.dtype))
    return models


def _flow_input(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.uniform(-0.5, 0.5, (4, *LOOPED.image_shape)), dtype)


def _loss(model, x):
    y, log_det = model.flow(training=True).forward_and_log_det(x)
    return tf.reduce_mean(0.5 * tf.reduce_sum(tf.square(y), -1) - log_det)


def _gradients(model, x):
    with tf.GradientTape() as tape:
        loss = _loss(model, x)
    return loss, tape.gradient(loss, model.trainable_variables)


def test_the_levels_run_their_steps_as_one_loop(models32):
    for name, expected in (("unrolled", False), ("loop", True), ("recompute", True)):
        level = models32[name].levels[0]
        assert level.runs_steps_as_loop(training=True) is expected
        steps = level.bijector(training=True).bijectors
        assert any(isinstance(b, StepLoop) for b in steps) is expected


def test_loop_computes_what_the_unrolled_steps_compute(models32):
    x = _flow_input(tf.float32)
    flows = {name: models32[name].flow(training=False) for name in ("unrolled", "loop")}
    y, log_det = flows["unrolled"].forward_and_log_det(x)
    y_loop, log_det_loop = flows["loop"].forward_and_log_det(x)
    np.testing.assert_allclose(y_loop, y, rtol=0, atol=1e-5)
    np.testing.assert_allclose(log_det_loop, log_det, rtol=1e-6)
    assert float(tf.reduce_max(tf.abs(log_det))) > 1.0  # the steps are not the identity
    x_back, inverse_log_det = flows["loop"].inverse_and_log_det(y)
    np.testing.assert_allclose(x_back, x, rtol=0, atol=1e-5)
    np.testing.assert_allclose(inverse_log_det, -log_det, rtol=1e-5)


@pytest.mark.parametrize("dtype,models,rtol", [("float32", "models32", 1e-5), ("float64", "models64", 1e-10)])
def test_loop_and_recomputed_gradients_equal_autodiff(dtype, models, rtol, request):
    models = request.getfixturevalue(models)
    x = _flow_input(tf.as_dtype(dtype), seed=1)
    loss, reference = _gradients(models["unrolled"], x)
    assert all(g is not None for g in reference)
    scale = max(float(tf.reduce_max(tf.abs(g))) for g in reference)
    for name in ("loop", "recompute"):
        loss_other, gradients = _gradients(models[name], x)
        np.testing.assert_allclose(loss_other, loss, rtol=rtol)
        for variable, g, g_ref in zip(models[name].trainable_variables, gradients, reference):
            np.testing.assert_allclose(
                g, g_ref, rtol=rtol, atol=rtol * scale, err_msg=f"{name}: {variable.path}"
            )


def test_recomputed_gradients_inside_a_tf_function(models32):
    model = models32["recompute"]
    x = _flow_input(tf.float32, seed=2)
    eager = _gradients(model, x)[1]
    traced = tf.function(lambda x: _gradients(model, x)[1])(x)
    scale = max(float(tf.reduce_max(tf.abs(g))) for g in eager)
    for g, g_traced in zip(eager, traced):
        np.testing.assert_allclose(g_traced, g, rtol=1e-5, atol=1e-5 * scale)


def test_export_recording_and_init_unroll_the_steps(models32):
    level = models32["loop"].levels[0]
    with precomputed_inverses():
        assert not level.runs_steps_as_loop()
    with recording_intermediates():
        assert not level.runs_steps_as_loop()
    assert level.runs_steps_as_loop()


@functools.lru_cache(maxsize=None)
def _graph_size(config: GlowConfig) -> tuple[int, int]:
    """(nodes of the traced loss + gradient graph with its functions, trainable weights)."""
    model = GlowModel(config)
    model.initialize(tiny_images(4, config.image_shape))
    spec = tf.TensorSpec([None, *config.image_shape], tf.float32)
    graph = tf.function(lambda x: _gradients(model, x)).get_concrete_function(spec).graph
    graph_def = graph.as_graph_def()
    nodes = len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)
    return nodes, len(model.trainable_variables)


def test_traced_graph_grows_with_levels_not_steps():
    """The time-to-first-step guard: two more steps per level add a few nodes
    per weight (its read, stacking, gradient output), not a step's graph."""
    small = LOOPED.replace(image_shape=(8, 8, 1), hidden_channels=4, num_steps=2)

    def growth(**changes):
        (nodes_2, weights_2), (nodes_4, weights_4) = (
            _graph_size(small.replace(num_steps=k, **changes)) for k in (2, 4)
        )
        return nodes_4 - nodes_2, weights_4 - weights_2

    nodes, weights = growth()
    assert nodes <= 4 * weights
    unrolled_nodes, _ = growth(loop_steps=False)
    assert unrolled_nodes > 4 * nodes  # what the guard guards against
    assert _graph_size(small.replace(num_levels=3))[0] > _graph_size(small)[0] + 4 * weights
