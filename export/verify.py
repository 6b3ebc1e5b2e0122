"""python -m export.verify DIR --model model.keras: an export against its Keras model.

On one batch (eps ~ N(0, I), the images they decode to, labels for a
conditional model), the Keras model's outputs are compared with

  - the SavedModel, reloaded in a separate `python -I` process in which
    glow_tf cannot be imported: decode, decode_levels, encode (bin centre),
    encode_with_noise and sample (same seed) must match with
        continuous outputs and eps   max |diff| <= 1e-5
        uint8 images                 identical
        bits/dim                     max |diff| <= 1e-5
  - the ONNX graphs, run by onnxruntime:
        decoder continuous           max |diff| <= 1e-4
        decoder uint8 images         >= 99.9% identical, the rest one bin step off
        encoder eps                  max |diff| <= 1e-4
        encoder bits/dim             relative diff <= 1e-5
        every node                   in the default ONNX domain

It prints one line per check and exits 0 only if all pass (1 if any fails,
2 for bad arguments or an export / model that cannot be read).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np

from glow_tf.cli import command

__all__ = ["Tolerances", "Check", "pixel_agreement", "verify_export", "main"]


@dataclasses.dataclass(frozen=True)
class Tolerances:
    saved_model_continuous: float = 1e-5
    saved_model_bits_per_dim: float = 1e-5
    onnx_continuous: float = 1e-4
    onnx_identical_pixels: float = 0.999
    onnx_eps: float = 1e-4
    onnx_bits_per_dim_relative: float = 1e-5


@dataclasses.dataclass
class Check:
    """One comparison: `value` measured, `limit` allowed, `passed`."""

    name: str
    value: float
    limit: str
    passed: bool

    def line(self) -> str:
        result = "ok" if self.passed else "FAIL"
        return f"{self.name:<46} {self.value:>12.3g}   {self.limit:<14} {result}"


def _at_most(name: str, value: float, limit: float) -> Check:
    return Check(name, value, f"<= {limit:g}", value <= limit)


def pixel_agreement(images: np.ndarray, reference: np.ndarray, num_bits: int) -> tuple[float, int]:
    """(fraction of identical uint8 values, largest difference in bin steps)."""
    step = 256 // 2**num_bits
    diff = np.abs(images.astype(np.int32) - reference.astype(np.int32))
    identical = float(np.mean(diff == 0)) if diff.size else 1.0
    return identical, int(-(-diff.max() // step)) if diff.size else 0


def _max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0))


def _reference(model, batch: int, temperature: float, seed: int) -> dict:
    """The inputs of the batch and the Keras model's outputs on them."""
    from glow_tf import postprocess
    from glow_tf.data.dequantize import bin_centre_noise

    config = model.config
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((batch, config.num_dims)).astype(np.float32)
    labels = (
        rng.integers(0, config.num_classes, batch).astype(np.int32) if config.conditional else None
    )
    continuous = model.decode(eps, y=labels, temperature=temperature, as_uint8=False).numpy()
    images = postprocess(continuous, config.num_bits).numpy()
    noise = rng.uniform(0, 1 / config.num_bins, images.shape).astype(np.float32)
    centre = bin_centre_noise(images, config.num_bits).numpy()
    encodings = {}
    for name, value in (("encode", centre), ("encode_with_noise", noise)):
        encoding = model.encode(images, y=labels, noise=value)
        encodings[name] = {
            "eps": encoding.flat.numpy(),
            "latents": [e.numpy() for e in encoding.latents],
            "bits_per_dim": encoding.bits_per_dim.numpy(),
        }
    sampled = model.sample(batch, temperature=temperature, seed=seed, y=labels).numpy()
    return dict(
        eps=eps, labels=labels, temperature=np.float32(temperature), seed=seed,
        continuous=continuous, images=images, noise=noise, encodings=encodings, sampled=sampled,
        latent_shapes=model.latent_shapes,
    )  # fmt: skip


def _with_labels(inputs: dict, labels) -> dict:
    return inputs if labels is None else {**inputs, "labels": labels}


def _saved_model_checks(version_dir, config, ref, tolerances) -> list[Check]:
    import tensorflow as tf

    from export.isolation import run_isolated
    from glow_tf.flow.multiscale import unflatten_latents

    labels, temperature = ref["labels"], np.array(ref["temperature"], np.float32)
    levels = [eps.numpy() for eps in unflatten_latents(tf.constant(ref["eps"]), ref["latent_shapes"])]
    requests = [
        ("decode", _with_labels({"eps": ref["eps"], "temperature": temperature}, labels)),
        (
            "decode_levels",
            _with_labels(
                {**{f"eps_{i}": e for i, e in enumerate(levels)}, "temperature": temperature},
                labels,
            ),
        ),
        ("encode", _with_labels({"images": ref["images"]}, labels)),
        (
            "encode_with_noise",
            _with_labels({"images": ref["images"], "noise": ref["noise"]}, labels),
        ),
        (
            "serving_default",
            _with_labels(
                {
                    "num_samples": np.array(len(ref["eps"]), np.int32),
                    "temperature": temperature,
                    "seed": np.array(ref["seed"], np.int64),
                },
                labels,
            ),
        ),
    ]
    run = run_isolated([(version_dir, signature, inputs) for signature, inputs in requests])
    checks = [
        Check("saved_model: glow_tf not importable", 0.0, "isolated", not run.glow_tf_importable)
    ]
    limit = tolerances.saved_model_continuous
    for response, (signature, _) in zip(run.responses, requests, strict=True):
        if "error_type" in response:
            message = response["error_message"].splitlines()[-1][:200]
            print(f"saved_model {signature} failed: {response['error_type']}: {message}")
            checks.append(Check(f"saved_model {signature} runs", 1.0, "no error", False))
            continue
        if signature in ("decode", "decode_levels"):
            diff = _max_abs(response["continuous"], ref["continuous"])
            checks.append(_at_most(f"saved_model {signature} continuous", diff, limit))
            diff = _max_abs(response["images"], ref["images"])
            checks.append(_at_most(f"saved_model {signature} images (uint8)", diff, 0))
        elif signature.startswith("encode"):
            expected = ref["encodings"][signature]
            diff = max(
                [_max_abs(response["eps"], expected["eps"])]
                + [_max_abs(response[f"eps_{i}"], e) for i, e in enumerate(expected["latents"])]
            )
            checks.append(_at_most(f"saved_model {signature} eps", diff, limit))
            diff = _max_abs(response["bits_per_dim"], expected["bits_per_dim"])
            limit_bpd = tolerances.saved_model_bits_per_dim
            checks.append(_at_most(f"saved_model {signature} bits/dim", diff, limit_bpd))
        else:
            diff = _max_abs(response["images"], ref["sampled"])
            checks.append(_at_most("saved_model sample(seed) images (uint8)", diff, 0))
    return checks


def _onnx_checks(version_dir, config, ref, tolerances) -> list[Check]:
    import onnx
    import onnxruntime

    from export.onnx import non_default_domain_ops

    checks = []
    labels = ref["labels"]
    outputs = {}
    for name in ("decoder", "encoder"):
        path = version_dir / f"{name}.onnx"
        stray = non_default_domain_ops(onnx.load(str(path)))
        checks.append(_at_most(f"onnx {name} non-default-domain ops", len(stray), 0))
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inputs = (
            {"eps": ref["eps"], "temperature": np.array(ref["temperature"], np.float32)}
            if name == "decoder"
            else {"images": ref["images"]}
        )
        results = session.run(None, _with_labels(inputs, labels))
        outputs[name] = dict(zip([o.name for o in session.get_outputs()], results, strict=True))
    decoder, encoder = outputs["decoder"], outputs["encoder"]
    diff = _max_abs(decoder["continuous"], ref["continuous"])
    checks.append(_at_most("onnx decoder continuous", diff, tolerances.onnx_continuous))
    identical, steps = pixel_agreement(decoder["images"], ref["images"], config.num_bits)
    wanted = tolerances.onnx_identical_pixels
    checks.append(
        Check(
            "onnx decoder images identical (fraction)",
            identical,
            f">= {wanted:g}",
            identical >= wanted,
        )
    )
    checks.append(_at_most("onnx decoder images, largest diff (bin steps)", steps, 1))
    expected = ref["encodings"]["encode"]
    diff = max(
        [_max_abs(encoder["eps"], expected["eps"])]
        + [_max_abs(encoder[f"eps_{i}"], e) for i, e in enumerate(expected["latents"])]
    )
    checks.append(_at_most("onnx encoder eps", diff, tolerances.onnx_eps))
    relative = float(
        np.max(
            np.abs(encoder["bits_per_dim"] - expected["bits_per_dim"])
            / np.abs(expected["bits_per_dim"]),
            initial=0,
        )
    )
    limit = tolerances.onnx_bits_per_dim_relative
    checks.append(_at_most("onnx encoder bits/dim (relative)", relative, limit))
    return checks


def verify_export(
    version_dir: pathlib.Path,
    model,
    batch: int = 16,
    temperature: float = 0.7,
    seed: int = 0,
    tolerances: Tolerances = Tolerances(),
) -> list[Check]:
    """All checks of the export in `version_dir` against `model` (see the module doc)."""
    from export.layout import METADATA_FILE

    from glow_tf.models.families import family_name

    metadata = json.loads((pathlib.Path(version_dir) / METADATA_FILE).read_text())
    config = model.config
    family = metadata.get("family", "glow")  # exports made before RealNVP: Glow
    exported_config = metadata.get("model_config", metadata.get("glow_config"))
    if family != family_name(model) or exported_config != config.to_dict():
        raise ValueError(
            f"the export in {version_dir} was made from another configuration than the model's:\n"
            f"  export: {family} {exported_config}\n  model:  {family_name(model)} "
            f"{config.to_dict()}"
        )
    if metadata["batch_size"] is not None:
        batch = metadata["batch_size"]
    cap = metadata.get("max_batch_size", metadata.get("max_num_samples"))  # (format 1's name)
    batch = min(batch, cap)
    ref = _reference(model, batch, temperature, seed)
    checks = []
    if "saved_model" in metadata["formats"]:
        checks += _saved_model_checks(pathlib.Path(version_dir), config, ref, tolerances)
    if "onnx" in metadata["formats"]:
        checks += _onnx_checks(pathlib.Path(version_dir), config, ref, tolerances)
    return checks


@command("python -m export.verify")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export.verify",
        description="Compare an export (SavedModel in a clean process, ONNX via onnxruntime) "
        "with its Keras model; exit 0 only if every difference is within tolerance.",
    )
    parser.add_argument("dir", type=pathlib.Path, help="export root, model dir or version dir")
    parser.add_argument(
        "--model", type=pathlib.Path, required=True, help="the .keras file (any glow_tf family)"
    )
    parser.add_argument("--name", help="model name under DIR (if it holds several)")
    parser.add_argument("--version", type=int, help="version to check (default: highest)")
    parser.add_argument("--batch", type=int, default=16, help="images in the test batch")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.temperature < 0:
        parser.error("--batch must be >= 1 and --temperature >= 0")

    from export.layout import find_version_dir
    from glow_tf.saving import load_flow_model

    version_dir = find_version_dir(args.dir, args.name, args.version)
    model = load_flow_model(args.model)
    print(f"export {version_dir}\nmodel  {args.model}  ({model.config.to_dict()})")
    checks = verify_export(version_dir, model, args.batch, args.temperature, args.seed)
    print(f"{'check':<46} {'measured':>12}   {'limit':<14} result")
    for check in checks:
        print(check.line())
    failed = [check for check in checks if not check.passed]
    if failed:
        print(f"{len(failed)} of {len(checks)} checks FAILED")
        return 1
    print(f"all {len(checks)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
