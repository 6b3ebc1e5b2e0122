"""shifted_matmul_conv's own gradient of the shifted adds agrees with autodiff
of pad-then-conv2d: first and second order, every float dtype, an unknown
batch, tf.function, XLA, tf.while_loop and a distribution strategy."""

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.nn.conv import shifted_matmul_conv
from glow_tf.nn.edge_padding import edge_bias_pad


def reference_conv(x, kernel):
    return tf.nn.conv2d(edge_bias_pad(x, int(kernel.shape[0])), kernel, 1, "VALID")


def _arrays(height, width, filters, size=3, dtype=tf.float64, batch=2, seed=0):
    """x, kernel, g with k*k*F + 3 input channels, so the narrow form applies."""
    rng = np.random.default_rng(seed)
    channels = size * size * filters + 3
    x = rng.normal(size=(batch, height, width, channels))
    kernel = rng.normal(size=(size, size, channels + 1, filters)) * 0.2
    g = rng.normal(size=(batch, height, width, filters))
    return [tf.constant(a, dtype) for a in (x, kernel, g)]


def _value_and_gradients(conv, x, kernel, g):
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = conv(x, kernel)
        loss = tf.reduce_sum(y * g)
    return [y, *tape.gradient(loss, [x, kernel])]


# (H, W, F, k): odd and even H and W, one and several filters
SHAPES = [(3, 4, 1, 3), (4, 4, 12, 3), (5, 3, 12, 3), (4, 5, 1, 3), (5, 6, 1, 5)]


@pytest.mark.parametrize("dtype, tolerance", [(tf.float64, 1e-10), (tf.float32, 1e-5)])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gradients_match_pad_then_conv2d(shape, dtype, tolerance):
    height, width, filters, size = shape
    x, kernel, g = _arrays(height, width, filters, size, dtype)
    got = _value_and_gradients(shifted_matmul_conv, x, kernel, g)
    want = _value_and_gradients(reference_conv, x, kernel, g)
    for got_part, want_part in zip(got, want):
        assert got_part.dtype == dtype
        np.testing.assert_allclose(got_part, want_part, rtol=tolerance, atol=tolerance)


def test_input_gradient_matches_finite_differences():
    x, kernel, _ = _arrays(3, 4, 1, batch=1)
    theoretical, numerical = tf.test.compute_gradient(
        tf.function(lambda x: shifted_matmul_conv(x, kernel)), [x]
    )
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-10)


def test_second_order_gradients_match_pad_then_conv2d():
    x, kernel, g = _arrays(4, 5, 12)

    def gradient_norm_gradients(conv):
        with tf.GradientTape() as outer:
            outer.watch([x, kernel])
            _, x_grad, kernel_grad = _value_and_gradients(conv, x, kernel, g)
            norm = tf.reduce_sum(x_grad**2) + tf.reduce_sum(kernel_grad**2)
        return outer.gradient(norm, [x, kernel])

    for got, want in zip(
        gradient_norm_gradients(shifted_matmul_conv), gradient_norm_gradients(reference_conv)
    ):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_half_precision_gradients_keep_their_dtype_and_track_float32(dtype):
    x, kernel, g = _arrays(4, 4, 12, dtype=tf.float32)
    want = _value_and_gradients(reference_conv, x, kernel, g)
    low = [tf.cast(a, dtype) for a in (x, kernel, g)]
    for got, want_part in zip(_value_and_gradients(shifted_matmul_conv, *low), want):
        assert got.dtype == dtype
        scale = float(tf.reduce_max(tf.abs(want_part)))
        np.testing.assert_allclose(tf.cast(got, tf.float32), want_part, atol=0.05 * scale)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_gradients_through_a_while_loop_with_an_unknown_batch(jit_compile):
    # a few steps of x <- x * (1 + 0.1 * mean(conv(x))), differentiated through
    x, kernel, _ = _arrays(4, 5, 12, dtype=tf.float32, batch=3)

    def looped_loss(conv):
        @tf.function(
            jit_compile=jit_compile,
            input_signature=[tf.TensorSpec([None, *x.shape[1:]]), tf.TensorSpec(kernel.shape)],
        )
        def loss_and_gradients(x, kernel):
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])

                def body(step, x):
                    scale = 1.0 + 0.1 * tf.reduce_mean(conv(x, kernel), [1, 2, 3], keepdims=True)
                    return step + 1, x * scale

                _, out = tf.while_loop(
                    lambda step, _: step < 3, body, [0, x], maximum_iterations=3
                )
                loss = tf.reduce_sum(out**2)
            return [loss, *tape.gradient(loss, [x, kernel])]

        return loss_and_gradients(x, kernel)

    for got, want in zip(looped_loss(shifted_matmul_conv), looped_loss(reference_conv)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_gradients_under_a_distribution_strategy():
    x, kernel, g = _arrays(4, 4, 12, dtype=tf.float32)
    strategy = tf.distribute.MirroredStrategy(["CPU:0"])

    @tf.function
    def replica_gradients():
        return strategy.run(lambda: _value_and_gradients(shifted_matmul_conv, x, kernel, g))

    with strategy.scope():
        got = replica_gradients()
    for got_part, want_part in zip(got, _value_and_gradients(reference_conv, x, kernel, g)):
        np.testing.assert_allclose(got_part, want_part, rtol=1e-5, atol=1e-5)
