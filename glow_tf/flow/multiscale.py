"""The multi-scale architecture: levels of flow steps, factoring out half at each split."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from glow_tf.flow.base import GlowBijector
from glow_tf.flow.sequence import FlowSequence
from glow_tf.flow.split import Split, SplitLayer
from glow_tf.flow.squeeze import squeeze2d, unsqueeze2d
from glow_tf.flow.step import FlowStepLayer

__all__ = ["MultiScaleFlow", "LevelLayer", "flatten_latents", "unflatten_latents"]


def flatten_latents(latents: Sequence[tf.Tensor]) -> tf.Tensor:
    """[[B, h_i, w_i, c_i], ...] -> [B, D], each flattened in (h, w, c) order."""
    batch = tf.shape(latents[0])[0]
    return tf.concat([tf.reshape(eps, [batch, -1]) for eps in latents], axis=-1)


def unflatten_latents(flat: tf.Tensor, shapes: Sequence[Sequence[int]]) -> list[tf.Tensor]:
    """Inverse of `flatten_latents` for per-level shapes [h_i, w_i, c_i]."""
    sizes = [int(np.prod(shape)) for shape in shapes]
    if flat.shape[-1] is not None and flat.shape[-1] != sum(sizes):
        raise ValueError(f"expected latents of size {sum(sizes)}, got shape {flat.shape}")
    parts = tf.split(flat, sizes, axis=-1)
    return [tf.reshape(part, [-1, *shape]) for part, shape in zip(parts, shapes)]


class MultiScaleFlow(GlowBijector):
    """Glow's multi-scale flow, images [H, W, C] -> standardised latents [D].

    With L levels of flow steps f_i, splits s_i and a top standardisation t
    (OpenAI's encoder plus prior):

        z = squeeze(x)
        for i < L-1:  [z1, eps_i] = s_i(f_i(z)),  z = squeeze(z1)
        eps_top = t(f_{L-1}(z))
        forward:  y = concat(flat(eps_0), ..., flat(eps_{L-2}), flat(eps_top))
        inverse:  the same, backwards
        log|det dy/dx| = sum of the members' log-dets

    so log p(x) = log N(y; 0, I) + log|det dy/dx| for the continuous x, and
    sampling at temperature T decodes y ~ N(0, T^2 I).

    Args:
      image_shape: [H, W, C] of one event.
      levels: L bijectors, the flow steps of each level.
      splits: L-1 `Split` bijectors.
      top: bijector standardising the top latent (the top prior), or None
        for a standard-normal top.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        levels: Sequence[GlowBijector],
        splits: Sequence[Split],
        top: GlowBijector | None = None,
        validate_args=False,
        name="multiscale_flow",
    ):
        parameters = dict(locals())
        self.image_shape = tuple(int(d) for d in image_shape)
        self.levels = list(levels)
        self.splits = list(splits)
        self.top = top
        if len(self.splits) != len(self.levels) - 1:
            raise ValueError(
                f"{len(self.levels)} levels need {len(self.levels) - 1} splits, got "
                f"{len(self.splits)}"
            )
        super().__init__(
            forward_min_event_ndims=3,
            inverse_min_event_ndims=1,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    @property
    def latent_shapes(self) -> list[tuple[int, int, int]]:
        height, width, channels = self.image_shape
        shapes = []
        for i in range(len(self.levels)):
            height, width, channels = height // 2, width // 2, channels * 4
            if i < len(self.levels) - 1:
                channels //= 2
            shapes.append((height, width, channels))
        return shapes

    @property
    def num_latents(self) -> int:
        return int(sum(np.prod(shape) for shape in self.latent_shapes))

    def _check_image(self, x):
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{self.name} expects images of shape [batch, {', '.join(map(str, self.image_shape))}], "
                f"got {x.shape}"
            )

    def forward_latents(self, x):
        """Per-level latents [eps_0, ..., eps_top] and the log-det, one pass."""
        self._check_image(x)
        total = tf.zeros(tf.shape(x)[:1], x.dtype)
        latents = []
        z = squeeze2d(x)
        for i, level in enumerate(self.levels):
            z, log_det = level.forward_and_log_det(z)
            total += log_det
            if i < len(self.splits):
                z, log_det = self.splits[i].forward_and_log_det(z)
                total += log_det
                half = z.shape[-1] // 2
                latents.append(z[..., half:])
                z = squeeze2d(z[..., :half])
        if self.top is not None:
            z, log_det = self.top.forward_and_log_det(z)
            total += log_det
        latents.append(z)
        return latents, total

    def inverse_latents(self, latents):
        """Images from per-level latents, and log|det dx/dy|."""
        latents = [tf.convert_to_tensor(eps) for eps in latents]
        total = tf.zeros(tf.shape(latents[-1])[:1], latents[-1].dtype)
        z = latents[-1]
        if self.top is not None:
            z, log_det = self.top.inverse_and_log_det(z)
            total += log_det
        for i in reversed(range(len(self.levels))):
            if i < len(self.splits):
                z = tf.concat([unsqueeze2d(z), latents[i]], axis=-1)
                z, log_det = self.splits[i].inverse_and_log_det(z)
                total += log_det
            z, log_det = self.levels[i].inverse_and_log_det(z)
            total += log_det
        return unsqueeze2d(z), total

    def _forward_and_log_det(self, x):
        latents, log_det = self.forward_latents(x)
        return flatten_latents(latents), log_det

    def _inverse_and_log_det(self, y):
        return self.inverse_latents(unflatten_latents(y, self.latent_shapes))

    def _forward_event_shape(self, input_shape):
        return input_shape[:-3].concatenate([self.num_latents])

    def _inverse_event_shape(self, output_shape):
        return output_shape[:-1].concatenate(self.image_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], [self.num_latents]], 0)

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-1], self.image_shape], 0)


@keras.saving.register_keras_serializable(package="glow_tf")
class LevelLayer(keras.layers.Layer):
    """One level: `num_steps` flow steps, then (unless it is the last) a split.

    Owns `steps` (a list of `FlowStepLayer`) and `split` (a `SplitLayer` or
    None); `bijector()` is the level's steps as one `FlowSequence`.
    """

    def __init__(
        self,
        num_steps: int,
        split: bool,
        step_config: dict,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_steps = num_steps
        self.has_split = split
        self.step_config = dict(step_config)
        self.seed = seed
        policy = self.dtype_policy
        self.steps = [
            FlowStepLayer(
                **self.step_config,
                seed=None if seed is None else seed + 100 * j,
                dtype=policy,
                name=f"step_{j}",
            )
            for j in range(num_steps)
        ]
        self.split = SplitLayer(dtype=policy, name="split") if split else None

    def build(self, input_shape):
        for step in self.steps:
            step.build(input_shape)
        if self.split is not None:
            self.split.build(input_shape)

    def bijector(self) -> FlowSequence:
        return FlowSequence([step.bijector() for step in self.steps], name="level")

    def get_config(self):
        return {
            **super().get_config(),
            "num_steps": self.num_steps,
            "split": self.has_split,
            "step_config": self.step_config,
            "seed": self.seed,
        }
