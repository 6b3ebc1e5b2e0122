"""The precision the networks compute in: that of their input, on float32 weights."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["in_precision_of"]


def in_precision_of(inputs: tf.Tensor, *weights) -> list[tf.Tensor]:
    """The float32 `weights` cast to the dtype of `inputs`.

    The layers of `glow_tf.nn` compute in the precision of their input: under
    their own dtype policy (Keras casts the input to `compute_dtype`), or in
    whatever precision a container that turned their autocasting off feeds
    them (`CouplingNetwork`: its policy's half precision in training, float32
    otherwise). Their weights are created with `autocast=False`, so they are
    always read as stored (float32, the master weights) and cast here, once.
    """
    return [tf.cast(weight, inputs.dtype) for weight in weights]
