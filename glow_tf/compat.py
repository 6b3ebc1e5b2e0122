"""Every use of private or unstable Keras / TensorFlow / TFP API, in one place.

glow_tf needs a few things the public APIs do not offer. Each lives here as
one small function whose docstring says what it relies on and on which
versions that was checked; `tests/test_compat.py` exercises each of those
private behaviours on the installed versions, and fails in one place
(`test_installed_versions_were_checked`) when a version outside
`COMPAT_CHECKED` is installed. After an upgrade: run tests/test_compat.py,
fix what broke here, then extend `COMPAT_CHECKED`.

    what                         relies on
    build_without_peeked_batch   keras.Model._maybe_symbolic_build,
                                 Model._compile_loss / _compile_metrics
    in_multi_worker_mode         MultiWorkerMirroredStrategy.extended
                                 ._in_multi_worker_mode()
    multi_worker_reducible_logs  how Keras reduces step logs over workers
    moving_average_pairs         Optimizer._trainable_variables,
                                 Optimizer._model_variables_moving_average
    one_pass_bijector_cache      TFP internal.cache_util, Bijector._cache
    never_allocated              keras.src global_state
                                 "uninitialized_variables"
    is_registered_op             tensorflow.python op_def_registry
    apply_reduced_gradients      TFOptimizer._all_reduce_sum_gradients
    apply_gradients_if           ReplicaContext.merge_call, tf.__internal__
                                 strategy_supports_no_merge_call

Not here, on purpose: the protected hooks TFP documents for subclassing
(`_forward`, `_inverse`, `_forward_log_det_jacobian`, `_parameter_properties`),
and `tensorflow.core.framework.graph_pb2` (the GraphDef protobuf, whose
format is stable; porting/frozen_graph.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import keras
import tensorflow as tf
from keras.src.backend.common import global_state
from tensorflow.python.framework import op_def_registry
from tensorflow_probability.python.internal import cache_util

__all__ = [
    "COMPAT_CHECKED",
    "build_without_peeked_batch",
    "in_multi_worker_mode",
    "multi_worker_reducible_logs",
    "moving_average_pairs",
    "one_pass_bijector_cache",
    "never_allocated",
    "is_registered_op",
    "apply_reduced_gradients",
    "apply_gradients_if",
]

# Distribution name -> the major.minor versions everything below was checked on.
COMPAT_CHECKED = {
    "keras": ("3.15",),
    "tensorflow": ("2.21",),
    "tensorflow_probability": ("0.25",),
}

T = TypeVar("T")


def build_without_peeked_batch(model: keras.Model, keras_build: Callable, iterator, data_batch):
    """The body of a `_maybe_symbolic_build` override for a model that is
    fully built in its `__init__` (from a config, not from data).

    Keras (`fit`, `evaluate`, `train_on_batch`, ...) calls the private hook
    `Model._maybe_symbolic_build(iterator=None, data_batch=None)` before the
    first step; under a distribution strategy it peeks a batch, averages it
    over replicas with `strategy.reduce("MEAN")` and traces the model on it.
    Under MultiWorkerMirroredStrategy that is a collective on the uint8
    images, which has no uint8 kernel (InvalidArgumentError). Such a model
    only needs its optimizer built, so that is all this does, unless
    `compile()` was given losses or metrics (Keras's `_compile_loss` /
    `_compile_metrics` are then not None), which do need Keras's build:
    then it defers to `keras_build` (the super method).

    Checked on Keras 3.15 (hook signature and the two attributes).
    """
    if model._compile_metrics is not None or model._compile_loss is not None:
        return keras_build(iterator, data_batch)
    if model.optimizer is not None and not model.optimizer.built:
        with model.distribute_strategy.scope():
            model.optimizer.build(model.trainable_variables)
    return None


def in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` is a MultiWorkerMirroredStrategy with more than one
    worker: the test Keras itself applies before reducing step logs.

    Relies on `strategy.extended._in_multi_worker_mode()` (TensorFlow's
    `CollectiveAllReduceExtended`, true when its `_num_workers > 1`).
    Checked on TensorFlow 2.21 with Keras 3.15.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return bool(strategy.extended._in_multi_worker_mode())


def multi_worker_reducible_logs(logs: dict) -> dict:
    """A step's scalar logs in the shape Keras can reduce over workers.

    Keras averages the logs of `train_step` / `test_step` over the replicas
    of a multi-worker MultiWorkerMirroredStrategy with
    `strategy.reduce("MEAN", value, axis=0)`, which needs an axis 0 and
    fails on the scalars every metric returns ("Invalid reduction dimension 0
    for input with 0 dimensions", tensorflow/tensorflow#72388). There each
    value gets a leading axis of length 1, so that reduction averages the
    replicas' values into the scalar Keras expects; elsewhere (one device,
    MirroredStrategy, single-worker runs) the logs stay scalars.

    Relies on Keras's `reduce_per_replica` (keras.src.backend.tensorflow
    .trainer) taking that path exactly when `in_multi_worker_mode`.
    Checked on Keras 3.15 (reported for 3.12 to 3.15) with TensorFlow 2.21.
    """
    if in_multi_worker_mode(tf.distribute.get_strategy()):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def moving_average_pairs(optimizer: keras.optimizers.Optimizer) -> list[tuple]:
    """(variable, its moving average) for every variable a `use_ema=True`
    optimizer updates and averages; [] if it keeps no averages (no EMA, or
    not built yet). Unwrap a LossScaleOptimizer (`inner_optimizer`) first.

    Relies on `Optimizer._trainable_variables` (the variables given to
    `build`, in order) and `Optimizer._model_variables_moving_average` (their
    averages, same order, None for a variable that is not averaged), which
    Keras itself pairs in `_overwrite_model_variables_with_average_value`.
    Checked on Keras 3.15.
    """
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not averages:
        return []
    pairs = zip(optimizer._trainable_variables, averages, strict=True)
    return [(variable, average) for variable, average in pairs if average is not None]


def one_pass_bijector_cache(forward_name: str, inverse_name: str):
    """A TFP bijector cache whose entries hold side outputs ("attributes")
    of one evaluation, for a `tfb.Bijector` subclass's `_cache` class attribute.

    `forward(x)` calls the bijector's method `forward_name(x) -> (y,
    attributes)` and stores `attributes` under both x and y;
    `_cache.forward_attributes(x)` / `_cache.inverse_attributes(y)` then
    return that dict to `_forward_log_det_jacobian` / its inverse, so the
    log-det reuses the transform's evaluation (the pattern of TFP's FFJORD).

    Relies on `tensorflow_probability.python.internal.cache_util
    .BijectorCacheWithGreedyAttrs` and on `tfb.Bijector` reading its cache
    from `self._cache`. Checked on TFP 0.25.
    """
    return cache_util.BijectorCacheWithGreedyAttrs(
        forward_name=forward_name, inverse_name=inverse_name
    )


@contextlib.contextmanager
def never_allocated(build: Callable[[], T]) -> Iterator[T]:
    """Yields `build()` run with its Keras variables created but never
    allocated (names, shapes and paths only); on exit Keras forgets them, so
    no later scope allocates them either.

    `keras.StatelessScope(initialize_variables=False)` defers each new
    variable by appending it to the global list "uninitialized_variables",
    which the next top-level StatelessScope to exit allocates. This saves
    that list on entry and puts it back on exit. Relies on
    `keras.src.backend.common.global_state` and that attribute name.
    Checked on Keras 3.15.
    """
    pending = list(global_state.get_global_attribute("uninitialized_variables", None) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            built = build()
        yield built
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)


def is_registered_op(op_type: str) -> bool:
    """Whether this TensorFlow process knows the op `op_type` (built in or
    loaded from a library), i.e. whether a GraphDef using it could run.

    Relies on `tensorflow.python.framework.op_def_registry.get` (None for an
    unknown op). Checked on TensorFlow 2.21.
    """
    return op_def_registry.get(op_type) is not None


def _aggregating_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer whose update step sums the replicas' gradients: a
    LossScaleOptimizer's inner optimizer, else `optimizer` itself."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def _already_reduced(grads_and_vars):
    return list(grads_and_vars)


def apply_reduced_gradients(optimizer: keras.optimizers.Optimizer) -> None:
    """Makes `optimizer` apply the gradients it is given as they are, without
    summing them over the replicas of a `tf.distribute` strategy first: for a
    train step that all-reduces the gradients itself (once, e.g. to clip
    their global norm) before `optimizer.apply`. Idempotent. Then every
    `apply` of this optimizer must get gradients already summed over replicas.

    Keras 3's TensorFlow optimizer (`keras.src.backend.tensorflow.optimizer
    .TFOptimizer._backend_update_step`) sums the gradients with
    `self._all_reduce_sum_gradients(grads_and_vars)` (an all-reduce in replica
    context) before its update step; a LossScaleOptimizer delegates the update
    to its `inner_optimizer`. This replaces that method on the instance by
    the identity. Checked on Keras 3.15 with TensorFlow 2.21.
    """
    target = _aggregating_optimizer(optimizer)
    if not hasattr(type(target), "_all_reduce_sum_gradients"):
        raise TypeError(
            f"{type(target).__name__} does not sum gradients with _all_reduce_sum_gradients; "
            "glow_tf/compat.py was checked on Keras 3.15's TensorFlow optimizers"
        )
    target._all_reduce_sum_gradients = _already_reduced


def apply_gradients_if(
    condition: tf.Tensor, optimizer: keras.optimizers.Optimizer, gradients, variables
) -> None:
    """`optimizer.apply(gradients, variables)` when the scalar bool tensor
    `condition` is true, else nothing at all (weights, optimizer slots and
    `iterations` stay as they were), from a replica context inside a
    tf.function. `condition` must be the same on every replica.

    A `tf.cond` in replica context cannot hold a branch that calls
    `merge_call`, which Keras's TensorFlow optimizer does under a strategy
    that uses merge calls (MirroredStrategy, MultiWorkerMirroredStrategy,
    except XLA on GPUs). There the cond runs in cross-replica context and
    applies the update on each replica, as Keras's own LossScaleOptimizer
    (`_tf_apply`) does; elsewhere it is a plain `tf.cond`. Relies on
    `tf.__internal__.distribute.strategy_supports_no_merge_call` and
    `ReplicaContext.merge_call`. Checked on TensorFlow 2.21 with Keras 3.15.
    """
    if not optimizer.built:
        optimizer.build(variables)  # variables cannot be created in a cond branch

    def apply(gradients):
        optimizer.apply(gradients, variables)
        return tf.constant(True)

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(condition, lambda: apply(gradients), lambda: tf.constant(False))
        return

    def in_cross_replica_context(distribution, condition, gradients):
        condition = distribution.experimental_local_results(condition)[0]

        def apply_on_every_replica():
            distribution.extended.call_for_each_replica(apply, args=(gradients,))
            return tf.constant(True)

        tf.cond(condition, apply_on_every_replica, lambda: tf.constant(False))

    tf.distribute.get_replica_context().merge_call(
        in_cross_replica_context, args=(condition, gradients)
    )
