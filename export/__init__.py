"""Export a glow_tf GlowModel for serving: TF Serving SavedModel and ONNX decoder/encoder.

    GlowModel (.keras)
      -> ServedGlow: sample / decode / decode_levels / encode / encode_with_noise,
         traced once with the 1x1 convs' inverses and log-dets as constants
      -> OUT/<name>/<version>/saved_model.pb + variables/   (TF Serving, TF only to load)
      -> OUT/<name>/<version>/decoder.onnx, encoder.onnx    (onnxruntime, default ops only)
      -> python -m export.verify: the export against the Keras model, SavedModel in `python -I`

Command line: `python -m export --model model.keras --out DIR` (see export/README.md).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from export.exporter import FORMATS, export_model, parse_formats  # noqa: E402
from export.loading import load_glow_model  # noqa: E402
from export.serving import DEFAULT_MAX_NUM_SAMPLES, ServedGlow, bin_centre_noise  # noqa: E402

__all__ = [
    "DEFAULT_MAX_NUM_SAMPLES",
    "FORMATS",
    "ServedGlow",
    "bin_centre_noise",
    "export_model",
    "load_glow_model",
    "parse_formats",
]
