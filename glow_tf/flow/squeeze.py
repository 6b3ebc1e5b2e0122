"""Squeeze: trade each 2x2 spatial block for 4x the channels, in OpenAI's order."""

from __future__ import annotations

import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector

__all__ = ["Squeeze", "SqueezeLayer", "squeeze2d", "unsqueeze2d"]


def squeeze2d(x: tf.Tensor, factor: int = 2) -> tf.Tensor:
    """[B, H, W, C] -> [B, H/f, W/f, C*f*f], channel-major like OpenAI's code.

        out[b, i, j, c*f*f + f*dy + dx] = x[b, f*i + dy, f*j + dx, c]

    This is not `tf.nn.space_to_depth`, which orders channels as
    (dy*f + dx)*C + c.
    """
    _, height, width, channels = x.shape
    if height is None or width is None or channels is None:
        raise ValueError(f"squeeze2d needs a static [H, W, C], got {x.shape}")
    if height % factor or width % factor:
        raise ValueError(
            f"squeeze2d needs H and W divisible by {factor}, got {height}x{width}"
        )
    x = tf.reshape(x, [-1, height // factor, factor, width // factor, factor, channels])
    x = tf.transpose(x, [0, 1, 3, 5, 2, 4])
    return tf.reshape(x, [-1, height // factor, width // factor, channels * factor**2])


def unsqueeze2d(x: tf.Tensor, factor: int = 2) -> tf.Tensor:
    """Inverse of `squeeze2d`: [B, H, W, C] -> [B, H*f, W*f, C/(f*f)]."""
    _, height, width, channels = x.shape
    if height is None or width is None or channels is None:
        raise ValueError(f"unsqueeze2d needs a static [H, W, C], got {x.shape}")
    if channels % factor**2:
        raise ValueError(
            f"unsqueeze2d needs channels divisible by {factor**2}, got {channels}"
        )
    out_channels = channels // factor**2
    x = tf.reshape(x, [-1, height, width, out_channels, factor, factor])
    x = tf.transpose(x, [0, 1, 4, 2, 5, 3])
    return tf.reshape(x, [-1, height * factor, width * factor, out_channels])


class Squeeze(GlowBijector):
    """Space-to-channels reshuffle with OpenAI's channel order; volume preserving.

    On an event [H, W, C] with factor f:

        forward:  y[i, j, c*f*f + f*dy + dx] = x[f*i + dy, f*j + dx, c]
                  ([H, W, C] -> [H/f, W/f, C*f*f])
        inverse:  the same index map read backwards
        log|det dy/dx| = 0

    References:
      Dinh et al. (2017), RealNVP, https://arxiv.org/abs/1605.08803
      Kingma & Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    def __init__(self, factor: int = 2, validate_args: bool = False, name: str = "squeeze"):
        parameters = dict(locals())
        self.factor = int(factor)
        super().__init__(
            is_constant_jacobian=True,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    def _forward_and_log_det(self, x):
        return squeeze2d(x, self.factor), tf.zeros(tf.shape(x)[:1], x.dtype)

    def _inverse_and_log_det(self, y):
        return unsqueeze2d(y, self.factor), tf.zeros(tf.shape(y)[:1], y.dtype)

    def _forward_event_shape(self, input_shape):
        height, width, channels = input_shape[-3:]
        f = self.factor
        return input_shape[:-3].concatenate(
            [_div(height, f), _div(width, f), _mul(channels, f * f)]
        )

    def _inverse_event_shape(self, output_shape):
        height, width, channels = output_shape[-3:]
        f = self.factor
        return output_shape[:-3].concatenate(
            [_mul(height, f), _mul(width, f), _div(channels, f * f)]
        )

    def _forward_event_shape_tensor(self, input_shape):
        f = self.factor
        return tf.concat(
            [input_shape[:-3], input_shape[-3:-1] // f, input_shape[-1:] * f * f], 0
        )

    def _inverse_event_shape_tensor(self, output_shape):
        f = self.factor
        return tf.concat(
            [output_shape[:-3], output_shape[-3:-1] * f, output_shape[-1:] // (f * f)], 0
        )


class SqueezeLayer(FlowLayer):
    """Keras layer for `Squeeze` (no weights)."""

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def bijector(self, training: bool = False) -> Squeeze:
        return Squeeze(self.factor)

    def compute_output_shape(self, input_shape):
        event = self.bijector().forward_event_shape(input_shape[1:])
        return (input_shape[0], *(int(d) for d in event))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _div(dim, factor):
    return None if dim is None else dim // factor


def _mul(dim, factor):
    return None if dim is None else dim * factor
