"""The multi-scale architecture: levels that factor out latents, then the top prior."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from glow_tf.flow.base import GlowBijector
from glow_tf.flow.intermediates import forward_member
from glow_tf.flow.level import Level

__all__ = ["MultiScaleFlow", "flatten_latents", "latent_shapes", "unflatten_latents"]


def latent_shapes(image_shape: Sequence[int], levels: Sequence) -> list[tuple[int, int, int]]:
    """[h, w, c] of each level's latent, the top last, for levels that
    report `output_shapes(input_shape) -> (kept, latent)` (`Level` bijectors
    or `LevelLayer`s, built or not)."""
    shapes, shape = [], tuple(image_shape)
    for level in levels:
        shape, latent = level.output_shapes(shape)
        shapes.append(latent)
    return shapes[:-1] + [tuple(shape)]


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
    """A multi-scale flow, images [H, W, C] -> standardised latents [D].

    With levels l_0 .. l_{L-1} (each a `Level`: squeeze, steps, split) and a
    top standardisation t (the top prior):

        z = x
        for i < L-1:  [z, eps_i] = factor(l_i(z))     (l_i's factored-out channels)
        eps_top = t(l_{L-1}(z))
        forward:  y = concat(flat(eps_0), ..., flat(eps_{L-2}), flat(eps_top))
        inverse:  the same, backwards
        log|det dy/dx| = sum of the members' log-dets

    so log p(x) = log N(y; 0, I) + log|det dy/dx| for the continuous x, and
    sampling at temperature T decodes y ~ N(0, T^2 I). The latent shapes
    come from the levels' event shapes (`latent_shapes`).

    Args:
      image_shape: [H, W, C] of one event.
      levels: the `Level`s; every one but the last factors out channels.
      top: bijector standardising the top latent (the top prior), or None
        for a standard-normal top.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        levels: Sequence[Level],
        top: GlowBijector | None = None,
        validate_args=False,
        name="multiscale_flow",
    ):
        parameters = dict(locals())
        self.image_shape = tuple(int(d) for d in image_shape)
        self.levels = list(levels)
        self.top = top
        if not self.levels:
            raise ValueError("a multi-scale flow needs at least one level")
        for level in self.levels[:-1]:
            if level.factor_out == 0:
                raise ValueError(f"{level.name} factors out nothing but is not the top level")
        if self.levels[-1].factor_out != 0:
            raise ValueError(f"the top level {self.levels[-1].name} must not factor out channels")
        self._latent_shapes = latent_shapes(self.image_shape, self.levels)
        super().__init__(
            forward_min_event_ndims=3,
            inverse_min_event_ndims=1,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    @property
    def latent_shapes(self) -> list[tuple[int, int, int]]:
        """[h, w, c] of each level's latent, the top last."""
        return list(self._latent_shapes)

    @property
    def num_latents(self) -> int:
        return int(sum(np.prod(shape) for shape in self.latent_shapes))

    def _check_image(self, x):
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{self.name} expects images of shape "
                f"[batch, {', '.join(map(str, self.image_shape))}], got {x.shape}"
            )

    def forward_latents(self, x):
        """Per-level latents [eps_0, ..., eps_top] and the log-det, one pass."""
        self._check_image(x)
        total = tf.zeros(tf.shape(x)[:1], x.dtype)
        latents = []
        z = x
        for level in self.levels:
            z, log_det = forward_member(level, z, level.name)
            total += log_det
            if level.factor_out:
                z, eps = level.factor(z)
                latents.append(eps)
        if self.top is not None:
            z, log_det = forward_member(self.top, z, "top_prior")
            total += log_det
        latents.append(z)
        return latents, total

    def inverse_latents(self, latents):
        """Images from per-level latents, and log|det dx/dy|."""
        latents = [tf.convert_to_tensor(eps) for eps in latents]
        if len(latents) != len(self.levels):
            raise ValueError(f"expected {len(self.levels)} latents, got {len(latents)}")
        total = tf.zeros(tf.shape(latents[-1])[:1], latents[-1].dtype)
        z = latents[-1]
        if self.top is not None:
            z, log_det = self.top.inverse_and_log_det(z)
            total += log_det
        for level, eps in zip(reversed(self.levels), reversed(latents)):
            if level.factor_out:
                z = level.merge(z, eps)
            z, log_det = level.inverse_and_log_det(z)
            total += log_det
        return z, total

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
