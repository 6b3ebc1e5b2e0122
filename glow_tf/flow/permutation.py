"""Fixed channel permutations: reverse, and a shuffle with stored indices."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector

__all__ = ["ChannelPermutation", "ReverseLayer", "ShuffleLayer"]


class ChannelPermutation(GlowBijector):
    """Reorders the channels of an event [H, W, C]; volume preserving.

        forward:  y[..., k] = x[..., indices[k]]
        inverse:  x[..., indices[k]] = y[..., k]
        log|det dy/dx| = 0

    Args:
      indices: int tensor [C], a permutation of 0..C-1.
      inverse_indices: optional precomputed inverse permutation (computed
        from `indices` if not given).
    """

    def __init__(self, indices, inverse_indices=None, validate_args=False, name="permutation"):
        parameters = dict(locals())
        self.indices = tf.convert_to_tensor(indices, dtype_hint=tf.int32)
        if inverse_indices is None:
            inverse_indices = tf.math.invert_permutation(self.indices)
        self.inverse_indices = tf.convert_to_tensor(inverse_indices, dtype=self.indices.dtype)
        super().__init__(
            is_constant_jacobian=True,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    def _check_channels(self, x):
        channels = self.indices.shape[0]
        if x.shape[-1] is not None and channels is not None and x.shape[-1] != channels:
            raise ValueError(f"{self.name}: expected {channels} channels, got shape {x.shape}")

    def _forward_and_log_det(self, x):
        self._check_channels(x)
        return tf.gather(x, self.indices, axis=-1), tf.zeros(tf.shape(x)[:1], x.dtype)

    def _inverse_and_log_det(self, y):
        self._check_channels(y)
        return tf.gather(y, self.inverse_indices, axis=-1), tf.zeros(tf.shape(y)[:1], y.dtype)


@keras.saving.register_keras_serializable(package="glow_tf")
class ReverseLayer(FlowLayer):
    """Reverses the channel order (OpenAI's `flow_permutation=0`)."""

    def build(self, input_shape):
        self.channels = int(input_shape[-1])

    def bijector(self, training: bool = False) -> ChannelPermutation:
        reverse = np.arange(self.channels - 1, -1, -1, dtype=np.int32)
        return ChannelPermutation(reverse, inverse_indices=reverse, name="reverse")


@keras.saving.register_keras_serializable(package="glow_tf")
class ShuffleLayer(FlowLayer):
    """A random channel permutation drawn once and stored as a weight.

    The indices are a non-trainable int32 weight, so a saved model reloads the
    same permutation (OpenAI's `flow_permutation=1`, `shuffle/indices`).
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        channels = int(input_shape[-1])
        permutation = np.random.default_rng(self.seed).permutation(channels)
        self.indices = self.add_weight(
            shape=(channels,),
            dtype="int32",
            initializer=keras.initializers.Constant(permutation.astype(np.int32)),
            trainable=False,
            name="indices",
        )

    def bijector(self, training: bool = False) -> ChannelPermutation:
        return ChannelPermutation(tf.convert_to_tensor(self.indices), name="shuffle")

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
