"""The forms of the edge-bias convolution agree with pad-then-conv2d."""

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.nn.conv import (
    edge_bias_conv,
    edge_bias_term,
    pointwise_conv,
    shifted_matmul_conv,
)
from glow_tf.nn.edge_padding import border_indicator, edge_bias_pad


def reference_conv(x, kernel):
    return tf.nn.conv2d(edge_bias_pad(x, int(kernel.shape[0])), kernel, 1, "VALID")


def _arrays(height, width, channels, filters, size, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, height, width, channels)).astype(np.float32)
    in_channels = channels + (1 if size > 1 else 0)
    kernel = rng.normal(size=(size, size, in_channels, filters)).astype(np.float32)
    return tf.constant(x), tf.constant(kernel * 0.2)


# (H, W, C, F, k): narrow output (k*k*F <= C) takes the shifted matmul form,
# 1x1 the pointwise form, the others conv2d
SHAPES = [
    (4, 5, 18, 2, 3),
    (4, 4, 9, 1, 3),
    (6, 5, 25, 1, 5),
    (4, 5, 6, 8, 3),
    (6, 5, 4, 3, 5),
    (4, 5, 6, 8, 1),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_edge_bias_conv_matches_pad_then_conv2d_with_gradients(shape):
    x, kernel = _arrays(*shape)
    g = tf.constant(np.random.default_rng(1).normal(size=(3, *shape[:2], shape[3])), tf.float32)

    def value_and_gradients(conv):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = conv(x, kernel)
            loss = tf.reduce_sum(y * g)
        return [y, *tape.gradient(loss, [x, kernel])]

    for got, want in zip(value_and_gradients(edge_bias_conv), value_and_gradients(reference_conv)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_shifted_matmul_conv_border_pixels_learn_their_own_bias():
    # only the border-indicator channel of the kernel is non-zero: the output
    # is the kernel's border weights summed over the taps that fall off the image
    x, kernel = _arrays(4, 4, 18, 2, 3)
    border_only = tf.concat([tf.zeros_like(kernel[:, :, :-1]), kernel[:, :, -1:]], axis=2)
    y = shifted_matmul_conv(x, border_only)
    np.testing.assert_allclose(y[:, 1:-1, 1:-1], 0.0)
    top_left = tf.reduce_sum(border_only[0, :, -1], 0) + tf.reduce_sum(border_only[1:, 0, -1], 0)
    np.testing.assert_allclose(y[0, 0, 0], top_left, rtol=1e-6)
    np.testing.assert_allclose(y, reference_conv(x, border_only), rtol=1e-6, atol=1e-6)


def test_forms_keep_an_unknown_batch_and_the_compute_dtype():
    for shape in SHAPES:
        x, kernel = _arrays(*shape)
        traced = tf.function(
            edge_bias_conv,
            input_signature=[tf.TensorSpec([None, *x.shape[1:]]), tf.TensorSpec(kernel.shape)],
        )
        np.testing.assert_allclose(traced(x, kernel), reference_conv(x, kernel), atol=1e-5)
        low = edge_bias_conv(tf.cast(x, tf.bfloat16), tf.cast(kernel, tf.bfloat16))
        assert low.dtype == tf.bfloat16 and low.shape == (3, *shape[:2], shape[3])
    x, kernel = _arrays(4, 5, 6, 8, 1)
    np.testing.assert_allclose(pointwise_conv(x, kernel), reference_conv(x, kernel), atol=1e-6)


def test_border_indicator_needs_static_height_and_width():
    assert border_indicator((None, 2, 3, 4), 3, tf.float32).shape == (1, 4, 5, 1)
    with pytest.raises(ValueError, match="static H and W"):
        border_indicator((None, None, 3, 4), 3, tf.float32)


@pytest.mark.parametrize("size", [1, 3])
def test_conv_act_norm_folds_the_act_norm_into_the_kernel_exactly_enough(size):
    from glow_tf.nn.conv import ConvActNorm

    x, _ = _arrays(4, 5, 6, 8, size)
    layer = ConvActNorm(8, size, seed=0)
    layer.build(x.shape)
    rng = np.random.default_rng(2)
    layer.norm.bias.assign(rng.normal(size=8).astype(np.float32))
    layer.norm.logs.assign(rng.normal(size=8).astype(np.float32) * 0.3)
    want = (reference_conv(x, layer.kernel) + layer.norm.bias) * tf.exp(layer.norm.log_scale)
    np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(4, 5, 6, 8, 3), (6, 5, 4, 3, 5)], ids=str)
def test_the_wide_form_never_copies_x_into_a_padded_concatenation(shape):
    """conv(x, K[:, :, :C], SAME) + the border channel's term, no Pad or Concat of x."""
    x, kernel = _arrays(*shape)
    graph = tf.function(edge_bias_conv).get_concrete_function(x, kernel).graph
    types = {op.type for op in graph.get_operations()}
    assert "Conv2D" in types
    assert not types & {"Pad", "PadV2", "MirrorPad", "ConcatV2", "Concat"}, types
    term = edge_bias_term(x.shape, kernel)
    assert term.shape == (1, *shape[:2], shape[3])
    zero_input = reference_conv(tf.zeros_like(x), kernel)  # what the border channel adds
    np.testing.assert_allclose(term[0], zero_input[1], rtol=1e-6, atol=1e-6)
    pad = (shape[4] - 1) // 2
    np.testing.assert_allclose(term[:, pad:-pad, pad:-pad], 0.0)
