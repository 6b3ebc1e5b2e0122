"""Export a glow_tf flow model for serving: TF Serving SavedModel and ONNX decoder/encoder.

    GlowModel, RealNVPModel, ... (.keras, glow_tf.saving.load_flow_model)
      -> served.py:       ServedFlow: sample / decode / decode_levels / encode /
                          encode_with_noise (+ the ONNX decoder / encoder), traced once
                          with the 1x1 convs' inverses and log-dets as constants
      -> saved_model.py:  OUT/<name>/<version>/saved_model.pb + variables/   (TF only to load)
      -> onnx.py:         OUT/<name>/<version>/decoder.onnx, encoder.onnx   (onnxruntime)
      exporter.py         export_model: the formats + glow_export.json, staged in layout.py's
                          TF Serving layout OUT/<name>/<version>/
      verify.py           the export against the Keras model, the SavedModel run by
                          isolation.py in `python -I`, where glow_tf cannot be imported

Command line: `python -m export --model model.keras --out DIR` (see export/README.md).
"""

import os

from glow_tf.cli import quiet_tensorflow_for_commands  # noqa: I001 (before TensorFlow)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
quiet_tensorflow_for_commands()

from export.exporter import FORMATS, export_model, parse_formats  # noqa: E402
from export.served import DEFAULT_MAX_BATCH_SIZE, ServedFlow, ServedGlow  # noqa: E402
from glow_tf.data.dequantize import bin_centre_noise  # noqa: E402
from glow_tf.saving import load_flow_model, load_glow_model  # noqa: E402

__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "FORMATS",
    "ServedFlow",
    "ServedGlow",
    "bin_centre_noise",
    "export_model",
    "load_flow_model",
    "load_glow_model",
    "parse_formats",
]
