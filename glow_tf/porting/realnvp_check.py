"""Checks a RealNVPModel against reference outputs of the official RealNVP code.

Used by `python -m glow_tf.porting.check` for RealNVP models. The reference
directory has the layout of the official-code fixtures (`ref_R1`):

  x_ref.npy, noise_ref.npy   the batch and its dequantisation noise u in [0, 1)
                             (the model's dequantiser takes u / 256)
  ref_forward.npz            the official eval-mode encoder: x_in, logit_x_in,
                             z (image layout), z_level{i}, log_diff_map, the
                             per-example prior_ll, log_diff_sum, transform_cost,
                             log_diff_total, cost, bits_per_dim_per_example,
                             the scalars cost_mean and bit_per_dim, and every
                             coupling's enc_s{s}_c{k}_in / _out / _logdiff / _logdet
  ref_decode.npz             decoder(train=False) of z (x_rec_*) and of
                             sample_z at 1.0 and 0.7 (sample_logit_t*, sample_uint8_t*)

Every encoder quantity is read from the model's own pass
(`recording_intermediates`). Tolerances: bits/dim 1e-5; tensors (z, coupling
inputs and outputs, log-det maps, logits) 1e-4; per-example sums in nats
1e-4 + 2e-6 * max|reference|; the decode of the encoder's z equals x_ref
exactly (uint8); the official post-processing of the decoded samples
(a truncating uint8 cast) within one level.

Not compared: the decoder's per-coupling outputs (`dec_*`) and the official
train-mode sampling graph (`official_samples_*`, whose network batch norms
use the samples' own moments; see glow_tf/porting/README.md).
"""

from __future__ import annotations

import math
import os

import numpy as np
import tensorflow as tf

from glow_tf.data.preprocess import postprocess
from glow_tf.flow.data_constraint import official_postprocess
from glow_tf.flow.intermediates import recording_intermediates
from glow_tf.flow.realnvp_coupling import RealNVPCouplingLayer
from glow_tf.flow.squeeze import squeeze2d_diagonal_first, unsqueeze2d, unsqueeze2d_diagonal_first
from glow_tf.objectives import standard_normal_log_prob

__all__ = [
    "compare_realnvp_with_reference",
    "image_layout",
    "per_scale_latents",
    "BITS_TOLERANCE",
]

BITS_TOLERANCE = 1e-5
TOLERANCE = 1e-4
NATS_RELATIVE = 2e-6
NOISE_SCALE = 1.0 / 256  # official noise u in [0, 1) is added before dividing by 256


def image_layout(latents) -> tf.Tensor:
    """Per-scale latents (the top last) -> the official encoder's z, one
    tensor of the image's shape: at every scale, the next scale's result in
    front of the factored-out channels, diagonal-first unsqueezed."""
    z = latents[-1]
    for eps in reversed(latents[:-1]):
        z = unsqueeze2d_diagonal_first(tf.concat([z, eps], axis=-1))
    return z


def per_scale_latents(z, num_levels: int) -> list[tf.Tensor]:
    """Inverse of `image_layout`: official z [B, H, W, C] -> per-scale latents."""
    z = tf.convert_to_tensor(z, tf.float32)
    latents = []
    for _ in range(num_levels - 1):
        z = squeeze2d_diagonal_first(z)
        half = z.shape[-1] // 2
        latents.append(z[..., half:])
        z = z[..., :half]
    return latents + [z]


def _to_image_layout(log_det_map, scale: int, squeezed: bool, num_levels: int):
    """A coupling's log-det map (in its own layout) -> image layout, zeros
    where the map has no elements (the other scales' latents)."""
    if squeezed:
        log_det_map = unsqueeze2d(log_det_map)
    for _ in range(scale):
        log_det_map = unsqueeze2d_diagonal_first(
            tf.concat([log_det_map, tf.zeros_like(log_det_map)], axis=-1)
        )
    return log_det_map


class _Collector:
    def __init__(self, reference: dict):
        from glow_tf.porting.check import Comparison

        self.reference = reference
        self.results = []
        self._comparison = Comparison

    def tensor(self, name, value, tolerance=TOLERANCE, detail=""):
        if name not in self.reference:
            return
        official = np.asarray(self.reference[name], np.float64)
        value = np.asarray(value, np.float64)
        if value.shape != official.shape:
            self.results.append(
                self._comparison(
                    name, math.inf, tolerance, False, f"shape {value.shape} vs {official.shape}"
                )
            )
            return
        diff = float(np.max(np.nan_to_num(np.abs(value - official), nan=np.inf)))
        self.results.append(self._comparison(name, diff, tolerance, diff <= tolerance, detail))

    def nats(self, name, value):
        if name in self.reference:
            scale = float(np.max(np.abs(self.reference[name])))
            self.tensor(name, value, TOLERANCE + NATS_RELATIVE * scale)


def _load(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _forward(model, images, noise, collect: _Collector):
    config = model.config
    collect.tensor("x_in", model.flow_input(images, noise) + 0.5)
    with recording_intermediates() as records:
        encoding = model.encode(images, noise=noise)
    latents = encoding.latents
    collect.tensor("logit_x_in", records["scale_0/preprocess"])
    collect.tensor("z", image_layout(latents))
    for i, eps in enumerate(latents):
        collect.tensor(f"z_level{i}", eps)
    log_diff_map = 0.0
    log_diff_sum = 0.0
    previous = records["scale_0/preprocess"]
    for s, level in enumerate(model.levels):
        squeezed = False
        for step in level.steps:
            path = f"{level.name}/{step.name}"
            if not isinstance(step, RealNVPCouplingLayer):
                squeezed = step.name == "squeeze" or (squeezed and step.name != "unsqueeze")
                previous = records[path]
                continue
            name = f"enc_s{s}_c{step.name.rsplit('_', 1)[1]}_"
            collect.tensor(name + "in", previous)
            previous = records[path]
            collect.tensor(name + "out", previous)
            mask = step.mask
            element_map = 0.0
            for member in step.layers:
                member_map = records[f"{path}/{member.name}/log_det_map"]
                element_map += mask.combine(tf.zeros_like(previous), member_map)
            collect.tensor(name + "logdiff", element_map)
            collect.nats(name + "logdet", records[path + ":log_det"])
            log_diff_sum += records[path + ":log_det"]
            log_diff_map += _to_image_layout(element_map, s, squeezed, config.num_levels)
        if s < len(model.levels) - 1:
            previous = previous[..., : previous.shape[-1] // 2]  # the next scale's input
    collect.tensor("log_diff_map", log_diff_map)
    prior = sum(standard_normal_log_prob(eps) for eps in latents)
    transform_cost = records["scale_0/preprocess:log_det"]
    collect.nats("prior_ll", prior)
    collect.nats("log_diff_sum", log_diff_sum)
    collect.nats("transform_cost", transform_cost)
    collect.nats("log_diff_total", log_diff_sum + transform_cost)
    cost = -(model.log_prob(images, noise=noise) + config.num_dims * math.log(config.num_bins))
    collect.nats("cost", cost)
    collect.nats("cost_mean", tf.reduce_mean(cost))
    bits = encoding.bits_per_dim
    collect.tensor("bits_per_dim_per_example", bits, BITS_TOLERANCE)
    collect.tensor("bit_per_dim", tf.reduce_mean(bits), BITS_TOLERANCE)


def _decode(model, images, reference: dict, collect: _Collector):
    num_levels = model.config.num_levels
    if "z" in reference:
        latents = per_scale_latents(reference["z"], num_levels)
        logits = model.decode_logits(latents)
        collect.tensor("x_rec_logit", logits)
        continuous = model.decode(latents, as_uint8=False)
        collect.tensor("x_rec_unit", continuous + 0.5)
        collect.tensor("x_rec_uint8", postprocess(continuous, model.config.num_bits), 0.0)
        if "x_rec_uint8" in reference:
            exact = np.array_equal(postprocess(continuous, model.config.num_bits), images)
            collect.results.append(
                collect._comparison(
                    "x_rec_uint8 == x_ref", 0.0 if exact else math.inf, 0.0, exact
                )
            )
        collect.nats("x_rec_log_diff_sum", model.logit_flow().inverse_latents(latents)[1])
    if "sample_z" in reference:
        latents = per_scale_latents(reference["sample_z"], num_levels)
        for temperature in ("1.0", "0.7"):
            scaled = [eps * float(temperature) for eps in latents]
            logits, log_det = model.logit_flow().inverse_latents(scaled)
            collect.tensor(f"sample_logit_t{temperature}", logits)
            collect.nats(f"sample_log_diff_sum_t{temperature}", log_det)
            official = reference.get(f"sample_uint8_t{temperature}")
            if official is not None:
                images_t = official_postprocess(logits).numpy().astype(np.int64)
                differ = float(np.mean(images_t != official))
                collect.tensor(
                    f"sample_uint8_t{temperature}",
                    images_t,
                    1.0,
                    f"{100 * differ:.3f}% of values differ (truncating cast at a boundary)",
                )


def compare_realnvp_with_reference(model, reference_dir: str | os.PathLike) -> list:
    """Every official quantity found in `reference_dir`, compared with the model's."""
    reference_dir = os.fspath(reference_dir)
    for needed in ("x_ref.npy", "noise_ref.npy"):
        if not os.path.isfile(os.path.join(reference_dir, needed)):
            raise FileNotFoundError(f"{reference_dir!r} has no {needed}")
    images = np.load(os.path.join(reference_dir, "x_ref.npy"))
    noise = np.load(os.path.join(reference_dir, "noise_ref.npy")) * NOISE_SCALE
    if tuple(images.shape[1:]) != tuple(model.config.image_shape):
        raise ValueError(
            f"reference images have shape {images.shape[1:]}, the model expects "
            f"{tuple(model.config.image_shape)}"
        )
    results = []
    forward_path = os.path.join(reference_dir, "ref_forward.npz")
    if os.path.isfile(forward_path):
        collect = _Collector(_load(forward_path))
        _forward(model, images, noise, collect)
        results += collect.results
    decode_path = os.path.join(reference_dir, "ref_decode.npz")
    if os.path.isfile(decode_path):
        reference = _load(decode_path)
        if "z" not in reference and os.path.isfile(forward_path):
            reference["z"] = _load(forward_path)["z"]
        collect = _Collector(reference)
        _decode(model, images, reference, collect)
        results += collect.results
    if not results:
        raise ValueError(
            f"{reference_dir!r} holds no reference outputs (ref_forward.npz, ref_decode.npz)"
        )
    return results
