"""The official OpenAI Glow math in plain numpy (float64), independent of glow_tf.

Written from the official code (github.com/openai/glow @ 91b2c57: model.py
`codec`, `revnet2d_step`, `f`, `invertible_1x1_conv` (both branches),
`split2d`, `prior`, `_f_loss`; tfops.py `actnorm`, `conv2d`, `conv2d_zeros`,
`linear_zeros`, `add_edge_padding`, `squeeze2d`, `shuffle_features`,
`reverse_features`, `gaussian_diag`), to test the port: it imports nothing
from glow_tf, so a convention error in glow_tf (LU assembly order, gather
direction, interleaving, edge padding, halves of the top prior) shows up as a
mismatch. Weights are the official variables {name: array} with official
shapes and stored conventions (`logs` before the factor 3).

`Hps` holds the official hyper-parameters that shape the model;
`random_official_variables` makes a trained-looking set of variables with
the names and shapes the official code creates for them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = [
    "Hps",
    "random_official_variables",
    "encode",
    "decode",
    "postprocess",
    "reference_outputs",
]

LOGSCALE_FACTOR = 3.0


@dataclasses.dataclass(frozen=True)
class Hps:
    image_size: int = 8
    n_levels: int = 2
    depth: int = 2
    width: int = 8
    flow_permutation: int = 2  # 0 reverse, 1 shuffle, 2 invconv
    flow_coupling: int = 1  # 0 additive, 1 affine
    use_lu: bool = False
    learntop: bool = True
    ycond: bool = False
    n_y: int = 3
    weight_y: float = 0.0
    n_bits_x: int = 5

    @property
    def n_bins(self) -> float:
        return 2.0**self.n_bits_x

    def to_json_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------- variables


def random_official_variables(hps: Hps, seed: int = 0) -> dict[str, np.ndarray]:
    """A trained-looking set of official variables (names, shapes, dtypes of the official code).

    Nothing is at its zero init: the coupling outputs, split priors, top prior
    and class embedding all move their outputs, so every convention matters.
    The LU factors carry garbage in the entries the official masks remove.
    """
    rng = np.random.default_rng(seed)
    f32 = np.float32
    variables: dict[str, np.ndarray] = {}

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(f32)

    def actnorm(prefix, channels):
        variables[prefix + "actnorm_center/b"] = normal((1, 1, 1, channels), 0.2)
        variables[prefix + "actnorm_scale/logs"] = normal((1, 1, 1, channels), 0.05)

    def zeros_layer(prefix, w_shape, n_out, bias_shape):
        variables[prefix + "/W"] = normal(w_shape, 0.05)
        variables[prefix + "/b"] = normal(bias_shape, 0.1)
        variables[prefix + "/logs"] = normal((1, n_out), 0.05)

    n_z = 3 * 4
    for i in range(hps.n_levels):
        for j in range(hps.depth):
            prefix = f"model/{i}/{j}/"
            actnorm(prefix, n_z)
            if hps.flow_permutation == 2 and not hps.use_lu:
                q = np.linalg.qr(rng.standard_normal((n_z, n_z)))[0]
                variables[prefix + "invconv/W"] = (q + normal((n_z, n_z), 0.1)).astype(
                    f32
                )
            elif hps.flow_permutation == 2:
                p = np.eye(n_z)[rng.permutation(n_z)]
                lower = np.tril(rng.standard_normal((n_z, n_z)) * 0.1, -1)
                upper = np.triu(rng.standard_normal((n_z, n_z)) * 0.1, 1)
                # garbage where the official masks apply (diagonal, other triangle)
                lower += np.triu(rng.standard_normal((n_z, n_z)) * 5.0)
                upper += np.tril(rng.standard_normal((n_z, n_z)) * 5.0)
                variables[prefix + "invconv/P"] = p.astype(f32)
                variables[prefix + "invconv/L"] = lower.astype(f32)
                variables[prefix + "invconv/U"] = upper.astype(f32)
                variables[prefix + "invconv/sign_S"] = rng.choice(
                    [-1.0, 1.0], n_z
                ).astype(f32)
                variables[prefix + "invconv/log_S"] = normal((n_z,), 0.1)
            elif hps.flow_permutation == 1:
                indices = rng.permutation(n_z).astype(np.int32)
                variables[prefix + "shuffle/indices"] = indices
                variables[prefix + "shuffle/indices_inverse"] = np.argsort(
                    indices
                ).astype(np.int32)
            n_out = n_z if hps.flow_coupling == 1 else n_z // 2
            variables[prefix + "f1/l_1/W"] = normal(
                (3, 3, n_z // 2 + 1, hps.width), 0.3
            )
            actnorm(prefix + "f1/l_1/", hps.width)
            variables[prefix + "f1/l_2/W"] = normal((1, 1, hps.width, hps.width), 0.3)
            actnorm(prefix + "f1/l_2/", hps.width)
            zeros_layer(
                prefix + "f1/l_last",
                (3, 3, hps.width + 1, n_out),
                n_out,
                (1, 1, 1, n_out),
            )
        if i < hps.n_levels - 1:
            zeros_layer(
                f"model/pool{i}/conv", (3, 3, n_z // 2 + 1, n_z), n_z, (1, 1, 1, n_z)
            )
            n_z *= 2
    if hps.learntop:
        zeros_layer(
            "model/prior/p", (3, 3, 2 * n_z + 1, 2 * n_z), 2 * n_z, (1, 1, 1, 2 * n_z)
        )
    if hps.ycond:
        zeros_layer("model/prior/y_emb", (hps.n_y, 2 * n_z), 2 * n_z, (1, 2 * n_z))
    if hps.ycond and hps.weight_y > 0:
        zeros_layer("model/classifier", (n_z, hps.n_y), hps.n_y, (1, hps.n_y))
    return variables


# -------------------------------------------------------------------- layers


def squeeze2d(x):
    b, h, w, c = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
    return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze2d(x):
    b, h, w, c = x.shape
    x = x.reshape(b, h, w, c // 4, 2, 2).transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(b, 2 * h, 2 * w, c // 4)


def _edge_pad(x):
    b, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    border = np.ones((b, h + 2, w + 2, 1))
    border[:, 1:-1, 1:-1, :] = 0.0
    return np.concatenate([padded, border], axis=-1)


def _conv_valid(x, kernel):
    kh, kw = kernel.shape[:2]
    b, h, w, _ = x.shape
    out = np.zeros((b, h - kh + 1, w - kw + 1, kernel.shape[-1]))
    for dy in range(kh):
        for dx in range(kw):
            out += x[:, dy : dy + h - kh + 1, dx : dx + w - kw + 1, :] @ kernel[dy, dx]
    return out


def _conv(x, kernel):
    kernel = np.asarray(kernel, np.float64)
    return _conv_valid(_edge_pad(x) if kernel.shape[0] > 1 else x, kernel)


def _actnorm(v, prefix, x, reverse=False):
    bias = v[prefix + "actnorm_center/b"].astype(np.float64)
    logs = v[prefix + "actnorm_scale/logs"].astype(np.float64) * LOGSCALE_FACTOR
    log_det = logs.sum() * x.shape[1] * x.shape[2]
    if reverse:
        return x * np.exp(-logs) - bias, -log_det
    return (x + bias) * np.exp(logs), log_det


def _conv_zeros(v, prefix, x):
    bias = v[prefix + "/b"].astype(np.float64)
    logs = v[prefix + "/logs"].astype(np.float64).reshape(-1) * LOGSCALE_FACTOR
    return (_conv(x, v[prefix + "/W"]) + bias) * np.exp(logs)


def _linear_zeros(v, prefix, x):
    w, b = v[prefix + "/W"].astype(np.float64), v[prefix + "/b"].astype(np.float64)
    logs = v[prefix + "/logs"].astype(np.float64) * LOGSCALE_FACTOR
    return (x @ w + b) * np.exp(logs)


def _f(v, prefix, h):
    h = np.maximum(_actnorm(v, prefix + "l_1/", _conv(h, v[prefix + "l_1/W"]))[0], 0.0)
    h = np.maximum(_actnorm(v, prefix + "l_2/", _conv(h, v[prefix + "l_2/W"]))[0], 0.0)
    return _conv_zeros(v, prefix + "l_last", h)


def _invconv_matrices(v, prefix, pixels):
    """(W, W^-1, log-det of the layer) as the official code forms them."""
    if prefix + "invconv/W" in v:
        w = v[prefix + "invconv/W"].astype(np.float64)
        log_det = np.float32(np.log(abs(np.linalg.det(w)))) * pixels
        return w, np.linalg.inv(w), log_det
    p, lower, upper, sign_s, log_s = (
        v[prefix + "invconv/" + name].astype(np.float64)
        for name in ("P", "L", "U", "sign_S", "log_S")
    )
    n = p.shape[0]
    mask = np.tril(np.ones((n, n)), -1)
    lower = lower * mask + np.eye(n)
    upper = upper * mask.T + np.diag(sign_s * np.exp(log_s))
    w = p @ (lower @ upper)
    w_inv = np.linalg.inv(upper) @ (np.linalg.inv(lower) @ np.linalg.inv(p))
    return w, w_inv, log_s.sum() * pixels


def _permute(v, hps, prefix, z, reverse):
    if hps.flow_permutation == 0:
        return z[..., ::-1], 0.0
    if hps.flow_permutation == 1:
        key = "shuffle/indices_inverse" if reverse else "shuffle/indices"
        return z[..., v[prefix + key]], 0.0
    w, w_inv, log_det = _invconv_matrices(v, prefix, z.shape[1] * z.shape[2])
    if reverse:
        return z @ w_inv, -log_det
    return z @ w, log_det


def _coupling(v, hps, prefix, z, reverse):
    n = z.shape[-1]
    z1, z2 = z[..., : n // 2], z[..., n // 2 :]
    h = _f(v, prefix + "f1/", z1)
    if hps.flow_coupling == 0:
        return np.concatenate([z1, z2 - h if reverse else z2 + h], -1), 0.0, h
    shift, scale = h[..., 0::2], 1.0 / (1.0 + np.exp(-(h[..., 1::2] + 2.0)))
    log_det = np.log(scale).sum(axis=(1, 2, 3))
    if reverse:
        return np.concatenate([z1, z2 / scale - shift], -1), -log_det, h
    return np.concatenate([z1, (z2 + shift) * scale], -1), log_det, h


def _gaussian_logp(x, mean, logs):
    return (
        -0.5 * (np.log(2 * np.pi) + 2.0 * logs + (x - mean) ** 2 / np.exp(2.0 * logs))
    ).sum(axis=(1, 2, 3))


def _split_prior(v, level, z1):
    h = _conv_zeros(v, f"model/pool{level}/conv", z1)
    return h[..., 0::2], h[..., 1::2]


def _top_prior(v, hps, top_shape, y, batch):
    n_z = top_shape[-1]
    h = np.zeros((batch, *top_shape[:2], 2 * n_z))
    if hps.learntop:
        h = _conv_zeros(v, "model/prior/p", h)
    if hps.ycond:
        one_hot = np.eye(hps.n_y)[np.asarray(y)]
        h = h + _linear_zeros(v, "model/prior/y_emb", one_hot)[:, None, None, :]
    return h[..., :n_z], h[..., n_z:]


def _top_shape(hps):
    size, channels = hps.image_size // 2, 12
    for _ in range(hps.n_levels - 1):
        size, channels = size // 2, channels * 2
    return (size, size, channels)


# -------------------------------------------------------------- encode/decode


def encode(v, hps: Hps, x_uint8, y, noise) -> dict[str, np.ndarray]:
    """The official encoder on uint8 images with given noise; every intermediate."""
    out: dict[str, np.ndarray] = {}
    x = np.asarray(x_uint8, np.float64)
    if hps.n_bits_x < 8:
        x = np.floor(x / 2 ** (8 - hps.n_bits_x))
    x = x / hps.n_bins - 0.5 + np.asarray(noise, np.float64)
    dims = int(np.prod(x.shape[1:]))
    out["x_dequant"] = x
    objective = np.full(x.shape[0], -np.log(hps.n_bins) * dims)
    z = squeeze2d(x)
    out["z_squeezed"] = z
    sum_log_det = np.zeros(x.shape[0])
    sum_split = np.zeros(x.shape[0])
    eps = []
    for i in range(hps.n_levels):
        for j in range(hps.depth):
            name, prefix = f"step{i}_{j}_", f"model/{i}/{j}/"
            out[name + "in"] = z
            z, log_det_norm = _actnorm(v, prefix, z)
            out[name + "actnorm"] = z
            z, log_det_perm = _permute(v, hps, prefix, z, reverse=False)
            out[name + "perm"] = z
            z, log_det_coupling, h = _coupling(v, hps, prefix, z, reverse=False)
            out[name + "nn"], out[name + "out"] = h, z
            out[name + "logdet_actnorm"] = np.full(x.shape[0], log_det_norm)
            out[name + "logdet_actnorm_perm"] = (
                out[name + "logdet_actnorm"] + log_det_perm
            )
            out[name + "logdet"] = out[name + "logdet_actnorm_perm"] + log_det_coupling
            sum_log_det += out[name + "logdet"]
        out[f"level{i}_out"] = z
        if i < hps.n_levels - 1:
            n = z.shape[-1]
            z1, z2 = z[..., : n // 2], z[..., n // 2 :]
            mean, logs = _split_prior(v, i, z1)
            out[f"level{i}_split_z2"] = z2
            out[f"level{i}_split_logp"] = _gaussian_logp(z2, mean, logs)
            out[f"level{i}_split_eps"] = (z2 - mean) / np.exp(logs)
            eps.append(out[f"level{i}_split_eps"])
            sum_split += out[f"level{i}_split_logp"]
            z = squeeze2d(z1)
    out["z_top"] = z
    mean, logs = _top_prior(v, hps, z.shape[1:], y, x.shape[0])
    out["top_logp"] = _gaussian_logp(z, mean, logs)
    out["top_eps"] = (z - mean) / np.exp(logs)
    eps.append(out["top_eps"])
    out["sum_logdet"], out["sum_split_logp"] = sum_log_det, sum_split
    objective = objective + sum_log_det + sum_split + out["top_logp"]
    out["objective"] = objective
    out["logpx_continuous"] = objective + np.log(hps.n_bins) * dims
    out["bits_x"] = -objective / (np.log(2.0) * dims)
    if hps.ycond and hps.weight_y > 0:
        logits = _linear_zeros(v, "model/classifier", z.mean(axis=(1, 2)))
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        out["y_logits"] = logits
        out["bits_y"] = -log_softmax[np.arange(len(y)), y] / np.log(2.0)
    out["feps"] = np.concatenate([e.reshape(e.shape[0], -1) for e in eps], axis=-1)
    return out


def postprocess(x, hps: Hps):
    return np.clip(
        np.floor((x + 0.5) * hps.n_bins) * (256.0 / hps.n_bins), 0, 255
    ).astype(np.uint8)


def decode(v, hps: Hps, feps, y, eps_scale: float = 1.0):
    """The official decoder of flat latents (each eps times eps_scale): (uint8, continuous)."""
    feps = np.asarray(feps, np.float64) * eps_scale
    batch = feps.shape[0]
    shapes, size, channels = [], hps.image_size // 2, 12
    for _ in range(hps.n_levels - 1):
        shapes.append((size, size, channels // 2))
        size, channels = size // 2, channels * 2
    shapes.append((size, size, channels))
    eps, start = [], 0
    for shape in shapes:
        count = int(np.prod(shape))
        eps.append(feps[:, start : start + count].reshape(batch, *shape))
        start += count
    mean, logs = _top_prior(v, hps, shapes[-1], y, batch)
    z = mean + np.exp(logs) * eps[-1]
    for i in reversed(range(hps.n_levels)):
        if i < hps.n_levels - 1:
            z1 = unsqueeze2d(z)
            mean, logs = _split_prior(v, i, z1)
            z = np.concatenate([z1, mean + np.exp(logs) * eps[i]], -1)
        for j in reversed(range(hps.depth)):
            prefix = f"model/{i}/{j}/"
            z, _, _ = _coupling(v, hps, prefix, z, reverse=True)
            z, _ = _permute(v, hps, prefix, z, reverse=True)
            z, _ = _actnorm(v, prefix, z, reverse=True)
    x = unsqueeze2d(z)
    return postprocess(x, hps), x


def reference_outputs(
    v, hps: Hps, batch: int = 4, seed: int = 1, temperature: float = 0.7
) -> dict:
    """A reference folder's contents, laid out like the OpenAI fixtures, from this math."""
    rng = np.random.default_rng(seed)
    size = hps.image_size
    x = rng.integers(0, 256, (batch, size, size, 3)).astype(np.uint8)
    y = (
        rng.integers(0, hps.n_y, batch).astype(np.int32)
        if hps.ycond
        else np.zeros(batch, np.int32)
    )
    noise = rng.uniform(0, 1.0 / hps.n_bins, x.shape).astype(np.float32)
    forward = encode(v, hps, x, y, noise)
    x_rec, x_rec_cont = decode(v, hps, forward["feps"], y)
    sample_eps = rng.standard_normal((batch, forward["feps"].shape[1])).astype(
        np.float32
    )
    x_sample, x_cont = decode(v, hps, sample_eps, y, eps_scale=temperature)
    f32 = {k: val.astype(np.float32) for k, val in forward.items() if k != "feps"}
    return {
        "x_ref.npy": x,
        "y_ref.npy": y,
        "noise_ref.npy": noise,
        "ref_forward.npz": f32,
        "ref_encode_decode.npz": {
            "feps": forward["feps"].astype(np.float32),
            "x_rec": x_rec,
            "x_rec_cont": x_rec_cont.astype(np.float32),
        },
        f"ref_samples_t{temperature}.npz": {
            "sample_eps": sample_eps,
            "y": y,
            "temperature": np.float32(temperature),
            "x_uint8": x_sample,
            "x_cont": x_cont.astype(np.float32),
        },
    }
