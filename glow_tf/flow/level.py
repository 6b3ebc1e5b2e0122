"""A level of a multi-scale flow: squeeze, flow steps, split, as one unit."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector, member_bijector
from glow_tf.flow.conv1x1 import precomputed_inverses_active
from glow_tf.flow.intermediates import recording_active
from glow_tf.flow.sequence import FlowSequence
from glow_tf.flow.step_loop import StepLoop, stack_step_weights, stackable_steps
from glow_tf.nn.init_mode import data_dependent_init_active

__all__ = ["Level", "LevelLayer", "factor_shapes"]


def factor_shapes(shape: Sequence[int], factor_out: float) -> tuple[tuple, tuple]:
    """A level output's event shape [h, w, c] -> ([h, w, kept], [h, w, latent]),
    the last `factor_out * c` channels being the latent."""
    *space, channels = (int(d) for d in shape)
    latent = channels * factor_out
    if latent != int(latent):
        raise ValueError(f"cannot factor out {factor_out} of {channels} channels")
    return (*space, channels - int(latent)), (*space, int(latent))


class Level(FlowSequence):
    """One scale of a multi-scale flow (rosinality's `Block`, TFP's `GlowBlock`).

    On an event [H, W, C]:

        z = squeeze(x)                 (if a squeeze is given: [h, w, c])
        z = step_K(... step_1(z))
        y = split(z)                   (if a split is given, e.g. Glow's
                                        conditional prior on z2 given z1)
        log|det dy/dx| = sum of the members' log-dets

    `y` keeps the shape [h, w, c]; a multi-scale flow then factors out its
    last `factor_out * c` channels as this level's latent (`factor`) and
    passes the rest on to the next level. The top level factors out nothing.

    Args:
      steps: the flow steps, in data-flow order.
      squeeze: bijector applied first (changes the event shape), or None.
      split: bijector applied last, or None.
      factor_out: fraction of the output channels that leave as the latent,
        0 <= factor_out < 1 (Glow: 1/2; 0 for the top level).
      step_names: names of the steps for `recording_intermediates`.
    """

    def __init__(
        self,
        steps: Sequence[GlowBijector],
        squeeze: GlowBijector | None = None,
        split: GlowBijector | None = None,
        factor_out: float = 0.0,
        step_names: Sequence[str] | None = None,
        validate_args=False,
        name="level",
    ):
        parameters = dict(locals())
        if not 0.0 <= factor_out < 1.0:
            raise ValueError(f"factor_out must lie in [0, 1), got {factor_out}")
        self.factor_out = float(factor_out)
        steps = list(steps)
        step_names = [b.name for b in steps] if step_names is None else list(step_names)
        members = ([squeeze] if squeeze else []) + steps + ([split] if split else [])
        names = (["squeeze"] if squeeze else []) + step_names + (["split"] if split else [])
        super().__init__(members, names, validate_args, name, parameters=parameters)

    def factor(self, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The level's output -> (kept, latent) along the channels."""
        kept = factor_shapes(y.shape[1:], self.factor_out)[0][-1]
        return y[..., :kept], y[..., kept:]

    def merge(self, kept: tf.Tensor, latent: tf.Tensor) -> tf.Tensor:
        """Inverse of `factor`."""
        return tf.concat([kept, latent], axis=-1)

    def output_shapes(self, input_shape: Sequence[int]) -> tuple[tuple, tuple]:
        """([h, w, kept channels], [h, w, latent channels]) for an input event shape."""
        return factor_shapes(self.forward_event_shape(input_shape), self.factor_out)


class LevelLayer(FlowLayer):
    """Owns a level's layers: `squeeze`, `steps` (a list) and `split`, each a
    `FlowLayer` or None; `bijector(training)` is the `Level` built from them.

    A flow family builds its levels from its own config (see
    `glow_tf.models.glow.glow_level`); this layer only composes them.

    With `loop_steps`, steps of one structure run as one `StepLoop` (a
    `tf.while_loop` over their stacked weights: the traced graph holds one
    step per level, whatever K is) wherever that computes the same thing:
    not during data-dependent init, `recording_intermediates()` (which names
    each step) or `precomputed_inverses()` (export), where they are unrolled.
    `recompute_gradients` (needs `loop_steps`) makes the loop's backward pass
    rebuild each step's input from its output instead of storing activations.
    """

    def __init__(
        self,
        steps: Sequence[FlowLayer],
        squeeze: FlowLayer | None = None,
        split: FlowLayer | None = None,
        factor_out: float = 0.0,
        loop_steps: bool = False,
        recompute_gradients: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if recompute_gradients and not loop_steps:
            raise ValueError("recompute_gradients needs loop_steps")
        self.squeeze = squeeze
        self.steps = list(steps)
        self.split = split
        self.factor_out = factor_out
        self.loop_steps = bool(loop_steps)
        self.recompute_gradients = bool(recompute_gradients)

    @property
    def members(self) -> list[FlowLayer]:
        """squeeze, steps, split, in data-flow order (those that exist)."""
        return [m for m in (self.squeeze, *self.steps, self.split) if m is not None]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for member in self.members:
            member.build(shape)
            shape = member.compute_output_shape(shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        for member in self.members:
            input_shape = member.compute_output_shape(input_shape)
        return input_shape

    def output_shapes(self, input_shape: Sequence[int]) -> tuple[tuple, tuple]:
        """`Level.output_shapes` from the layers, without building them."""
        output_shape = self.compute_output_shape((None, *input_shape))
        return factor_shapes(output_shape[1:], self.factor_out)

    def runs_steps_as_loop(self, training: bool = False) -> bool:
        """Whether `bijector(training)` runs the steps as one `StepLoop` now."""
        return (
            self.loop_steps
            and not data_dependent_init_active()
            and not recording_active()
            and not precomputed_inverses_active()
            and not any(step.call_has_side_effects(training) for step in self.steps)
            and stackable_steps(self.steps)
        )

    def bijector(self, training: bool = False) -> Level:
        def member(layer):
            return None if layer is None else member_bijector(layer, training)

        if self.runs_steps_as_loop(training):
            steps = [
                StepLoop(
                    self.steps[0],
                    stack_step_weights(self.steps),
                    training=training,
                    recompute_gradients=self.recompute_gradients,
                )
            ]
            step_names = ["steps"]
        else:
            steps = [member(step) for step in self.steps]
            step_names = [step.name for step in self.steps]
        return Level(
            steps,
            squeeze=member(self.squeeze),
            split=member(self.split),
            factor_out=self.factor_out,
            step_names=step_names,
            name=self.name,
        )
