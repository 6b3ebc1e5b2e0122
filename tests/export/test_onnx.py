"""ONNX: decoder.onnx / encoder.onnx through onnxruntime, against the Keras model."""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
import onnxruntime
import pytest

from export import ServedGlow, export_model
from export.onnx import convert_to_onnx, non_default_domain_ops
from export.verify import pixel_agreement
from glow_tf import GlowConfig, GlowModel, postprocess
from glow_tf.data import bin_centre_noise
from tests.conftest import tiny_images
from tests.export.conftest import BATCH_SIZES, TEMPERATURE


def _session(exported, name):
    path = exported.version_dir / f"{name}.onnx"
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(session, inputs):
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs), strict=True))


@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_decoder_matches_tensorflow(exported, batch):
    inputs = exported.inputs[batch]
    feed = {"eps": inputs["eps"], "temperature": np.array(TEMPERATURE, np.float32)}
    outputs = _run(_session(exported, "decoder"), exported.with_labels(feed, batch))
    expected = exported.model.decode(
        inputs["eps"], y=inputs["labels"], temperature=float(TEMPERATURE), as_uint8=False
    ).numpy()
    np.testing.assert_allclose(outputs["continuous"], expected, atol=1e-4, rtol=0)
    assert outputs["images"].dtype == np.uint8
    expected_images = postprocess(expected, exported.config.num_bits).numpy()
    identical, steps = pixel_agreement(outputs["images"], expected_images, exported.config.num_bits)
    assert identical >= 0.999 and steps <= 1, (identical, steps)


@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_encoder_matches_tensorflow(exported, batch):
    inputs = exported.inputs[batch]
    images = inputs["images"]
    outputs = _run(_session(exported, "encoder"), exported.with_labels({"images": images}, batch))
    noise = bin_centre_noise(images, exported.config.num_bits)
    encoding = exported.model.encode(images, y=inputs["labels"], noise=noise)
    np.testing.assert_allclose(outputs["bits_per_dim"], encoding.bits_per_dim, rtol=1e-5, atol=0)
    np.testing.assert_allclose(outputs["eps"], encoding.flat, atol=1e-4)
    for i, eps in enumerate(encoding.latents):
        np.testing.assert_allclose(outputs[f"eps_{i}"], eps, atol=1e-4)


def test_graphs_hold_default_domain_ops_only(exported):
    for name in ("decoder", "encoder"):
        model = onnx.load(str(exported.version_dir / f"{name}.onnx"))
        assert non_default_domain_ops(model) == []
        assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
        assert {(imp.domain, imp.version >= 17) for imp in model.opset_import} == {("", True)}
        op_types = {node.op_type for node in model.graph.node}
        assert "Conv" in op_types
        assert not {op for op in op_types if "Inverse" in op or "Det" in op or "Random" in op}


def test_inputs_and_outputs_are_named_with_a_batch_axis(exported):
    config = exported.config
    labels = ["labels"] if config.conditional else []
    levels = [f"eps_{i}" for i in range(config.num_levels)]
    expected = {
        "decoder": (["eps", "temperature", *labels], ["images", "continuous"]),
        "encoder": (["images", *labels], ["eps", *levels, "bits_per_dim"]),
    }
    for name, (inputs, outputs) in expected.items():
        session = _session(exported, name)
        assert sorted(i.name for i in session.get_inputs()) == sorted(inputs)
        assert sorted(o.name for o in session.get_outputs()) == sorted(outputs)
        for value in [*session.get_inputs(), *session.get_outputs()]:
            if value.name != "temperature":
                assert value.shape[0] == "batch", (name, value.name, value.shape)
    decoder_inputs = {i.name: i for i in _session(exported, "decoder").get_inputs()}
    assert decoder_inputs["eps"].shape == ["batch", config.num_dims]
    assert decoder_inputs["temperature"].shape == []


def test_the_readme_onnxruntime_example_runs(unconditional_exported, capsys):
    readme = (pathlib.Path(__file__).parents[2] / "export" / "README.md").read_text()
    example = readme.split("<!-- onnxruntime-example -->")[1].split("```python")[1]
    example = example.split("```")[0]
    assert len(example.strip().splitlines()) <= 10
    code = example.replace('"exports/glow/1"', repr(str(unconditional_exported.version_dir)))
    exec(compile(code, "README.md", "exec"), {})
    image_shape = unconditional_exported.config.image_shape
    assert capsys.readouterr().out.strip() == f"(16, {', '.join(map(str, image_shape))}) uint8"


@pytest.mark.parametrize("permutation", ["shuffle", "reverse"])
def test_channel_permutations_convert(unconditional_exported, permutation):
    config = unconditional_exported.config.replace(permutation=permutation, num_steps=1)
    model = GlowModel(config)
    model.initialize(tiny_images(16, config.image_shape, seed=5))
    decoder = convert_to_onnx(ServedGlow(model), "decoder")
    session = onnxruntime.InferenceSession(decoder.SerializeToString())
    eps = unconditional_exported.inputs[3]["eps"]
    feed = {"eps": eps, "temperature": np.array(TEMPERATURE, np.float32)}
    expected = model.decode(eps, temperature=float(TEMPERATURE), as_uint8=False)
    np.testing.assert_allclose(session.run(["continuous"], feed)[0], expected, atol=1e-4, rtol=0)
