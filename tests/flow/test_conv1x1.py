"""The 1x1 convolution: z @ W per pixel, LU assembly, float64 log-determinant."""

import numpy as np
import tensorflow as tf

from glow_tf.flow import Conv1x1Layer, Conv1x1LULayer, InvertibleConv1x1
from glow_tf.flow.conv1x1 import _lu, random_rotation


def test_applies_row_vector_times_kernel():
    kernel = np.random.default_rng(0).standard_normal((5, 5)).astype(np.float32)
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 5)).astype(np.float32)
    y, log_det = InvertibleConv1x1(kernel).forward_and_log_det(x)
    np.testing.assert_allclose(y, x @ kernel, atol=1e-5)
    np.testing.assert_allclose(log_det, 9 * np.linalg.slogdet(kernel.astype(np.float64))[1], rtol=1e-6)


def test_lu_factorisation_reconstructs_the_matrix():
    matrix = random_rotation(7, seed=3).astype(np.float64)
    permutation, lower, upper = _lu(matrix)
    np.testing.assert_allclose(permutation @ lower @ upper, matrix, atol=1e-12)
    np.testing.assert_allclose(np.tril(lower, -1) + np.eye(7), lower)
    np.testing.assert_allclose(np.triu(upper), upper)
    assert np.all(np.abs(np.tril(lower, -1)) <= 1.0 + 1e-12)  # partial pivoting


def test_lu_layer_starts_at_the_dense_layers_rotation():
    dense, lu = Conv1x1Layer(seed=5), Conv1x1LULayer(seed=5)
    for layer in (dense, lu):
        layer.build((None, 2, 2, 6))
    np.testing.assert_allclose(lu.bijector().kernel, dense.kernel, atol=1e-6)
    bijector = lu.bijector()
    np.testing.assert_allclose(bijector.inverse_kernel @ bijector.kernel, np.eye(6), atol=1e-5)
    np.testing.assert_allclose(bijector.log_abs_det, np.sum(lu.log_s), atol=1e-6)


def test_log_det_is_computed_in_float64():
    # A matrix whose float32 determinant underflows but float64's does not.
    kernel = np.diag(np.full(64, 1e-2)).astype(np.float32)
    log_det = InvertibleConv1x1(kernel).log_abs_det
    np.testing.assert_allclose(log_det, 64 * np.log(1e-2), rtol=1e-5)
    assert np.isfinite(log_det)
    assert tf.linalg.det(tf.constant(kernel)).numpy() == 0.0
