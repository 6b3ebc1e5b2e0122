"""Squeeze: trade each 2x2 spatial block for 4x the channels.

Two channel orders: "channel_major" (OpenAI's Glow and the official
RealNVP's `squeeze_2x2`) and "diagonal_first" (the official RealNVP's
`squeeze_2x2_ordered`, used to factor out latents: the two diagonal pixels of
every block come first).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector

__all__ = [
    "Squeeze",
    "SqueezeLayer",
    "Unsqueeze",
    "SQUEEZE_ORDERS",
    "squeeze2d",
    "unsqueeze2d",
    "squeeze2d_diagonal_first",
    "unsqueeze2d_diagonal_first",
]

SQUEEZE_ORDERS = ("channel_major", "diagonal_first")
# sub-positions dy * 2 + dx of a 2x2 block in the diagonal-first order:
# (0, 0), (1, 1), (0, 1), (1, 0)
_DIAGONAL_FIRST = (0, 3, 1, 2)
_DIAGONAL_FIRST_INVERSE = (0, 2, 3, 1)


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


def _static_shape(x, what):
    _, height, width, channels = x.shape
    if height is None or width is None or channels is None:
        raise ValueError(f"{what} needs a static [H, W, C], got {x.shape}")
    return height, width, channels


def squeeze2d_diagonal_first(x: tf.Tensor) -> tf.Tensor:
    """[B, H, W, C] -> [B, H/2, W/2, 4C], the official RealNVP's `squeeze_2x2_ordered`:

        out[b, i, j, k*C + c] = x[b, 2i + dy_k, 2j + dx_k, c]
        (dy_k, dx_k) = (0, 0), (1, 1), (0, 1), (1, 0) for k = 0 .. 3
    """
    height, width, channels = _static_shape(x, "squeeze2d_diagonal_first")
    if height % 2 or width % 2:
        raise ValueError(f"squeeze2d_diagonal_first needs even H and W, got {height}x{width}")
    x = tf.reshape(x, [-1, height // 2, 2, width // 2, 2, channels])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    x = tf.reshape(x, [-1, height // 2, width // 2, 4, channels])
    x = tf.gather(x, _DIAGONAL_FIRST, axis=3)
    return tf.reshape(x, [-1, height // 2, width // 2, 4 * channels])


def unsqueeze2d_diagonal_first(x: tf.Tensor) -> tf.Tensor:
    """Inverse of `squeeze2d_diagonal_first`: [B, H, W, 4C] -> [B, 2H, 2W, C]."""
    height, width, channels = _static_shape(x, "unsqueeze2d_diagonal_first")
    if channels % 4:
        raise ValueError(f"unsqueeze2d_diagonal_first needs channels divisible by 4, got {channels}")
    out_channels = channels // 4
    x = tf.reshape(x, [-1, height, width, 4, out_channels])
    x = tf.gather(x, _DIAGONAL_FIRST_INVERSE, axis=3)
    x = tf.reshape(x, [-1, height, width, 2, 2, out_channels])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, 2 * height, 2 * width, out_channels])


class Squeeze(GlowBijector):
    """Space-to-channels reshuffle; volume preserving.

    On an event [H, W, C] with factor f, in the "channel_major" order
    (OpenAI's Glow, the official RealNVP's `squeeze_2x2`):

        forward:  y[i, j, c*f*f + f*dy + dx] = x[f*i + dy, f*j + dx, c]
                  ([H, W, C] -> [H/f, W/f, C*f*f])
        inverse:  the same index map read backwards
        log|det dy/dx| = 0

    and in the "diagonal_first" order (f = 2; the official RealNVP's
    `squeeze_2x2_ordered`, whose first 2C channels are the diagonal pixels
    (0, 0) and (1, 1) of every block):

        forward:  y[i, j, k*C + c] = x[2i + dy_k, 2j + dx_k, c],
                  (dy_k, dx_k) = (0, 0), (1, 1), (0, 1), (1, 0)

    Args:
      factor: f.
      order: "channel_major" or "diagonal_first".

    References:
      Dinh et al. (2017), RealNVP, https://arxiv.org/abs/1605.08803
      Kingma & Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    def __init__(
        self,
        factor: int = 2,
        order: str = "channel_major",
        validate_args: bool = False,
        name: str = "squeeze",
    ):
        parameters = dict(locals())
        self.factor = int(factor)
        self.order = _check_order(order, self.factor)
        super().__init__(
            is_constant_jacobian=True,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    def _forward_and_log_det(self, x):
        if self.order == "diagonal_first":
            y = squeeze2d_diagonal_first(x)
        else:
            y = squeeze2d(x, self.factor)
        return y, tf.zeros(tf.shape(x)[:1], x.dtype)

    def _inverse_and_log_det(self, y):
        if self.order == "diagonal_first":
            x = unsqueeze2d_diagonal_first(y)
        else:
            x = unsqueeze2d(y, self.factor)
        return x, tf.zeros(tf.shape(y)[:1], y.dtype)

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


class Unsqueeze(GlowBijector):
    """The inverse of a `Squeeze` as a bijector of its own (channels to space):

        forward:  y = squeeze^-1(x)   ([H, W, C] -> [H*f, W*f, C/(f*f)])
        inverse:  x = squeeze(y)
        log|det dy/dx| = 0
    """

    def __init__(
        self,
        factor: int = 2,
        order: str = "channel_major",
        validate_args: bool = False,
        name: str = "unsqueeze",
    ):
        parameters = dict(locals())
        self.squeeze = Squeeze(factor, order)
        super().__init__(
            is_constant_jacobian=True,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    def _forward_and_log_det(self, x):
        return self.squeeze._inverse_and_log_det(x)

    def _inverse_and_log_det(self, y):
        return self.squeeze._forward_and_log_det(y)

    def _forward_event_shape(self, input_shape):
        return self.squeeze.inverse_event_shape(input_shape)

    def _inverse_event_shape(self, output_shape):
        return self.squeeze.forward_event_shape(output_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return self.squeeze.inverse_event_shape_tensor(input_shape)

    def _inverse_event_shape_tensor(self, output_shape):
        return self.squeeze.forward_event_shape_tensor(output_shape)


@keras.saving.register_keras_serializable(package="glow_tf")
class SqueezeLayer(FlowLayer):
    """Keras layer for `Squeeze` (no weights); with `unsqueeze=True` for
    `Unsqueeze`, its inverse.

    Args:
      factor: f.
      order: "channel_major" or "diagonal_first" (see `Squeeze`).
      unsqueeze: build the inverse (channels to space) instead.
    """

    def __init__(
        self, factor: int = 2, order: str = "channel_major", unsqueeze: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        self.factor = factor
        self.order = _check_order(order, int(factor))
        self.unsqueeze = bool(unsqueeze)

    def bijector(self, training: bool = False) -> Squeeze | Unsqueeze:
        kind = Unsqueeze if self.unsqueeze else Squeeze
        return kind(self.factor, self.order)

    def compute_output_shape(self, input_shape):
        event = self.bijector().forward_event_shape(input_shape[1:])
        return (input_shape[0], *(int(d) for d in event))

    def get_config(self):
        return {
            **super().get_config(),
            "factor": self.factor,
            "order": self.order,
            "unsqueeze": self.unsqueeze,
        }


def _check_order(order: str, factor: int) -> str:
    if order not in SQUEEZE_ORDERS:
        raise ValueError(f"unknown squeeze order {order!r}; expected one of {SQUEEZE_ORDERS}")
    if order == "diagonal_first" and factor != 2:
        raise ValueError(f"the diagonal_first order needs factor 2, got {factor}")
    return order


def _div(dim, factor):
    return None if dim is None else dim // factor


def _mul(dim, factor):
    return None if dim is None else dim * factor
