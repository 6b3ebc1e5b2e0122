"""A model with a learned dequantizer exports: encode evaluates q at the bin centre."""

from __future__ import annotations

import numpy as np
import onnxruntime
import tensorflow as tf

from export import export_model
from glow_tf import GlowConfig, GlowModel
from glow_tf.data.dequantize import bin_centre_noise
from tests.conftest import tiny_images
from tests.flow.test_bijector_contract import randomize


def test_saved_model_and_onnx_encoders_match_the_model(tmp_path):
    config = GlowConfig(
        image_shape=(4, 4, 1), num_levels=2, num_steps=1, hidden_channels=8, num_bits=3, seed=2
    )
    model = GlowModel(config, dequantizer="variational")
    images = tiny_images(4, config.image_shape, seed=5)
    model.initialize(images)
    randomize(model.dequantizer, seed=6, scale=0.05)
    expected = model.encode(images, noise=bin_centre_noise(images, config.num_bits))
    uniform = GlowModel(config)
    uniform.set_weights([w.numpy() for w in model.weights if "dequantizer" not in w.path])
    assert not np.allclose(uniform.encode(images).bits_per_dim, expected.bits_per_dim, atol=1e-3)

    path = export_model(model, tmp_path, formats="saved_model,onnx")
    served = tf.saved_model.load(str(path)).signatures["encode"](images=tf.constant(images))
    np.testing.assert_allclose(served["bits_per_dim"], expected.bits_per_dim, atol=1e-5)
    np.testing.assert_allclose(served["eps"], expected.flat, atol=1e-5)
    session = onnxruntime.InferenceSession(str(path / "encoder.onnx"))
    outputs = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, {"images": images}))
    )
    np.testing.assert_allclose(outputs["bits_per_dim"], expected.bits_per_dim, atol=1e-4)
