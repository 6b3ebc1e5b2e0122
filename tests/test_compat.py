"""The private Keras / TensorFlow / TFP behaviour glow_tf/compat.py relies on,
checked on the installed versions: when one of these fails after an upgrade,
fix glow_tf/compat.py (and only it)."""

import importlib.metadata
import inspect
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from keras.src.backend.common import global_state
from keras.src.backend.tensorflow import trainer as keras_tf_trainer
from tensorflow.python.distribute.collective_all_reduce_strategy import (
    CollectiveAllReduceExtended,
)

from glow_tf import compat
from glow_tf.training.ema import ema_weights

tfb = tfp.bijectors


def test_installed_versions_were_checked():
    unchecked = {}
    for name, checked in compat.COMPAT_CHECKED.items():
        version = importlib.metadata.version(name)
        if ".".join(version.split(".")[:2]) not in checked:
            unchecked[name] = (version, checked)
    assert not unchecked, (
        f"installed versions outside those glow_tf/compat.py was checked on: {unchecked} "
        "(installed, checked); re-check glow_tf/compat.py against the new version "
        "(run tests/test_compat.py), then add it to COMPAT_CHECKED"
    )


# ------------------------------------------------------ build_without_peeked_batch


def test_keras_symbolic_build_hook_has_the_signature_we_override():
    signature = inspect.signature(keras.Model._maybe_symbolic_build)
    assert list(signature.parameters) == ["self", "iterator", "data_batch"]
    assert all(signature.parameters[name].default is None for name in ("iterator", "data_batch"))


class RecordingModel(keras.Model):
    def __init__(self):
        super().__init__(name="recording_model")
        self.dense = keras.layers.Dense(1)
        self.build_calls = []

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x):
        return self.dense(x)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        self.build_calls.append((iterator is not None, data_batch is not None))
        return compat.build_without_peeked_batch(
            self, super()._maybe_symbolic_build, iterator, data_batch
        )

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self(x) - y))
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss}


def test_fit_calls_the_hook_and_it_builds_only_the_optimizer():
    model = RecordingModel()
    model.build((None, 2))
    model.compile(keras.optimizers.SGD(0.1))
    assert model._compile_loss is None and model._compile_metrics is None
    assert not model.optimizer.built
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert model.build_calls == [(True, False)]  # fit peeks through the iterator
    assert model.optimizer.built
    assert int(model.optimizer.iterations.numpy()) == 1


@pytest.mark.parametrize("compile_args", [dict(loss="mse"), dict(metrics=["mae"])])
def test_compiled_losses_or_metrics_defer_to_keras_build(compile_args):
    model = RecordingModel()
    model.build((None, 2))
    model.compile(keras.optimizers.SGD(0.1), **compile_args)
    assert model._compile_loss is not None or model._compile_metrics is not None
    calls = []
    compat.build_without_peeked_batch(model, lambda *args: calls.append(args), "iterator", None)
    assert calls == [("iterator", None)]
    assert not model.optimizer.built


# ---------------------------------------------- in_multi_worker_mode, logs


def test_in_multi_worker_mode_means_more_than_one_worker():
    check = CollectiveAllReduceExtended._in_multi_worker_mode
    assert check(SimpleNamespace(_num_workers=2)) is True
    assert check(SimpleNamespace(_num_workers=1)) is False
    assert compat.in_multi_worker_mode(tf.distribute.get_strategy()) is False


class FakeMultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
    """A MultiWorkerMirroredStrategy in name only (no cluster), recording reduce calls."""

    def __init__(self, num_workers):
        self.fake_extended = CollectiveAllReduceExtended.__new__(CollectiveAllReduceExtended)
        self.fake_extended._num_workers = num_workers
        self.reduce_calls = []

    @property
    def extended(self):
        return self.fake_extended

    def reduce(self, reduce_op, value, axis):
        self.reduce_calls.append((reduce_op, axis))
        return tf.reduce_mean(value, axis=axis)


def test_keras_reduces_multi_worker_logs_over_axis_0(monkeypatch):
    strategy = FakeMultiWorker(num_workers=2)
    assert compat.in_multi_worker_mode(strategy)
    monkeypatch.setattr(tf.distribute, "get_strategy", lambda: strategy)
    logs = compat.multi_worker_reducible_logs({"loss": tf.constant(2.5)})
    assert logs["loss"].shape == (1,)
    reduced = keras_tf_trainer.reduce_per_replica(logs, strategy, reduction="auto")
    assert strategy.reduce_calls == [("MEAN", 0)]
    assert reduced["loss"].shape == () and float(reduced["loss"]) == 2.5


def test_single_worker_logs_stay_scalars(monkeypatch):
    strategy = FakeMultiWorker(num_workers=1)
    monkeypatch.setattr(tf.distribute, "get_strategy", lambda: strategy)
    assert not compat.in_multi_worker_mode(strategy)
    assert compat.multi_worker_reducible_logs({"loss": tf.constant(2.5)})["loss"].shape == ()
    keras_tf_trainer.reduce_per_replica({"loss": tf.constant(2.5)}, strategy, reduction="auto")
    assert strategy.reduce_calls == []


# ---------------------------------------------------- moving_average_pairs


@pytest.mark.parametrize("loss_scale", [False, True])
def test_ema_pairs_match_keras_and_swap_back_exactly(loss_scale):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    optimizer = keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.5)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=8.0)
    model.compile(optimizer, loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 1)).astype(np.float32)
    for start in range(0, 8, 2):  # not fit: its end copies the averages into the model
        model.train_on_batch(x[start : start + 2], y[start : start + 2])
    base = optimizer.inner_optimizer if loss_scale else optimizer
    pairs = compat.moving_average_pairs(base)
    assert [id(v) for v, _ in pairs] == [id(v) for v in model.trainable_variables]
    assert [v.shape for v, _ in pairs] == [a.shape for _, a in pairs]
    trained = [v.numpy() for v in model.trainable_variables]
    averages = [a.numpy() for _, a in pairs]
    assert any(not np.array_equal(t, a) for t, a in zip(trained, averages, strict=True))
    trained_output = model(x).numpy()

    with ema_weights(model):
        for variable, average in zip(model.trainable_variables, averages, strict=True):
            np.testing.assert_array_equal(variable.numpy(), average)
        ema_output = model(x).numpy()
    for variable, value in zip(model.trainable_variables, trained, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)
    np.testing.assert_array_equal(model(x).numpy(), trained_output)

    # Keras's own pairing (what fit does at its end) gives the same weights
    base.finalize_variable_values(model.trainable_variables)
    for variable, average in zip(model.trainable_variables, averages, strict=True):
        np.testing.assert_array_equal(variable.numpy(), average)
    np.testing.assert_array_equal(model(x).numpy(), ema_output)


def test_no_ema_gives_no_pairs():
    optimizer = keras.optimizers.Adam(0.1)
    optimizer.build([keras.Variable(np.zeros(2, np.float32))])
    assert compat.moving_average_pairs(optimizer) == []
    assert compat.moving_average_pairs(keras.optimizers.Adam(0.1, use_ema=True)) == []


# ----------------------------------------------------- one_pass_bijector_cache


class Scale(tfb.Bijector):
    _cache = compat.one_pass_bijector_cache("_forward_with_attrs", "_inverse_with_attrs")

    def __init__(self):
        self.evaluations = []
        super().__init__(forward_min_event_ndims=1, parameters={}, name="scale")

    def _forward_with_attrs(self, x):
        self.evaluations.append("forward")
        return 2.0 * x, {"fldj": tf.fill(tf.shape(x)[:-1], 7.0)}

    def _inverse_with_attrs(self, y):
        self.evaluations.append("inverse")
        return y / 2.0, {"fldj": tf.fill(tf.shape(y)[:-1], 7.0)}

    def _forward(self, x):
        return self._forward_with_attrs(x)[0]

    def _inverse(self, y):
        return self._inverse_with_attrs(y)[0]

    def _forward_log_det_jacobian(self, x):
        return self._cache.forward_attributes(x)["fldj"]

    def _inverse_log_det_jacobian(self, y):
        return -self._cache.inverse_attributes(y)["fldj"]


def test_tfp_bijector_cache_keeps_the_attributes_of_one_evaluation():
    bijector = Scale()
    x = tf.ones([3, 2])
    y = bijector.forward(x)
    assert float(bijector.forward_log_det_jacobian(x, event_ndims=1)[0]) == 7.0
    # stored under y too: what log_prob of a transformed distribution reuses
    assert float(bijector.inverse_log_det_jacobian(y, event_ndims=1)[0]) == -7.0
    np.testing.assert_array_equal(bijector.inverse(y).numpy(), x.numpy())
    assert bijector.evaluations == ["forward"]

    z = tf.fill([3, 2], 4.0)
    bijector.inverse(z)
    assert float(bijector.inverse_log_det_jacobian(z, event_ndims=1)[0]) == -7.0
    assert bijector.evaluations == ["forward", "inverse"]

    # an input never transformed has no attributes; the dict is live (what
    # GlowBijector fills on a log-det-first call)
    w = tf.fill([3, 2], 5.0)
    assert bijector._cache.inverse_attributes(w) == {}
    bijector._cache.inverse_attributes(w)["ildj"] = tf.zeros([3])
    assert "ildj" in bijector._cache.inverse_attributes(w)
    assert bijector.evaluations == ["forward", "inverse"]


# ------------------------------------------------------------ never_allocated


def _dense():
    layer = keras.layers.Dense(3, name="never_allocated_dense")
    layer.build((None, 5))
    return layer


def test_never_allocated_variables_stay_unallocated():
    before = list(global_state.get_global_attribute("uninitialized_variables", None) or [])
    with compat.never_allocated(_dense) as layer:
        pending = global_state.get_global_attribute("uninitialized_variables")
        assert any(variable is layer.kernel for variable in pending)
        assert layer.kernel.shape == (5, 3) and layer.kernel.path.endswith("kernel")
        assert layer.kernel._value is None
    after = global_state.get_global_attribute("uninitialized_variables", None) or []
    assert [id(v) for v in after] == [id(v) for v in before]
    with keras.StatelessScope():
        pass  # leaving a top-level scope allocates every deferred variable
    assert layer.kernel._value is None


def test_without_the_reset_keras_would_allocate_them():
    with keras.StatelessScope(initialize_variables=False):
        layer = _dense()
    assert layer.kernel._value is None
    with keras.StatelessScope():
        pass
    assert layer.kernel._value is not None


# ------------------------------------------------------------ is_registered_op


def test_is_registered_op():
    assert compat.is_registered_op("Conv2D")
    assert compat.is_registered_op("MatrixInverse")
    assert not compat.is_registered_op("BlocksparseMatmul")
    assert not compat.is_registered_op("GlowTfNoSuchOp")


# ------------------------------------- apply_reduced_gradients, apply_gradients_if


def _sgd_apply_calls(optimizer, strategy, condition=None):
    """Applies gradient 1 to a variable [0, 0] in `strategy.run`; returns its value
    and how many tensors went through ReplicaContext.all_reduce."""
    with strategy.scope():
        variable = keras.Variable(np.zeros(2, np.float32))
        optimizer.build([variable])
    reduced = []
    original = tf.distribute.ReplicaContext.all_reduce

    def counting(self, reduce_op, value, options=None):
        reduced.append(len(tf.nest.flatten(value)))
        return original(self, reduce_op, value, options)

    @tf.function
    def step():
        def replica_step():
            gradients = [tf.ones(2)]
            if condition is None:
                optimizer.apply(gradients, [variable])
            else:
                compat.apply_gradients_if(tf.constant(condition), optimizer, gradients, [variable])

        strategy.run(replica_step)

    tf.distribute.ReplicaContext.all_reduce = counting
    try:
        step()
    finally:
        tf.distribute.ReplicaContext.all_reduce = original
    return variable.numpy(), sum(reduced), int(optimizer.iterations.numpy())


@pytest.mark.parametrize("loss_scale", [False, True])
def test_keras_optimizers_sum_gradients_unless_told_they_are_reduced(loss_scale):
    strategy = tf.distribute.MirroredStrategy(["CPU:0"])

    def make():
        with strategy.scope():
            optimizer = keras.optimizers.SGD(0.5)
            return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scale else optimizer

    value, reduced, _ = _sgd_apply_calls(make(), strategy)
    assert reduced == 1  # Keras all-reduces the gradient itself
    optimizer = make()
    compat.apply_reduced_gradients(optimizer)
    compat.apply_reduced_gradients(optimizer)  # idempotent
    value_once, reduced, _ = _sgd_apply_calls(optimizer, strategy)
    assert reduced == 0
    np.testing.assert_array_equal(value_once, value)
    unscale = 2.0**15 if loss_scale else 1.0  # the loss scaler divides by its initial scale
    np.testing.assert_array_equal(value, np.float32([-0.5, -0.5]) / unscale)


@pytest.mark.parametrize("mirrored", [False, True])
def test_apply_gradients_if_applies_or_leaves_everything_as_it_was(mirrored):
    strategy = tf.distribute.MirroredStrategy(["CPU:0"]) if mirrored else tf.distribute.get_strategy()
    for condition, expected, iterations in ((False, [0.0, 0.0], 0), (True, [-0.5, -0.5], 1)):
        with strategy.scope():
            optimizer = keras.optimizers.Adam(0.5)
        value, _, steps = _sgd_apply_calls(optimizer, strategy, condition)
        np.testing.assert_allclose(value, expected, rtol=1e-5)
        assert steps == iterations
        slots = [v for v in optimizer.variables if "momentum" in v.path or "velocity" in v.path]
        assert len(slots) == 2
        assert all(np.all(v.numpy() == 0) for v in slots) == (not condition)
