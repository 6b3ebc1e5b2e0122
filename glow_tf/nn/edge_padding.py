"""OpenAI's "edge bias" padding for 3x3 convolutions."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["edge_bias_pad", "border_indicator"]


def edge_bias_pad(x: tf.Tensor, kernel_size: int = 3) -> tf.Tensor:
    """Zero-pads [B, H, W, C] by (k-1)/2 and appends a border-indicator channel.

        out[..., :C] = pad(x)            (zeros on the border)
        out[..., C]  = 1 on the border, 0 inside

    A VALID convolution of the result has the output size of a SAME
    convolution, and its kernel (with C+1 input channels) can learn a bias
    for border pixels. For kernel_size 1 the input is returned unchanged.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f"edge_bias_pad needs an odd kernel size, got {kernel_size}")
    if kernel_size == 1:
        return x
    pad = (kernel_size - 1) // 2
    border = border_indicator(x.shape, kernel_size, x.dtype)
    border = tf.tile(border, [tf.shape(x)[0], 1, 1, 1])
    padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    return tf.concat([padded, border], axis=-1)


def border_indicator(shape, kernel_size: int, dtype) -> tf.Tensor:
    """The channel `edge_bias_pad` appends, for one image of `shape` [B, H, W, C]:

        [1, H + k - 1, W + k - 1, 1],  1 on the (k-1)/2 wide border, 0 inside
    """
    _, height, width, _ = shape
    if height is None or width is None:
        raise ValueError(f"edge_bias_pad needs a static H and W, got {shape}")
    pad = (kernel_size - 1) // 2
    border = np.ones([1, height + 2 * pad, width + 2 * pad, 1], tf.as_dtype(dtype).as_numpy_dtype)
    border[:, pad:-pad, pad:-pad, :] = 0.0
    return tf.constant(border)
