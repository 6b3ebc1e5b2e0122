"""Fuzzing the SavedModel signatures: malformed requests get InvalidArgument, never an answer.

Seeded random requests, each a valid request with one defect (a wrong dtype,
rank or size, NaN / Inf, huge values, an empty batch, a batch over the cap,
inputs of different batch sizes, out-of-range labels, noise or num_samples,
extreme temperatures), are sent to both tiny exports (8x8, L=2, K=2; see
conftest.py) in one `python -I` process that cannot import glow_tf. Every one
must be rejected with InvalidArgument and a message naming what was wrong; the
process must survive them all, and valid requests sent among them (extreme but
legal temperatures such as 0 and 1e-30) must still answer finite outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from export import ServedGlow
from export.isolation import run_isolated
from glow_tf import GlowModel
from tests.conftest import tiny_images
from tests.export.conftest import CONFIGS, MAX_BATCH_SIZE, TEMPERATURE, split_levels

REQUESTS_PER_EXPORT = 150
BATCH = 3
SEED = 20251111
SPEC_DTYPES = {
    "num_samples": np.int32,
    "seed": np.int64,
    "temperature": np.float32,
    "labels": np.int32,
    "images": np.uint8,
    "eps": np.float32,
    "noise": np.float32,
}
OTHER_DTYPES = (np.float64, np.float16, np.float32, np.int32, np.int64, np.uint8, np.bool_)


def _spec_dtype(name):
    return SPEC_DTYPES.get(name, np.float32)  # eps_0 .. eps_{L-1}


_LEVELS = {}  # export name -> its batch's eps split into levels (computed once)


def _valid_request(exported, signature: str) -> dict:
    inputs = exported.inputs[BATCH]
    if signature == "sample":
        request = {"num_samples": np.int32(BATCH), "temperature": TEMPERATURE, "seed": np.int64(5)}
    elif signature == "decode":
        request = {"eps": inputs["eps"], "temperature": TEMPERATURE}
    elif signature == "decode_levels":
        if exported.name not in _LEVELS:
            _LEVELS[exported.name] = split_levels(inputs["eps"], exported.config)
        request = {**_LEVELS[exported.name], "temperature": TEMPERATURE}
    else:
        request = {"images": inputs["images"]}
        if signature == "encode_with_noise":
            request["noise"] = inputs["noise"]
    return exported.with_labels(request, BATCH)


def _batched(signature: str, inputs: dict) -> list[str]:
    """The inputs with a batch dimension, the one that sets the batch first."""
    if signature == "sample":
        return ["labels"] if "labels" in inputs else []
    names = [n for n in inputs if n not in ("temperature", "labels")]
    return names + (["labels"] if "labels" in inputs else [])


def _resized(value: np.ndarray, batch: int) -> np.ndarray:
    """`value` with `batch` rows (repeated or cut)."""
    return np.resize(value, (batch, *value.shape[1:])).astype(value.dtype)


# Every defect: (rng, signature, inputs, context) -> (inputs, message fragment), or None
# where it does not apply to the request.


def wrong_dtype(rng, signature, inputs, context):
    name = rng.choice(sorted(inputs))
    dtype = rng.choice([d for d in OTHER_DTYPES if d is not _spec_dtype(name)])
    return {**inputs, name: np.asarray(inputs[name]).astype(dtype)}, "expected to be a"


def wrong_rank(rng, signature, inputs, context):
    name = rng.choice(sorted(inputs))
    value = np.asarray(inputs[name])
    if value.ndim == 0:
        changed = np.full(rng.integers(1, 4, size=rng.integers(1, 3)), value)
    elif rng.random() < 0.5 or value.ndim == 1:
        changed = value[..., None]
    else:
        changed = value.reshape(value.shape[0], -1) if value.ndim > 2 else value.reshape(-1)
    return {**inputs, name: changed}, f"Shape of tensor {name} ["


def wrong_size(rng, signature, inputs, context):
    names = sorted(n for n in inputs if np.ndim(inputs[n]) >= 2)
    if not names:
        return None
    name = rng.choice(names)
    value = inputs[name]
    axis = int(rng.integers(1, value.ndim))
    size = value.shape[axis] + int(rng.choice([-1, 1, 2]))
    shape = list(value.shape)
    shape[axis] = max(size, 0)
    return {**inputs, name: np.zeros(shape, value.dtype)}, f"Shape of tensor {name} ["


def non_finite(rng, signature, inputs, context):
    names = sorted(n for n in inputs if _spec_dtype(n) is np.float32)
    if not names:
        return None
    name = rng.choice(names)
    value = np.array(inputs[name], np.float32)
    bad = np.float32(rng.choice([np.nan, np.inf, -np.inf]))
    if value.ndim == 0:
        value = bad
    else:
        flat = value.reshape(-1)
        flat[rng.choice(flat.size, size=rng.integers(1, 4))] = bad
    expected = {
        "temperature": "temperature must be >= 0 and finite",
        "noise": "noise must lie in [0, ",
    }.get(name, f"{name} must not contain NaN or Inf")
    return {**inputs, name: value}, expected


def huge_values(rng, signature, inputs, context):
    names = sorted(n for n in inputs if _spec_dtype(n) is np.float32)
    if not names:
        return None
    name = rng.choice(names)
    scale = np.float32(10.0 ** rng.integers(4, 31))
    value = np.asarray(inputs[name], np.float32)
    if name == "noise":
        return {**inputs, name: np.abs(value) * scale + scale}, "noise must lie in [0, "
    if name == "temperature":
        # 1e4 .. 1e38: eps ~ N(0, 1) times these is beyond the bound (or overflows)
        value = np.float32(10.0 ** rng.integers(4, 39))
        return {**inputs, name: value}, "temperature * eps"
    return {**inputs, name: value * scale}, f"temperature * {name} must lie in"


def negative_values(rng, signature, inputs, context):
    names = sorted(n for n in ("temperature", "noise") if n in inputs)
    if not names:
        return None
    name = rng.choice(names)
    value = -np.abs(np.asarray(inputs[name], np.float32)) - np.float32(rng.uniform(1e-3, 1e3))
    expected = "temperature must be >= 0 and finite" if name == "temperature" else "noise must lie"
    return {**inputs, name: value}, expected


def empty_batch(rng, signature, inputs, context):
    changed = {**inputs, **{n: inputs[n][:0] for n in _batched(signature, inputs)}}
    if signature == "sample":
        changed["num_samples"] = np.int32(0)
        return changed, "num_samples must be >= 1"
    return changed, "must be >= 1 (an empty batch)"


def batch_over_cap(rng, signature, inputs, context):
    batch = MAX_BATCH_SIZE + 1 + int(rng.integers(0, MAX_BATCH_SIZE))
    changed = {**inputs, **{n: _resized(inputs[n], batch) for n in _batched(signature, inputs)}}
    if signature == "sample":
        changed["num_samples"] = np.int32(batch)
    return changed, f"must be <= {MAX_BATCH_SIZE} (the max batch size of this export"


def mismatched_batch(rng, signature, inputs, context):
    batched = _batched(signature, inputs)
    others = batched if signature == "sample" else batched[1:]
    if not others:
        return None
    name = rng.choice(others)
    batch = int(rng.choice([b for b in range(0, 2 * BATCH + 1) if b != BATCH]))
    return {**inputs, name: _resized(inputs[name], batch)}, f"{name} must have the batch size of"


def labels_out_of_range(rng, signature, inputs, context):
    if "labels" not in inputs:
        return None
    labels = np.array(inputs["labels"])
    num_classes = context["num_classes"]
    labels[rng.integers(0, labels.size)] = rng.choice(
        [num_classes, num_classes + int(rng.integers(1, 1000)), -1, np.iinfo(np.int32).min]
    )
    return {**inputs, "labels": labels}, f"labels must lie in [0, {num_classes})"


def bad_num_samples(rng, signature, inputs, context):
    if signature != "sample":
        return None
    value = np.int32(rng.choice([0, -1, -int(rng.integers(2, 1000)), np.iinfo(np.int32).min]))
    changed = {**inputs, "num_samples": value}
    if "labels" in inputs:
        changed["labels"] = inputs["labels"][:0]  # as many labels as samples (none)
    return changed, "num_samples must be >= 1"


DEFECTS = (
    wrong_dtype,
    wrong_rank,
    wrong_size,
    non_finite,
    huge_values,
    negative_values,
    empty_batch,
    batch_over_cap,
    mismatched_batch,
    labels_out_of_range,
    bad_num_samples,
)
SIGNATURES = ("sample", "decode", "decode_levels", "encode", "encode_with_noise")


def malformed_requests(exported, count: int, seed: int) -> list[tuple[str, str, dict, str]]:
    """`count` (label, signature, inputs, expected message fragment), reproducibly."""
    rng = np.random.default_rng(seed)
    context = {"num_classes": exported.config.num_classes}
    requests = []
    while len(requests) < count:
        signature = str(rng.choice(SIGNATURES))
        defect = DEFECTS[rng.integers(len(DEFECTS))]
        result = defect(rng, signature, _valid_request(exported, signature), context)
        if result is not None:
            inputs, expected = result
            label = f"{exported.name}/{len(requests)}/{signature}/{defect.__name__}"
            requests.append((label, signature, inputs, expected))
    return requests


def legal_extreme_requests(exported) -> list[tuple[str, str, dict]]:
    """Valid requests at the edges: they must answer, with finite outputs."""
    requests = []
    for temperature in (0.0, 1e-30, 3.0):
        for signature in ("sample", "decode", "decode_levels"):
            inputs = {**_valid_request(exported, signature), "temperature": np.float32(temperature)}
            requests.append((f"{exported.name}/{signature}/T={temperature}", signature, inputs))
    cap = MAX_BATCH_SIZE
    for signature in ("encode", "encode_with_noise", "decode"):
        inputs = _valid_request(exported, signature)
        inputs = {**inputs, **{n: _resized(inputs[n], cap) for n in _batched(signature, inputs)}}
        requests.append((f"{exported.name}/{signature}/N=cap", signature, inputs))
    return requests


@pytest.fixture(scope="module")
def fuzzed(export_cache):
    """Every malformed and legal request on both exports, and the isolated process's answers."""
    malformed, legal = [], []
    for offset, name in enumerate(sorted(CONFIGS)):
        exported = export_cache[name]
        for label, signature, inputs, expected in malformed_requests(
            exported, REQUESTS_PER_EXPORT, SEED + offset
        ):
            malformed.append((label, (exported.version_dir, signature, inputs), expected))
        for label, signature, inputs in legal_extreme_requests(exported):
            legal.append((label, (exported.version_dir, signature, inputs)))
    requests = [request for _, request, _ in malformed] + [request for _, request in legal]
    run = run_isolated(requests)  # raises if the process died
    return run, malformed, legal


def test_the_fuzz_is_reproducible_and_covers_every_defect(export_cache):
    exported = export_cache["conditional"]
    first = malformed_requests(exported, 40, SEED)
    again = malformed_requests(exported, 40, SEED)
    for (label, _, inputs, _), (label_again, _, inputs_again, _) in zip(first, again, strict=True):
        assert label == label_again
        assert inputs.keys() == inputs_again.keys()
        for name in inputs:
            np.testing.assert_array_equal(inputs[name], inputs_again[name])
    labels = [label for name in sorted(CONFIGS) for label, *_ in malformed_requests(
        export_cache[name], REQUESTS_PER_EXPORT, SEED + sorted(CONFIGS).index(name)
    )]  # fmt: skip
    assert len(labels) >= 200
    assert {label.split("/")[-1] for label in labels} == {d.__name__ for d in DEFECTS}
    assert {label.split("/")[2] for label in labels} == set(SIGNATURES)


def test_every_malformed_request_gets_invalid_argument_with_a_message(fuzzed):
    run, malformed, _ = fuzzed
    assert run.isolated and not run.glow_tf_importable
    wrong = {}
    responses = run.responses[: len(malformed)]
    for (label, _, expected), response in zip(malformed, responses, strict=True):
        error_type = response.get("error_type")
        message = response.get("error_message", "")
        if error_type != "InvalidArgumentError" or expected not in message:
            outputs = {k: v for k, v in response.items() if not k.startswith("error")}
            nan = any(np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all()
                      for v in outputs.values())  # fmt: skip
            wrong[label] = (error_type, expected, message[:300] or f"answered (NaN: {nan})")
    assert len(malformed) >= 200
    assert not wrong, f"{len(wrong)} of {len(malformed)} malformed requests: {wrong}"


def test_legal_extreme_requests_still_answer_finite_outputs(fuzzed):
    run, malformed, legal = fuzzed
    for (label, _), response in zip(legal, run.responses[len(malformed) :], strict=True):
        assert "error_type" not in response, (label, response.get("error_message"))
        for name, value in response.items():
            if np.issubdtype(value.dtype, np.floating):
                assert np.isfinite(value).all(), (label, name)


def test_non_finite_outputs_are_refused_not_answered():
    """A model whose weights overflow float32: decode and encode fail, never answer NaN."""
    config = CONFIGS["unconditional"]
    model = GlowModel(config)
    model.initialize(tiny_images(8, config.image_shape, seed=2))
    for weight in model.weights:
        if weight.path.endswith("level_0/step_0/act_norm/logs"):
            weight.assign(tf.fill(weight.shape, 100.0))  # encode: x * e^100 = inf
        if weight.path.endswith("level_1/step_1/act_norm/logs"):
            weight.assign(tf.fill(weight.shape, -100.0))  # decode: eps * e^100 = inf
    served = ServedGlow(model)
    rng = np.random.default_rng(0)
    eps = rng.standard_normal((2, config.num_dims)).astype(np.float32)
    decode = {"eps": tf.constant(eps), "temperature": tf.constant(1.0)}
    with pytest.raises(tf.errors.InvalidArgumentError, match="continuous output is not finite"):
        served.function("decode")(decode)
    images = tf.constant(tiny_images(2, config.image_shape, seed=3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="output is not finite"):
        served.function("encode")({"images": images})
