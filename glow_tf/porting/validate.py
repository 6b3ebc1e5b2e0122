"""The 1x1 convolutions of a set of OpenAI weights are invertible, and well enough in float32.

A Glow decodes through W^-1 of every `invconv`, so a singular or badly
conditioned W gives no error at load but garbage (or Inf) when sampling. Each
W is checked in float64 before anything is loaded:

    dense:  model/i/j/invconv/W                         W  [C, C]
    LU:     model/i/j/invconv/{P, L, U, sign_S, log_S}  W = P @ L' @ U'
            L' = L * strict_lower + I,  U' = U * strict_upper + diag(sign_S * exp(log_S))

    finite values, P a permutation matrix, and cond(W) = s_max / s_min <= MAX_CONDITION_NUMBER

Solving with a float32 W loses about log10(cond(W)) of float32's ~7 digits:
at cond(W) = 1e4 one step's inverse is good to ~1e4 * 6e-8 = 6e-4 relative,
already a third of an 8-bit quantisation bin (1/512 at the centre), so a
larger condition number cannot give exact round trips. Trained official
weights are far below it: the reference runs (ref_A, ref_B, 60 official
steps from an orthogonal init) have cond(W) between 1.29 and 1.69.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from glow_tf.porting.openai_names import PortingError

__all__ = [
    "MAX_CONDITION_NUMBER",
    "assembled_invconv_kernels",
    "check_invertible_convolutions",
]

MAX_CONDITION_NUMBER = 1e4
LU_FACTORS = ("P", "L", "U", "sign_S", "log_S")
_INVCONV = "invconv/"


def _is_square(value) -> bool:
    shape = np.shape(value)
    return len(shape) == 2 and shape[0] == shape[1]


def _lu_kernel(scope: str, factors: Mapping[str, np.ndarray]) -> np.ndarray:
    p, lower, upper, sign_s, log_s = (np.asarray(factors[name], np.float64) for name in LU_FACTORS)
    channels = p.shape[0]
    if not np.array_equal(p @ p.T, np.eye(channels)) or not np.all(np.isin(p, (0.0, 1.0))):
        raise PortingError(f"{scope}P is not a permutation matrix")
    strict_lower = np.tril(np.ones((channels, channels)), -1)
    lower = lower * strict_lower + np.eye(channels)
    upper = upper * strict_lower.T + np.diag(sign_s * np.exp(log_s))
    return p @ lower @ upper


def assembled_invconv_kernels(variables: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every 1x1 convolution's W in float64, by the name(s) that store it.

    Dense kernels are keyed by their variable name ("model/0/0/invconv/W"),
    LU ones by "model/0/0/invconv/{P,L,U,sign_S,log_S}". A kernel whose
    variables are missing or misshapen is left out: the name and shape checks
    of the port report those.

    Raises:
      PortingError: a non-finite value, or an LU `P` that is not a permutation.
    """
    kernels = {}
    for name, value in variables.items():
        if name.endswith(_INVCONV + "W") and _is_square(value):
            kernels[name] = np.asarray(value, np.float64)
        elif name.endswith(_INVCONV + "P") and _is_square(value):
            scope = name[: -len("P")]
            factors = {f: variables.get(scope + f) for f in LU_FACTORS}
            channels = np.shape(value)[0]
            shapes_ok = all(
                factors[f] is not None and np.shape(factors[f]) == (channels, channels)
                for f in ("L", "U")
            ) and all(
                factors[f] is not None and np.shape(factors[f]) == (channels,)
                for f in ("sign_S", "log_S")
            )
            if shapes_ok:
                for factor, array in factors.items():
                    if not np.all(np.isfinite(np.asarray(array, np.float64))):
                        raise PortingError(f"{scope}{factor}: contains NaN or Inf")
                kernels[scope + "{" + ",".join(LU_FACTORS) + "}"] = _lu_kernel(scope, factors)
    for name, kernel in kernels.items():
        if not np.all(np.isfinite(kernel)):
            raise PortingError(f"{name}: contains NaN or Inf")
    return kernels


def check_invertible_convolutions(
    variables: Mapping[str, np.ndarray], max_condition_number: float = MAX_CONDITION_NUMBER
) -> dict[str, float]:
    """Raises PortingError naming the first 1x1 convolution that is singular or ill-conditioned.

    Returns:
      cond(W) by the name(s) of each kernel checked.
    """
    conditions = {}
    for name, kernel in assembled_invconv_kernels(variables).items():
        singular_values = np.linalg.svd(kernel, compute_uv=False)
        smallest, largest = singular_values[-1], singular_values[0]
        condition = float(largest / smallest) if smallest > 0 else np.inf
        conditions[name] = condition
        if smallest <= largest * len(singular_values) * np.finfo(np.float64).eps:
            raise PortingError(
                f"{name} is singular (condition number {condition:.1e}); the checkpoint is "
                "corrupt or not a Glow model"
            )
        if condition > max_condition_number:
            raise PortingError(
                f"{name} is ill-conditioned (condition number {condition:.1e} > "
                f"{max_condition_number:.0e}): its inverse in float32 cannot decode exactly; the "
                "checkpoint is corrupt, diverged or not a Glow model"
            )
    return conditions
