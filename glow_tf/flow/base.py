"""What every glow_tf transform shares: a one-pass bijector and its Keras owner.

`GlowBijector` is a `tfb.Bijector` whose subclasses compute the transform and
its log-determinant in one evaluation (`_forward_and_log_det`,
`_inverse_and_log_det`). TFP's `forward` / `forward_log_det_jacobian` pair
reuses that single evaluation through a greedy attribute cache (the pattern of
TFP's FFJORD), and glow_tf's own compositions call `forward_and_log_det`
directly, so a coupling network runs once per transform + log-det.

`FlowLayer` is a Keras layer that owns the weights (`add_weight`) and builds a
fresh bijector from them on every call; TFP only ever sees tensors.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from glow_tf.compat import one_pass_bijector_cache
from glow_tf.scoped_flag import ScopedFlag

tfb = tfp.bijectors

__all__ = ["GlowBijector", "FlowLayer", "LayerCall", "ScopedFlag", "member_bijector"]


class GlowBijector(tfb.Bijector):
    """Base class of glow_tf bijectors: transform and log-det in one pass.

    Subclasses implement `_forward_and_log_det(x) -> (y, log_det)` and
    `_inverse_and_log_det(y) -> (x, log_det)` on inputs with exactly one batch
    dimension, `[B, *event]`, returning `log_det` of shape `[B]` (the inverse's
    log-det is log|det dx/dy|). Inputs with any number of batch dimensions
    (including none) are reshaped to that form and back by this class.

    Args:
      forward_min_event_ndims: rank of one input event (3 for [H, W, C]).
      inverse_min_event_ndims: rank of one output event.
      dtype: dtype of the inputs this bijector accepts, or None for any float.
      is_constant_jacobian: whether log|det| is independent of the input.
      validate_args: TFP's flag, kept for API compatibility.
      parameters: the subclass's `dict(locals())`.
      name: name scope.
    """

    _cache = one_pass_bijector_cache("_forward_with_attrs", "_inverse_with_attrs")

    def __init__(
        self,
        *,
        forward_min_event_ndims: int = 3,
        inverse_min_event_ndims: int | None = None,
        dtype=None,
        is_constant_jacobian: bool = False,
        validate_args: bool = False,
        parameters=None,
        name: str,
    ):
        if inverse_min_event_ndims is None:
            inverse_min_event_ndims = forward_min_event_ndims
        super().__init__(
            forward_min_event_ndims=forward_min_event_ndims,
            inverse_min_event_ndims=inverse_min_event_ndims,
            dtype=dtype,
            is_constant_jacobian=is_constant_jacobian,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict()

    def forward_and_log_det(self, x):
        """Returns `(y, log|det dy/dx|)` from one evaluation."""
        with tf.name_scope(self.name):
            return self._apply_batched(
                self._forward_and_log_det,
                x,
                self.forward_min_event_ndims,
                self.inverse_min_event_ndims,
            )

    def inverse_and_log_det(self, y):
        """Returns `(x, log|det dx/dy|)` from one evaluation."""
        with tf.name_scope(self.name):
            return self._apply_batched(
                self._inverse_and_log_det,
                y,
                self.inverse_min_event_ndims,
                self.forward_min_event_ndims,
            )

    def _forward_and_log_det(self, x):
        raise NotImplementedError

    def _inverse_and_log_det(self, y):
        raise NotImplementedError

    def _forward_with_attrs(self, x):
        y, log_det = self.forward_and_log_det(x)
        return y, {"ildj": -log_det}

    def _inverse_with_attrs(self, y):
        x, log_det = self.inverse_and_log_det(y)
        return x, {"ildj": log_det}

    def _forward(self, x):
        return self.forward_and_log_det(x)[0]

    def _inverse(self, y):
        return self.inverse_and_log_det(y)[0]

    def _forward_log_det_jacobian(self, x):
        attrs = self._cache.forward_attributes(x)
        if "ildj" not in attrs:
            attrs.update(self._forward_with_attrs(x)[1])
        return -attrs["ildj"]

    def _inverse_log_det_jacobian(self, y):
        attrs = self._cache.inverse_attributes(y)
        if "ildj" not in attrs:
            attrs.update(self._inverse_with_attrs(y)[1])
        return attrs["ildj"]

    def _apply_batched(self, fn, value, in_event_ndims, out_event_ndims):
        value = tf.convert_to_tensor(value, dtype_hint=self.dtype or tf.float32)
        if self.dtype is not None and value.dtype != self.dtype:
            raise TypeError(
                f"{self.name} expects {tf.as_dtype(self.dtype).name} input, got "
                f"{value.dtype.name}"
            )
        if not value.dtype.is_floating:
            raise TypeError(f"{self.name} expects a float tensor, got {value.dtype.name}")
        rank = value.shape.rank
        if rank is None or rank < in_event_ndims:
            raise ValueError(
                f"{self.name} expects events of rank {in_event_ndims} with leading "
                f"batch dimensions, got shape {value.shape}"
            )
        if rank == in_event_ndims + 1:
            return fn(value)
        event_shape = tf.shape(value)[rank - in_event_ndims :]
        batch_shape = tf.shape(value)[: rank - in_event_ndims]
        flat = tf.reshape(value, tf.concat([[-1], event_shape], 0))
        flat.set_shape([None] + value.shape[rank - in_event_ndims :].as_list())
        out, log_det = fn(flat)
        out_event_shape = tf.shape(out)[1:]
        out = tf.reshape(out, tf.concat([batch_shape, out_event_shape], 0))
        out.set_shape(
            value.shape[: rank - in_event_ndims].concatenate(out.shape[-out_event_ndims:])
            if out.shape.rank is not None
            else None
        )
        return out, tf.reshape(log_det, batch_shape)


class FlowLayer(keras.layers.Layer):
    """A Keras layer that owns a transform's weights and builds its bijector.

    `bijector(training)` returns a pure `tfb.Bijector` built from the current
    weights, for use with `tfb.Chain`, `tfb.Invert` and
    `tfd.TransformedDistribution`. `call(x, training=...)` returns
    `(y, log_det)` with `log_det` of shape [B]; `call(y, inverse=True)` the
    inverse's. A layer whose call does more than its bijector in some mode
    (data-dependent init, updating moving statistics) says so in
    `call_has_side_effects(training)`; containers then compose it through
    `member_bijector`, which runs that call.
    """

    def bijector(self, training: bool = False) -> GlowBijector:
        raise NotImplementedError

    def call_has_side_effects(self, training: bool = False) -> bool:
        return False

    def compute_output_shape(self, input_shape):
        """The output shape (with batch) for an input shape; the transforms
        that change shapes (squeezes) override this."""
        return tuple(input_shape)

    def call(self, inputs, inverse: bool = False, training=None):
        bijector = self.bijector(training=bool(training))
        if inverse:
            return bijector.inverse_and_log_det(inputs)
        return bijector.forward_and_log_det(inputs)


class LayerCall(GlowBijector):
    """A `FlowLayer`'s Keras `call` as a bijector, so that a container built
    from bijectors still reaches the layer's side effects in that mode:

        forward:  (y, log_det) = layer(x, training=training)
        inverse:  (x, log_det) = layer(y, inverse=True, training=training)
    """

    def __init__(self, layer: FlowLayer, training: bool = False, name: str | None = None):
        parameters = dict(locals())
        self.layer = layer
        self.training = training
        super().__init__(parameters=parameters, name=name or layer.name)

    def _forward_and_log_det(self, x):
        return self.layer(x, training=self.training)

    def _inverse_and_log_det(self, y):
        return self.layer(y, inverse=True, training=self.training)


def member_bijector(layer: FlowLayer, training: bool = False) -> GlowBijector:
    """What a container composes for one member layer: its pure bijector, or,
    where its call has side effects in this mode, a `LayerCall` of it."""
    if layer.call_has_side_effects(training):
        return LayerCall(layer, training)
    return layer.bijector(training=training)


def batch_size(x: tf.Tensor) -> tf.Tensor:
    """The (possibly dynamic) leading dimension of `x`."""
    return tf.shape(x)[0]


def constant_log_det(value: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """Broadcasts a per-event log-det scalar to shape [B] of `x`."""
    return tf.fill([batch_size(x)], tf.cast(value, x.dtype))
