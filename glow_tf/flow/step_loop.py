"""A level's K steps of flow as one loop over their stacked weights."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector, member_bijector

__all__ = ["StepLoop", "stackable_steps", "stack_step_weights"]


def stackable_steps(steps: Sequence[FlowLayer]) -> bool:
    """Whether `steps` can run as one `StepLoop`: at least two built layers of
    one class whose weights agree in number, shape, dtype and trainability
    (so one prototype step evaluated with any step's weights is that step)."""
    steps = list(steps)
    if len(steps) < 2 or not all(step.built for step in steps):
        return False
    if len({type(step) for step in steps}) != 1:
        return False

    def signature(step):
        return [(tuple(v.shape), v.dtype, v.trainable) for v in step.variables]

    first = signature(steps[0])
    return all(signature(step) == first for step in steps[1:])


def stack_step_weights(steps: Sequence[FlowLayer]) -> list[tf.Tensor]:
    """[w_1, ..., w_K] per variable of the steps -> one [K, ...] tensor per
    variable, in the order of `steps[0].variables` (gradients flow back to
    each step's own variable)."""
    per_step = [step.variables for step in steps]
    return [
        tf.stack([tf.convert_to_tensor(variables[i]) for variables in per_step])
        for i in range(len(per_step[0]))
    ]


class StepLoop(GlowBijector):
    """K steps of flow of one structure, f(.; w_1) .. f(.; w_K), run as a loop:

        forward:  x_0 = x;  x_k = f(x_{k-1}; w_k)  for k = 1 .. K;  y = x_K
        inverse:  y_K = y;  y_{k-1} = f^-1(y_k; w_k) for k = K .. 1;  x = y_0
        log|det dy/dx| = sum_k log|det df/dx (x_{k-1}; w_k)|

    f is one prototype step layer evaluated with the weights w_k (a Keras
    `StatelessScope` maps the prototype's variables to slice k of the stacked
    weights), inside a `tf.while_loop`: a traced graph holds one step per
    level whatever K is, so tracing (the time to the first training step)
    does not grow with depth. The arithmetic is the unrolled steps' own.

    With `recompute_gradients`, the backward pass stores no step's
    activations. From the level's output it walks the steps backwards:

        x_{k-1} = f^-1(x_k; w_k)                       (recomputed input)
        (dx_{k-1}, dw_k) = vjp of (x_{k-1}, w_k) -> (f, log|det f|) at
                           (x_{k-1}, w_k), applied to (dx_k, d log-det)

    so peak memory holds one step's activations instead of K (the flow is
    invertible; OpenAI's code does the same). Gradients equal plain autodiff
    up to the rounding of the recomputed inputs.

    Args:
      prototype: a built step layer whose variables have the same structure as
        every step's.
      stacked_weights: one [K, ...] tensor per variable of `prototype`, in the
        order of `prototype.variables` (`stack_step_weights`).
      training: the mode the steps run in.
      recompute_gradients: rebuild inputs in the backward pass, as above.
    """

    def __init__(
        self,
        prototype: FlowLayer,
        stacked_weights: Sequence[tf.Tensor],
        training: bool = False,
        recompute_gradients: bool = False,
        validate_args=False,
        name="steps",
    ):
        parameters = dict(locals())
        self.prototype = prototype
        self.stacked_weights = list(stacked_weights)
        if len(self.stacked_weights) != len(prototype.variables):
            raise ValueError(
                f"{len(self.stacked_weights)} stacked weights for a step with "
                f"{len(prototype.variables)} variables"
            )
        self.num_steps = int(self.stacked_weights[0].shape[0])
        self.training = bool(training)
        self.recompute_gradients = bool(recompute_gradients)
        self.parallel_iterations = 10
        super().__init__(validate_args=validate_args, parameters=parameters, name=name)

    def _step(self, weights, x, inverse: bool):
        """(f(x; w), log|det|) or (f^-1(x; w), log|det|) for one step's weights."""
        mapping = list(zip(self.prototype.variables, weights))
        with keras.StatelessScope(state_mapping=mapping):
            bijector = member_bijector(self.prototype, self.training)
            if inverse:
                return bijector.inverse_and_log_det(x)
            return bijector.forward_and_log_det(x)

    def _step_weights(self, stacked):
        """Per-step reads of the stacked weights: TensorArrays, whose gradient
        writes step k's slice only (a gather's would add a [K, ...] tensor per
        step)."""
        arrays = [
            tf.TensorArray(w.dtype, size=self.num_steps, element_shape=w.shape[1:]).unstack(w)
            for w in stacked
        ]
        return lambda index: [array.read(index) for array in arrays]

    def _loop(self, x, stacked, inverse: bool):
        steps = self.num_steps
        read_weights = self._step_weights(stacked)

        def body(k, x, total):
            index = steps - 1 - k if inverse else k
            weights = read_weights(index)
            x, log_det = self._step(weights, x, inverse)
            x.set_shape(shape)
            return k + 1, x, total + log_det

        shape = x.shape
        total = tf.zeros(tf.shape(x)[:1], x.dtype)
        _, x, total = tf.while_loop(
            lambda k, *_: k < steps,
            body,
            (tf.constant(0), x, total),
            parallel_iterations=self.parallel_iterations,
            maximum_iterations=steps,
        )
        return x, total

    def _forward_and_log_det(self, x):
        if self.recompute_gradients:
            return self._forward_recomputing_gradients(x)
        return self._loop(x, self.stacked_weights, inverse=False)

    def _inverse_and_log_det(self, y):
        return self._loop(y, self.stacked_weights, inverse=True)

    def _forward_recomputing_gradients(self, x):
        trainable = [i for i, v in enumerate(self.prototype.variables) if v.trainable]
        fixed = {i: w for i, w in enumerate(self.stacked_weights) if i not in trainable}

        def all_weights(trainable_weights):
            weights = dict(fixed)
            weights.update(zip(trainable, trainable_weights))
            return [weights[i] for i in range(len(self.stacked_weights))]

        @tf.custom_gradient
        def run(x, *trainable_weights):
            stacked = all_weights(trainable_weights)
            y, total = self._loop(x, stacked, inverse=False)

            def gradient(d_y, d_total):
                d_total = tf.zeros_like(total) if d_total is None else d_total
                return self._backward(y, d_y, d_total, stacked, trainable)

            return (y, total), gradient

        trainable_weights = [self.stacked_weights[i] for i in trainable]
        return run(x, *trainable_weights)

    def _backward(self, y, d_y, d_total, stacked, trainable):
        """Gradients of (x, the trainable stacked weights) from those of (y, log-det)."""
        steps = self.num_steps
        shape = y.shape
        arrays = [
            tf.TensorArray(stacked[i].dtype, size=steps, element_shape=stacked[i].shape[1:])
            for i in trainable
        ]
        read_weights = self._step_weights(stacked)

        def body(k, x_k, d_x_k, arrays):
            index = steps - 1 - k
            weights = read_weights(index)
            x_previous, _ = self._step(weights, x_k, inverse=True)
            x_previous = tf.stop_gradient(x_previous)
            x_previous.set_shape(shape)
            watched = [weights[i] for i in trainable]
            with tf.GradientTape() as tape:
                tape.watch([x_previous, *watched])
                x_out, log_det = self._step(weights, x_previous, inverse=False)
            d_x_previous, *d_weights = tape.gradient(
                [x_out, log_det],
                [x_previous, *watched],
                output_gradients=[d_x_k, d_total],
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            arrays = [a.write(index, g) for a, g in zip(arrays, d_weights)]
            return k + 1, x_previous, d_x_previous, arrays

        _, _, d_x, arrays = tf.while_loop(
            lambda k, *_: k < steps,
            body,
            (tf.constant(0), y, d_y, arrays),
            parallel_iterations=self.parallel_iterations,
            maximum_iterations=steps,
        )
        return (d_x, *[a.stack() for a in arrays])
