"""Checks a GlowModel (or a RealNVPModel) against reference outputs of the official code.

    python -m glow_tf.porting.check --model model.keras --reference DIR

For a RealNVPModel, DIR is laid out like the official RealNVP fixtures
(`ref_R1`) and the comparison is `glow_tf.porting.realnvp_check`'s; for a
GlowModel:

DIR has the layout of the OpenAI reference fixtures (`ref_A`):

  x_ref.npy, y_ref.npy, noise_ref.npy   the batch, its labels, its dequantisation noise
  ref_forward.npz        the official encoder's intermediates (step{i}_{j}_in/_actnorm/
                         _perm/_nn/_out and their log-dets, level{i}_split_*, z_top,
                         top_eps, top_logp, objective, bits_x, y_logits, bits_y, ...)
  ref_encode_decode.npz  feps = encode(x_ref, y_ref), x_rec = decode(feps) (uint8)
  ref_samples_t*.npz     sample_eps, y, temperature, x_uint8 = decode(temperature * sample_eps)

The model runs on `x_ref` with `noise_ref` (so the encode is the official
one), and every intermediate is read from its own encoder pass; each quantity present in DIR
gets one line with its max absolute difference and tolerance, and the last
line is PASS or FAIL. Exit status 0 only on PASS (2 for unusable input).

Tolerances: 1e-4 absolute for tensors and bits; log-densities in nats
(sums over up to D terms of float32) 1e-4 + 2e-6 * max|reference|; decoded
uint8 reconstructions exactly; temperature samples: at most 0.1% of the pixels
differ, each by one quantisation step (256 / n_bins) at most.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import math
import os
import sys

import numpy as np
import tensorflow as tf

from glow_tf.cli import command
from glow_tf.flow.intermediates import recording_intermediates
from glow_tf.objectives import classification_bits, standard_normal_log_prob
from glow_tf.saving import load_flow_model

__all__ = ["Comparison", "compare_with_reference", "format_report", "main", "TOLERANCE"]

TOLERANCE = 1e-4
NATS_RELATIVE = 2e-6
SAMPLE_PIXEL_FRACTION = 0.001


@dataclasses.dataclass
class Comparison:
    """One quantity compared with its official value.

    Attributes:
      name: the reference's name for it, e.g. "step0_1_perm" or "x_rec".
      max_abs_diff: max |model - official| (None if skipped).
      tolerance: the largest max_abs_diff that passes.
      passed: whether it passes (a skipped quantity passes).
      detail: extra words, e.g. the share of differing pixels, or why skipped.
    """

    name: str
    max_abs_diff: float | None
    tolerance: float
    passed: bool
    detail: str = ""

    def line(self) -> str:
        if self.max_abs_diff is None:
            return f"{self.name:<32} skipped: {self.detail}"
        verdict = "ok" if self.passed else "MISMATCH"
        detail = f"  {self.detail}" if self.detail else ""
        return (
            f"{self.name:<32} max|diff| {self.max_abs_diff:.3e}  (tol {self.tolerance:.1e})  "
            f"{verdict}{detail}"
        )


class _Collector:
    def __init__(self, reference: dict):
        self.reference = reference
        self.results: list[Comparison] = []

    def tensor(self, name, value, tolerance=TOLERANCE):
        if name not in self.reference:
            return
        official = np.asarray(self.reference[name], np.float64)
        value = np.asarray(value, np.float64)
        if value.shape != official.shape:
            self.results.append(
                Comparison(
                    name,
                    math.inf,
                    tolerance,
                    False,
                    f"shape {value.shape} vs official {official.shape}",
                )
            )
            return
        with np.errstate(invalid="ignore"):
            diffs = np.where(value == official, 0.0, np.abs(value - official))
        diff = float(np.max(np.nan_to_num(diffs, nan=np.inf))) if value.size else 0.0
        self.results.append(Comparison(name, diff, tolerance, bool(diff <= tolerance)))

    def nats(self, name, value):
        if name in self.reference:
            scale = float(np.max(np.abs(self.reference[name])))
            self.tensor(name, value, TOLERANCE + NATS_RELATIVE * scale)

    def skip(self, name, why):
        self.results.append(Comparison(name, None, 0.0, True, why))


def _load_npz(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _forward(model, images, noise, y, collect: _Collector):
    """Every official intermediate, read from the model's own encoder pass
    (`recording_intermediates`), so the check runs the model's one
    multi-scale loop, not a copy of it."""
    collect.tensor("x_dequant", model.flow_input(images, noise))
    with recording_intermediates() as records:
        model.encode(images, y, noise=noise)
    sum_log_det = sum_split_log_prob = 0.0
    previous = None
    for i, level in enumerate(model.levels):
        if level.squeeze is not None:
            previous = records[f"{level.name}/{level.squeeze.name}"]
            if i == 0:
                collect.tensor("z_squeezed", previous)
        for j, step in enumerate(level.steps):
            name, path = f"step{i}_{j}_", f"{level.name}/{step.name}"
            collect.tensor(name + "in", previous)
            collect.tensor(name + "actnorm", records[f"{path}/{step.act_norm.name}"])
            log_det_norm = records[f"{path}/{step.act_norm.name}:log_det"]
            collect.nats(name + "logdet_actnorm", log_det_norm)
            collect.tensor(name + "perm", records[f"{path}/{step.permutation.name}"])
            log_det_perm = records[f"{path}/{step.permutation.name}:log_det"]
            collect.nats(name + "logdet_actnorm_perm", log_det_norm + log_det_perm)
            collect.tensor(name + "nn", records[f"{path}/{step.coupling.name}/network"])
            previous = records[path]
            collect.tensor(name + "out", previous)
            collect.nats(name + "logdet", records[path + ":log_det"])
            sum_log_det += records[path + ":log_det"]
        collect.tensor(f"level{i}_out", previous)
        if level.split is not None:
            half = previous.shape[-1] // 2
            collect.tensor(f"level{i}_split_z2", previous[..., half:])
            split = records[f"{level.name}/{level.split.name}"]
            eps = split[..., half:]
            collect.tensor(f"level{i}_split_eps", eps)
            split_log_prob = records[f"{level.name}/{level.split.name}:log_det"]
            split_log_prob += standard_normal_log_prob(eps)
            collect.nats(f"level{i}_split_logp", split_log_prob)
            sum_split_log_prob += split_log_prob
            previous = split[..., :half]
    z_top = records[model.levels[-1].name]
    collect.tensor("z_top", z_top)
    eps_top = records["top_prior"]
    collect.tensor("top_eps", eps_top)
    collect.nats("top_logp", records["top_prior:log_det"] + standard_normal_log_prob(eps_top))
    collect.nats("sum_logdet", sum_log_det)
    collect.nats("sum_split_logp", sum_split_log_prob)
    if "y_logits" in collect.reference or "bits_y" in collect.reference:
        if model.classifier is None:
            for name in ("y_logits", "bits_y"):
                if name in collect.reference:
                    collect.skip(
                        name,
                        "the model has no classifier head (e.g. ported from a "
                        "frozen encode/decode graph, which leaves it out)",
                    )
        else:
            logits = model.classifier(tf.reduce_mean(z_top, axis=[1, 2]))
            collect.tensor("y_logits", logits)
            collect.tensor("bits_y", classification_bits(logits, y))


def compare_with_reference(model, reference_dir: str | os.PathLike) -> list[Comparison]:
    """Every official quantity found in `reference_dir`, compared with the model's.

    Raises:
      FileNotFoundError / ValueError: the directory lacks x_ref.npy /
        noise_ref.npy, holds no reference outputs, or its images do not fit
        the model.
    """
    from glow_tf.models.realnvp import RealNVPModel

    if isinstance(model, RealNVPModel):
        from glow_tf.porting.realnvp_check import compare_realnvp_with_reference

        return compare_realnvp_with_reference(model, reference_dir)
    reference_dir = os.fspath(reference_dir)
    config = model.config
    for needed in ("x_ref.npy", "noise_ref.npy"):
        if not os.path.isfile(os.path.join(reference_dir, needed)):
            raise FileNotFoundError(f"{reference_dir!r} has no {needed}")
    images = np.load(os.path.join(reference_dir, "x_ref.npy"))
    noise = np.load(os.path.join(reference_dir, "noise_ref.npy"))
    if tuple(images.shape[1:]) != tuple(config.image_shape):
        raise ValueError(
            f"reference images have shape {images.shape[1:]}, the model expects "
            f"{tuple(config.image_shape)}"
        )
    y = None
    if config.conditional:
        y_path = os.path.join(reference_dir, "y_ref.npy")
        if not os.path.isfile(y_path):
            raise FileNotFoundError(
                f"the model is class-conditional but {reference_dir!r} has no y_ref.npy"
            )
        y = np.load(y_path).astype(np.int32)
    results = []
    forward_path = os.path.join(reference_dir, "ref_forward.npz")
    encoding = model.encode(images, y, noise=noise)
    if os.path.isfile(forward_path):
        forward = _load_npz(forward_path)
        collect = _Collector(forward)
        _forward(model, images, noise, y, collect)
        log_prob = model.log_prob(images, y, noise=noise)
        collect.nats("objective", log_prob)
        collect.nats("logpx_continuous", log_prob + config.num_dims * math.log(config.num_bins))
        collect.tensor("bits_x", encoding.bits_per_dim)
        results += collect.results
    codec_path = os.path.join(reference_dir, "ref_encode_decode.npz")
    if os.path.isfile(codec_path):
        codec = _load_npz(codec_path)
        collect = _Collector(codec)
        collect.tensor("feps", encoding.flat)
        if "feps" in codec:
            feps = codec["feps"].astype(np.float32)
            collect.tensor("x_rec", model.decode(feps, y), tolerance=0.0)
            collect.tensor("x_rec_cont", model.decode(feps, y, as_uint8=False))
        results += collect.results
    for samples_path in sorted(glob.glob(os.path.join(reference_dir, "ref_samples_t*.npz"))):
        samples = _load_npz(samples_path)
        results += _compare_samples(
            model, samples, os.path.basename(samples_path)[len("ref_") : -4]
        )
    if not results:
        raise ValueError(
            f"{reference_dir!r} holds no reference outputs (ref_forward.npz, "
            "ref_encode_decode.npz, ref_samples_t*.npz)"
        )
    return results


def _compare_samples(model, samples: dict, tag: str) -> list[Comparison]:
    config = model.config
    temperature = float(samples["temperature"])
    y = samples["y"].astype(np.int32) if config.conditional else None
    eps = samples["sample_eps"].astype(np.float32)
    images = model.decode(eps, y, temperature=temperature).numpy().astype(np.int64)
    official = samples["x_uint8"].astype(np.int64)
    step = 256 // config.num_bins
    if images.shape != official.shape:
        return [
            Comparison(
                f"{tag}/x_uint8",
                math.inf,
                step,
                False,
                f"shape {images.shape} vs official {official.shape}",
            )
        ]
    diff = np.abs(images - official)
    fraction = float(np.mean(diff > 0))
    passed = fraction <= SAMPLE_PIXEL_FRACTION and int(diff.max()) <= step
    results = [
        Comparison(
            f"{tag}/x_uint8",
            float(diff.max()),
            step,
            passed,
            f"{100 * fraction:.3f}% of pixels differ (allowed {100 * SAMPLE_PIXEL_FRACTION:.1f}%, "
            "by one quantisation step)",
        )
    ]
    if "x_cont" in samples:
        collect = _Collector({f"{tag}/x_cont": samples["x_cont"]})
        continuous = model.decode(eps, y, temperature=temperature, as_uint8=False)
        collect.tensor(f"{tag}/x_cont", continuous)
        results += collect.results
    return results


def format_report(comparisons: list[Comparison]) -> str:
    """One line per quantity, then PASS or FAIL."""
    lines = [comparison.line() for comparison in comparisons]
    lines.append("PASS" if all(c.passed for c in comparisons) else "FAIL")
    return "\n".join(lines)


@command("python -m glow_tf.porting.check")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m glow_tf.porting.check",
        description="Compare a GlowModel or RealNVPModel (.keras) with the official outputs in DIR.",
    )
    parser.add_argument("--model", required=True, help="a .keras file of a GlowModel or RealNVPModel")
    parser.add_argument(
        "--reference",
        required=True,
        metavar="DIR",
        help="a folder laid out like the OpenAI (ref_A) or RealNVP (ref_R1) reference fixtures",
    )
    args = parser.parse_args(argv)
    try:
        comparisons = compare_with_reference(load_flow_model(args.model), args.reference)
    except Exception:
        print("FAIL")  # the last line is always the verdict; the error follows on stderr
        raise
    print(format_report(comparisons))
    return 0 if all(c.passed for c in comparisons) else 1


if __name__ == "__main__":
    sys.exit(main())
