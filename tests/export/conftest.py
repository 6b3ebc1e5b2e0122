"""Export fixtures: tiny models exported once per session, and one isolated run per export.

Two exports cover the model variants between them:

    unconditional   additive coupling, dense 1x1 conv, 8x8x1, 5 bits
    conditional     affine coupling, LU 1x1 conv, 3 classes, 8x8x3, 8 bits

The conditional one is exported by the command line, in a subprocess. The
OpenAI reference models (ref_A affine/unconditional, ref_B additive/conditional,
both dense) are exported too. Every SavedModel request of the tests, on all
four exports, is listed here and answered by one `python -I` process
(`isolated_responses`), whose responses the tests then read.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from export import export_model
from export.isolation import IsolatedRun, run_isolated
from glow_tf import GlowConfig, GlowModel
from glow_tf.flow import unflatten_latents
from glow_tf.porting.openai_names import load_openai_weights
from tests.conftest import REPO_ROOT, Reference, tiny_images

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
REFERENCES = ("ref_A", "ref_B")
MAX_BATCH_SIZE = 100
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
    cli_output: subprocess.CompletedProcess | None = None  # if exported by `python -m export`

    @property
    def config(self) -> GlowConfig:
        return self.model.config

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
    """{"eps_i": [B, h_i, w_i, c_i]} of flat latents [B, D] (`unflatten_latents`)."""
    levels = unflatten_latents(tf.constant(flat), GlowModel.latent_shapes_for(config))
    return {f"eps_{i}": eps.numpy() for i, eps in enumerate(levels)}


def _export(name: str, root: pathlib.Path) -> Exported:
    """Builds, initialises and saves a tiny model and exports it; the conditional one
    through the command line (`python -m export`) in a subprocess, as a user would."""
    config = CONFIGS[name]
    model = GlowModel(config)
    images = tiny_images(32, config.image_shape, seed=11)
    model.initialize(images, np.arange(32) % 3 if config.conditional else None)
    keras_path = root / "model.keras"
    model.save(keras_path)
    out = root / "out"
    cli_output = None
    if name == "conditional":
        command = [sys.executable, "-m", "export", "--model", str(keras_path), "--out", str(out)]
        command += ["--name", name, "--max-batch-size", str(MAX_BATCH_SIZE)]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
        cli_output = subprocess.run(
            command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=600
        )
        assert cli_output.returncode == 0, cli_output.stderr[-3000:]
        version_dir = out / name / "1"
    else:
        version_dir = export_model(model, out, name=name, max_batch_size=MAX_BATCH_SIZE)
    inputs = {batch: make_inputs(config, batch, seed=batch) for batch in BATCH_SIZES}
    return Exported(name, model, keras_path, out, version_dir, inputs, cli_output)


def _export_reference(name: str, root: pathlib.Path) -> tuple[Reference, GlowModel, pathlib.Path]:
    """A model holding the official ref_A / ref_B weights, exported."""
    reference = Reference(name)
    model = GlowModel(reference.config)
    load_openai_weights(model, reference.npz("vars_trained.npz"))
    return reference, model, export_model(model, root)


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory) -> dict:
    """name -> Exported (or, for "ref_A" / "ref_B", (Reference, model, version_dir)),
    each built on first use."""

    class Cache(dict):
        def __missing__(self, name):
            root = tmp_path_factory.mktemp(f"export_{name}")
            self[name] = (
                _export_reference(name, root) if name in REFERENCES else _export(name, root)
            )
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

    noise = exported.inputs[batch]["noise"]
    levels = split_levels(eps, config)
    over = MAX_BATCH_SIZE + 1

    def batch_of(size):
        """Labels for a request of another batch size (none for an unconditional model)."""
        return {"labels": np.zeros(size, np.int32)} if config.conditional else {}

    def decode_levels(**changes):
        inputs = exported.with_labels({**levels, "temperature": TEMPERATURE}, batch)
        return ("decode_levels", {**inputs, **changes})

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
        "num_samples_above_cap": sample(num_samples=np.int32(MAX_BATCH_SIZE + 1)),
        "num_samples_int64": sample(num_samples=np.int64(batch)),
        "sample_temperature_negative": sample(temperature=np.float32(-1)),
        "sample_temperature_huge": sample(temperature=np.float32(1e6)),
        "eps_inf": decode(eps=np.where(eps > 1, np.inf, eps).astype(np.float32)),
        "eps_huge": decode(eps=eps * np.float32(1e6)),
        "temperature_huge": decode(temperature=np.float32(1e6)),
        "eps_empty": decode(eps=eps[:0], **batch_of(0)),
        "eps_over_cap": decode(eps=np.zeros((over, config.num_dims), np.float32), **batch_of(over)),
        "images_empty": encode(images=images[:0], **batch_of(0)),
        "images_over_cap": encode(
            images=np.zeros((over, *config.image_shape), np.uint8), **batch_of(over)
        ),
        "noise_one_for_all": encode("encode_with_noise", noise=noise[:1]),
        "noise_too_many": encode("encode_with_noise", noise=np.concatenate([noise, noise])),
        "noise_nan": encode("encode_with_noise", noise=np.full_like(noise, np.nan)),
        "noise_wrong_rank": encode("encode_with_noise", noise=noise[0]),
        "levels_wrong_shape": decode_levels(eps_1=np.zeros((batch, 1, 1, 1), np.float32)),
        "levels_wrong_rank": decode_levels(eps_0=levels["eps_0"].reshape(batch, -1)),
        "levels_batch_mismatch": decode_levels(eps_1=levels["eps_1"][:2]),
        "levels_nan": decode_levels(eps_0=np.full_like(levels["eps_0"], np.nan)),
        "levels_huge": decode_levels(eps_1=levels["eps_1"] * np.float32(1e6)),
        "levels_empty": decode_levels(**{k: v[:0] for k, v in levels.items()}, **batch_of(0)),
        "levels_float64": decode_levels(eps_0=levels["eps_0"].astype(np.float64)),
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


def reference_requests(reference: Reference) -> dict[str, tuple[str, dict]]:
    """The official feps -> x_rec, the T=0.7 samples, and x_ref + noise -> feps."""
    official = reference.npz("ref_encode_decode.npz")
    samples = reference.npz("ref_samples_t0.7.npz")
    y = reference.labels()

    def with_labels(inputs, labels):
        return inputs if labels is None else {**inputs, "labels": labels.astype(np.int32)}

    one, t_samples = np.float32(1), np.float32(samples["temperature"])
    y_samples = samples["y"] if reference.config.conditional else None
    x_ref, noise = reference.npy("x_ref.npy"), reference.npy("noise_ref.npy").astype(np.float32)
    return {
        "x_rec": ("decode", with_labels({"eps": official["feps"], "temperature": one}, y)),
        "samples": (
            "decode",
            with_labels({"eps": samples["sample_eps"], "temperature": t_samples}, y_samples),
        ),
        "feps": ("encode_with_noise", with_labels({"images": x_ref, "noise": noise}, y)),
    }


@pytest.fixture(scope="session")
def isolated_responses(export_cache) -> dict[str, tuple[IsolatedRun, dict]]:
    """export name -> (the run, {label: response}): every SavedModel request of these
    tests, on every export, answered by one `python -I` process."""
    labelled = []
    for name in sorted(CONFIGS):
        exported = export_cache[name]
        for label, (signature, inputs) in requests_for(exported).items():
            labelled.append((name, label, (exported.version_dir, signature, inputs)))
    for name in REFERENCES:
        reference, _, version_dir = export_cache[name]
        for label, (signature, inputs) in reference_requests(reference).items():
            labelled.append((name, label, (version_dir, signature, inputs)))
    run = run_isolated([request for _, _, request in labelled])
    responses = {name: {} for name in [*CONFIGS, *REFERENCES]}
    for (name, label, _), response in zip(labelled, run.responses, strict=True):
        responses[name][label] = response
    return {name: (run, by_label) for name, by_label in responses.items()}


@pytest.fixture(scope="session")
def isolated(exported, isolated_responses) -> tuple[IsolatedRun, dict]:
    """(the run, {label: response}) of the requests on `exported`."""
    return isolated_responses[exported.name]
