"""The dequantisations a model can be built with, by name."""

from __future__ import annotations

import keras

from glow_tf.data.dequantize import UniformDequantization
from glow_tf.data.variational_dequantize import VariationalDequantization

__all__ = ["DEQUANTIZATIONS", "make_dequantizer"]

DEQUANTIZATIONS = ("uniform", "variational")


def make_dequantizer(
    dequantization: str, num_bits: int, seed: int | None = None, dtype=None
) -> keras.layers.Layer:
    """The dequantizer layer of a `FlowModel` for a name of `DEQUANTIZATIONS`:

        "uniform"       UniformDequantization: u ~ U[0, 1/n_bins), log q = D log n_bins
        "variational"   VariationalDequantization: a learned flow q(u | bins)
                        (Flow++), trained jointly with the model

    Args:
      dequantization: "uniform" or "variational".
      num_bits: bits per pixel value.
      seed: seed of a learned dequantizer's initial weights.
      dtype: the layer's dtype policy.
    """
    if dequantization == "uniform":
        return UniformDequantization(num_bits, dtype=dtype, name="dequantizer")
    if dequantization == "variational":
        return VariationalDequantization(num_bits, seed=seed, dtype=dtype, name="dequantizer")
    raise ValueError(
        f"unknown dequantization {dequantization!r}; expected one of {DEQUANTIZATIONS}"
    )
