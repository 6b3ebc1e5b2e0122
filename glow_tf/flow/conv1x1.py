"""Invertible 1x1 convolution: a learned channel mixing W, dense or LU form."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from glow_tf.flow.base import FlowLayer, GlowBijector, ScopedFlag, constant_log_det

__all__ = [
    "InvertibleConv1x1",
    "Conv1x1Layer",
    "Conv1x1LULayer",
    "precomputed_inverses",
    "precomputed_inverses_active",
    "random_rotation",
]

_PRECOMPUTED_INVERSES = ScopedFlag()


def precomputed_inverses():
    """Within this context, the 1x1-conv layers' `bijector()` evaluates W, W^-1
    and log|det W| once, eagerly, from the weights' current values.

    Inside a `tf.function` being traced (`tf.init_scope`) they enter the graph
    as constants, so the graph holds no MatrixInverse / LogMatrixDeterminant
    op: what export for serving (SavedModel, ONNX) needs. The values are the
    ones the layers compute at call time, bit for bit; they are snapshots, so
    trace again after the weights change.
    """
    return _PRECOMPUTED_INVERSES.enabled()


def precomputed_inverses_active() -> bool:
    """Whether `precomputed_inverses()` is in force."""
    return _PRECOMPUTED_INVERSES.active


def _precomputed_if_active(build: Callable[[], InvertibleConv1x1]) -> InvertibleConv1x1:
    if not _PRECOMPUTED_INVERSES.active:
        return build()
    with tf.init_scope():
        if not tf.executing_eagerly():
            raise RuntimeError("precomputed_inverses() needs eager execution (TF2 behaviour)")
        bijector = build()
        values = (bijector.kernel, bijector.inverse_kernel, bijector.log_abs_det)
        values = [tf.convert_to_tensor(value).numpy() for value in values]
    # tf.constant: Const nodes in a traced graph, rather than captured eager tensors.
    kernel, inverse_kernel, log_abs_det = (tf.constant(value) for value in values)
    return InvertibleConv1x1(
        kernel, inverse_kernel=inverse_kernel, log_abs_det=log_abs_det, name=bijector.name
    )


class InvertibleConv1x1(GlowBijector):
    """Per-pixel channel mixing by an invertible C x C matrix.

    Pixels are row vectors (OpenAI's convention): on an event [H, W, C],

        forward:  y[i, j, :] = x[i, j, :] @ W
        inverse:  x[i, j, :] = y[i, j, :] @ W^-1
        log|det dy/dx| = H * W * log|det W|

    Args:
      kernel: W, [C, C].
      inverse_kernel: optional precomputed W^-1 (else `tf.linalg.inv(W)`).
      log_abs_det: optional precomputed log|det W| (else computed in float64,
        as OpenAI does, from a QR decomposition, then cast back).

    References:
      Kingma & Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    def __init__(
        self,
        kernel,
        inverse_kernel=None,
        log_abs_det=None,
        validate_args: bool = False,
        name: str = "conv1x1",
    ):
        parameters = dict(locals())
        self.kernel = tf.convert_to_tensor(kernel)
        self._inverse_kernel = inverse_kernel
        self._log_abs_det = log_abs_det
        super().__init__(
            dtype=self.kernel.dtype,
            is_constant_jacobian=True,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    @property
    def inverse_kernel(self) -> tf.Tensor:
        if self._inverse_kernel is None:
            return tf.linalg.inv(self.kernel)
        return tf.convert_to_tensor(self._inverse_kernel, dtype=self.kernel.dtype)

    @property
    def log_abs_det(self) -> tf.Tensor:
        if self._log_abs_det is None:
            # log|det W| = sum log|diag R| of W = QR, in float64. Same value and
            # gradient (W^-T) as slogdet, which has no XLA kernel (--jit).
            upper = tf.linalg.qr(tf.cast(self.kernel, tf.float64))[1]
            log_abs_det = tf.reduce_sum(tf.math.log(tf.abs(tf.linalg.diag_part(upper))))
            return tf.cast(log_abs_det, self.kernel.dtype)
        return tf.convert_to_tensor(self._log_abs_det, dtype=self.kernel.dtype)

    def _mix(self, x, kernel):
        channels = self.kernel.shape[0]
        if x.shape[-1] is not None and x.shape[-1] != channels:
            raise ValueError(f"{self.name}: expected {channels} channels, got shape {x.shape}")
        return tf.nn.conv2d(x, kernel[tf.newaxis, tf.newaxis], 1, "VALID")

    def _forward_and_log_det(self, x):
        pixels = x.shape[1] * x.shape[2]
        return self._mix(x, self.kernel), constant_log_det(self.log_abs_det * pixels, x)

    def _inverse_and_log_det(self, y):
        pixels = y.shape[1] * y.shape[2]
        return (
            self._mix(y, self.inverse_kernel),
            constant_log_det(-self.log_abs_det * pixels, y),
        )


def random_rotation(channels: int, seed: int | None) -> np.ndarray:
    """A random orthogonal C x C matrix (Q of a Gaussian matrix's QR), float32."""
    gaussian = np.random.default_rng(seed).standard_normal((channels, channels))
    return np.linalg.qr(gaussian)[0].astype(np.float32)


@keras.saving.register_keras_serializable(package="glow_tf")
class Conv1x1Layer(FlowLayer):
    """Owns a dense W [C, C], initialised to a random rotation.

    OpenAI's default form (`invconv/W`).
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        channels = int(input_shape[-1])
        seed = self.seed
        self.kernel = self.add_weight(
            shape=(channels, channels),
            # drawn when the weight is allocated (never, for a shapes-only dry run)
            initializer=lambda shape, dtype=None: random_rotation(shape[0], seed),
            name="kernel",
        )

    def bijector(self, training: bool = False) -> InvertibleConv1x1:
        return _precomputed_if_active(lambda: InvertibleConv1x1(tf.convert_to_tensor(self.kernel)))

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="glow_tf")
class Conv1x1LULayer(FlowLayer):
    """Owns W in LU form, so log|det W| costs O(C):

        W = P @ (L * strict_lower + I) @ (U * strict_upper + diag(sign_s * exp(log_s)))
        log|det W| = sum(log_s)

    P (a permutation) and sign_s are fixed; L, U and log_s are trained. W and
    W^-1 = U'^-1 L'^-1 P^-1 are assembled in float64, as in OpenAI's LU code
    (`invconv/P, L, U, sign_S, log_S`).
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        channels = int(input_shape[-1])
        permutation, lower, upper = _lu(random_rotation(channels, self.seed))
        diagonal = np.diag(upper)

        def constant(value, name, trainable=True):
            return self.add_weight(
                shape=value.shape,
                initializer=keras.initializers.Constant(value.astype(np.float32)),
                trainable=trainable,
                name=name,
            )

        self.permutation = constant(permutation, "permutation", trainable=False)
        self.lower = constant(lower, "lower")
        self.upper = constant(np.triu(upper, 1), "upper")
        self.sign_s = constant(np.sign(diagonal), "sign_s", trainable=False)
        self.log_s = constant(np.log(np.abs(diagonal)), "log_s")

    def factors64(self):
        """(P, L', U') in float64, with the masks and the diagonal applied."""
        channels = self.lower.shape[0]
        strict_lower = np.tril(np.ones((channels, channels)), -1)
        permutation = tf.cast(tf.convert_to_tensor(self.permutation), tf.float64)
        lower = tf.cast(tf.convert_to_tensor(self.lower), tf.float64) * strict_lower
        lower += tf.eye(channels, dtype=tf.float64)
        sign_s = tf.cast(tf.convert_to_tensor(self.sign_s), tf.float64)
        log_s = tf.cast(tf.convert_to_tensor(self.log_s), tf.float64)
        upper = tf.cast(tf.convert_to_tensor(self.upper), tf.float64) * strict_lower.T
        upper += tf.linalg.diag(sign_s * tf.exp(log_s))
        return permutation, lower, upper

    def bijector(self, training: bool = False) -> InvertibleConv1x1:
        return _precomputed_if_active(self._assemble_bijector)

    def _assemble_bijector(self) -> InvertibleConv1x1:
        permutation, lower, upper = self.factors64()
        kernel = permutation @ (lower @ upper)
        inverse_kernel = tf.linalg.inv(upper) @ (
            tf.linalg.inv(lower) @ tf.linalg.inv(permutation)
        )
        log_s = tf.convert_to_tensor(self.log_s)
        return InvertibleConv1x1(
            tf.cast(kernel, log_s.dtype),
            inverse_kernel=tf.cast(inverse_kernel, log_s.dtype),
            log_abs_det=tf.reduce_sum(log_s),
            name="conv1x1_lu",
        )

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _lu(matrix: np.ndarray):
    """P, L, U with matrix = P @ L @ U (partial pivoting), like scipy.linalg.lu."""
    n = matrix.shape[0]
    upper = matrix.astype(np.float64).copy()
    lower = np.eye(n)
    rows = np.arange(n)
    for k in range(n - 1):
        pivot = k + int(np.argmax(np.abs(upper[k:, k])))
        if pivot != k:
            upper[[k, pivot], :] = upper[[pivot, k], :]
            lower[[k, pivot], :k] = lower[[pivot, k], :k]
            rows[[k, pivot]] = rows[[pivot, k]]
        factors = upper[k + 1 :, k] / upper[k, k]
        lower[k + 1 :, k] = factors
        upper[k + 1 :, :] -= factors[:, None] * upper[k, :]
    permutation = np.zeros((n, n))
    permutation[rows, np.arange(n)] = 1.0
    return permutation, lower, np.triu(upper)
