"""The SavedModel: TF Serving's format, with the served functions as named signatures.

    saved_model.pb   signatures serving_default (= sample), sample, decode,
                     decode_levels, encode, encode_with_noise (see `export.served`)
    variables/       the weights the signatures read

Loading needs TensorFlow only: no glow_tf, no Keras, no TFP, no Python state
(`tf.saved_model.load(path).signatures["decode"](eps=..., temperature=...)`).
"""

from __future__ import annotations

import pathlib

import tensorflow as tf

from export.served import ServedFlow
from glow_tf import precomputed_inverses

__all__ = ["write_saved_model", "DEFAULT_SIGNATURE"]

DEFAULT_SIGNATURE = "sample"


def write_saved_model(served: ServedFlow, directory: pathlib.Path) -> None:
    """Saves `served`'s functions as a SavedModel in `directory` (which must be empty)."""
    root = tf.Module()
    root.glow_variables = served.variables()
    signatures = served.concrete_functions()
    signatures["serving_default"] = signatures[DEFAULT_SIGNATURE]
    with precomputed_inverses():  # nothing is retraced, but if it were, the same way
        tf.saved_model.save(root, str(directory), signatures=signatures)
