"""--batch-size K: every signature and ONNX graph has batch dimension K."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import tensorflow as tf

from export import export_model


def test_a_fixed_batch_size_is_in_every_signature_and_graph(unconditional_exported, tmp_path):
    exported = unconditional_exported
    config = exported.config
    version_dir = export_model(exported.model, tmp_path, batch_size=2, max_batch_size=8)
    loaded = tf.saved_model.load(str(version_dir))
    decode = loaded.signatures["decode"]
    assert decode.structured_input_signature[1]["eps"].shape == [2, config.num_dims]
    assert decode.structured_outputs["images"].shape == [2, *config.image_shape]
    sample = loaded.signatures["serving_default"]
    seed = tf.constant(3, tf.int64)
    images = sample(num_samples=tf.constant(2), temperature=tf.constant(0.5), seed=seed)["images"]
    np.testing.assert_array_equal(images, exported.model.sample(2, 0.5, seed=3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be 2"):
        sample(num_samples=tf.constant(3), temperature=tf.constant(0.5), seed=seed)
    eps = np.zeros((3, config.num_dims), np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected shape \\[2,"):
        decode(eps=tf.constant(eps), temperature=tf.constant(1.0))
    session = onnxruntime.InferenceSession(str(version_dir / "decoder.onnx"))
    assert session.get_inputs()[0].shape == [2, config.num_dims]
    feed = {"eps": eps[:2], "temperature": np.array(1.0, np.float32)}
    continuous = session.run(["continuous"], feed)[0]
    np.testing.assert_allclose(
        continuous, exported.model.decode(eps[:2], as_uint8=False), atol=1e-4, rtol=0
    )
