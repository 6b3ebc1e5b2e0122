"""Export fixtures: tiny models exported once per session, and one isolated run per export.

Two exports cover the model variants between them:

    unconditional   additive coupling, dense 1x1 conv, 8x8x1, 5 bits
    conditional     affine coupling, LU 1x1 conv, 3 classes, 8x8x3, 8 bits

(the OpenAI reference models, affine/unconditional and additive/conditional,
both dense, are exported in test_openai_reference.py). Every SavedModel request
a test needs is listed in `requests_for` and run in one `python -I` process
per export, whose responses the tests then read.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import pytest

from export import export_model
from export.isolation import IsolatedRun, run_isolated
from glow_tf import GlowConfig, GlowModel
from tests.conftest import tiny_images

CONFIGS = {
    "unconditional": GlowConfig(
        image_shape=(8, 8, 1),
        num_levels=2,
        num_steps=2,
        hidden_channels=8,
        coupling="additive",
        permutation="conv1x1",
        num_bits=5,
        seed=3,
    ),
    "conditional": GlowConfig(
        image_shape=(8, 8, 3),
        num_levels=2,
        num_steps=2,
        hidden_channels=8,
        coupling="affine",
        permutation="conv1x1",
        lu_decomposed=True,
        num_classes=3,
        num_bits=8,
        seed=4,
    ),
}
MAX_NUM_SAMPLES = 100
BATCH_SIZES = (1, 3, 64)
TEMPERATURE = np.float32(0.7)


@dataclasses.dataclass
class Exported:
    """One exported tiny model and what the tests feed it."""

    name: str
    model: GlowModel
    keras_path: pathlib.Path
    out: pathlib.Path
    version_dir: pathlib.Path
    inputs: dict  # batch size -> {"eps", "images", "noise", "labels"}

    @property
    def config(self) -> GlowConfig:
        return self.model.glow_config

    def labels(self, batch: int):
        return self.inputs[batch]["labels"]

    def with_labels(self, inputs: dict, batch: int) -> dict:
        labels = self.labels(batch)
        return inputs if labels is None else {**inputs, "labels": labels}


def make_inputs(config: GlowConfig, batch: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "eps": rng.standard_normal((batch, config.num_dims)).astype(np.float32),
        "images": tiny_images(batch, config.image_shape, seed=seed),
        "noise": rng.uniform(0, 1 / config.num_bins, (batch, *config.image_shape)).astype(
            np.float32
        ),
        "labels": rng.integers(0, config.num_classes, batch).astype(np.int32)
        if config.conditional
        else None,
    }


def split_levels(flat: np.ndarray, config: GlowConfig) -> dict:
    """{"eps_i": [B, h_i, w_i, c_i]} of flat latents, in flatten_latents' (h, w, c) order."""
    sizes = np.cumsum([int(np.prod(s)) for s in config.eps_shapes])[:-1]
    parts = np.split(flat, sizes, axis=1)
    return {
        f"eps_{i}": part.reshape(-1, *shape)
        for i, (part, shape) in enumerate(zip(parts, config.eps_shapes, strict=True))
    }


def _export(name: str, root: pathlib.Path) -> Exported:
    config = CONFIGS[name]
    model = GlowModel(config)
    images = tiny_images(32, config.image_shape, seed=11)
    model.initialize(images, np.arange(32) % 3 if config.conditional else None)
    keras_path = root / "model.keras"
    model.save(keras_path)
    out = root / "out"
    version_dir = export_model(model, out, name=name, max_num_samples=MAX_NUM_SAMPLES)
    inputs = {batch: make_inputs(config, batch, seed=batch) for batch in BATCH_SIZES}
    return Exported(name, model, keras_path, out, version_dir, inputs)


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory) -> dict:
    """name -> Exported, each built on first use."""

    class Cache(dict):
        def __missing__(self, name):
            self[name] = _export(name, tmp_path_factory.mktemp(f"export_{name}"))
            return self[name]

    return Cache()


@pytest.fixture(scope="session", params=sorted(CONFIGS))
def exported(request, export_cache) -> Exported:
    return export_cache[request.param]


@pytest.fixture(scope="session")
def conditional_exported(export_cache) -> Exported:
    return export_cache["conditional"]


@pytest.fixture(scope="session")
def unconditional_exported(export_cache) -> Exported:
    return export_cache["unconditional"]


def requests_for(exported: Exported) -> dict[str, tuple[str, dict]]:
    """Every SavedModel request of the tests, by a label."""
    config = exported.config
    requests = {}
    for batch in BATCH_SIZES:
        inputs = exported.inputs[batch]
        decode = {"eps": inputs["eps"], "temperature": TEMPERATURE}
        requests[f"decode/{batch}"] = ("decode", exported.with_labels(decode, batch))
        levels = {**split_levels(inputs["eps"], config), "temperature": TEMPERATURE}
        requests[f"decode_levels/{batch}"] = ("decode_levels", exported.with_labels(levels, batch))
        encode = {"images": inputs["images"]}
        requests[f"encode/{batch}"] = ("encode", exported.with_labels(encode, batch))
        noisy = {"images": inputs["images"], "noise": inputs["noise"]}
        requests[f"encode_with_noise/{batch}"] = (
            "encode_with_noise",
            exported.with_labels(noisy, batch),
        )
        sample = {
            "num_samples": np.int32(batch),
            "temperature": TEMPERATURE,
            "seed": np.int64(7),
        }
        requests[f"sample/{batch}"] = ("serving_default", exported.with_labels(sample, batch))
    zero = {"num_samples": np.int32(3), "temperature": np.float32(0), "seed": np.int64(1)}
    requests["sample_t0"] = ("sample", exported.with_labels(zero, 3))
    zeros = {"eps": np.zeros((3, config.num_dims), np.float32), "temperature": np.float32(1)}
    requests["decode_zeros"] = ("decode", exported.with_labels(zeros, 3))
    for label, (signature, inputs) in bad_requests(exported).items():
        requests[f"bad/{label}"] = (signature, inputs)
    return requests


def bad_requests(exported: Exported) -> dict[str, tuple[str, dict]]:
    """Requests the signatures must reject, by a label (see test_bad_input.py)."""
    config = exported.config
    batch = 3
    eps = exported.inputs[batch]["eps"]
    images = exported.inputs[batch]["images"]

    def decode(**changes):
        inputs = exported.with_labels({"eps": eps, "temperature": TEMPERATURE}, batch)
        return ("decode", {**inputs, **changes})

    def sample(**changes):
        inputs = {"num_samples": np.int32(batch), "temperature": TEMPERATURE, "seed": np.int64(1)}
        return ("sample", {**exported.with_labels(inputs, batch), **changes})

    def encode(signature="encode", **changes):
        inputs = {"images": images}
        if signature == "encode_with_noise":
            inputs["noise"] = exported.inputs[batch]["noise"]
        return (signature, {**exported.with_labels(inputs, batch), **changes})

    requests = {
        "eps_wrong_width": decode(eps=eps[:, :-1]),
        "eps_wrong_rank": decode(eps=eps.reshape(batch, -1, 1)),
        "eps_float64": decode(eps=eps.astype(np.float64)),
        "eps_nan": decode(eps=np.where(eps > 1, np.nan, eps).astype(np.float32)),
        "temperature_negative": decode(temperature=np.float32(-0.5)),
        "temperature_nan": decode(temperature=np.float32(np.nan)),
        "temperature_vector": decode(temperature=np.full(batch, 0.7, np.float32)),
        "images_float": encode(images=images.astype(np.float32)),
        "images_wrong_shape": encode(images=images.reshape(batch, -1)),
        "images_wrong_channels": encode(
            images=np.zeros((batch, *config.image_shape[:2], 2), np.uint8)
        ),
        "noise_out_of_range": encode(
            "encode_with_noise", noise=np.full((batch, *config.image_shape), 0.9, np.float32)
        ),
        "num_samples_zero": sample(num_samples=np.int32(0)),
        "num_samples_negative": sample(num_samples=np.int32(-2)),
        "num_samples_above_cap": sample(num_samples=np.int32(MAX_NUM_SAMPLES + 1)),
        "num_samples_int64": sample(num_samples=np.int64(batch)),
        "sample_temperature_negative": sample(temperature=np.float32(-1)),
    }
    if config.conditional:
        requests.update(
            {
                "labels_out_of_range": decode(
                    labels=np.array([0, 1, config.num_classes], np.int32)
                ),
                "labels_negative": decode(labels=np.array([0, -1, 1], np.int32)),
                "labels_too_few": decode(labels=np.array([0, 1], np.int32)),
                "labels_float": decode(labels=np.zeros(batch, np.float32)),
                "sample_labels_count": sample(labels=np.array([0, 1], np.int32)),
                "sample_labels_out_of_range": sample(labels=np.array([0, 5, 1], np.int32)),
                "encode_labels_out_of_range": encode(labels=np.array([0, 9, 1], np.int32)),
            }
        )
    return requests


@pytest.fixture(scope="session")
def isolated(exported) -> tuple[IsolatedRun, dict]:
    """(the run, {label: response}) of every request, in one `python -I` process."""
    requests = requests_for(exported)
    run = run_isolated(exported.version_dir, list(requests.values()))
    return run, dict(zip(requests, run.responses, strict=True))
