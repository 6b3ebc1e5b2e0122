"""Variational dequantisation (Flow++): a learned, conditional flow q(u | bins)."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from glow_tf.data.dequantize import check_noise
from glow_tf.flow.act_norm import ActNormLayer
from glow_tf.flow.conditional_coupling import ConditionalCouplingLayer
from glow_tf.flow.permutation import ShuffleLayer
from glow_tf.flow.sequence import FlowSequence
from glow_tf.flow.squeeze import squeeze2d, unsqueeze2d
from glow_tf.nn.init_mode import data_dependent_init_active, data_dependent_init_suspended
from glow_tf.seeds import seed_stream

__all__ = ["VariationalDequantization", "logistic_log_prob", "edge_margin"]


def logistic_log_prob(eps: tf.Tensor) -> tf.Tensor:
    """sum over all but the first axis of log Logistic(eps; 0, 1), shape [B]:

        log p(eps) = log sigmoid(eps) + log sigmoid(-eps)
    """
    log_density = tf.math.log_sigmoid(eps) + tf.math.log_sigmoid(-eps)
    return tf.reduce_sum(tf.reshape(log_density, [tf.shape(eps)[0], -1]), axis=-1)


def edge_margin(num_bits: int) -> float:
    """delta = 2**(num_bits - 24): the clip margin of an offset u in (0, 1), in
    units of one bin. x = (bins + u) / n_bins - 0.5 then stays 2**-24 inside
    its bin, so floor((x + 0.5) * n_bins) == bins in float32 for every u in
    [delta, 1 - delta] (every sum and product there is exact or rounds
    monotonically onto a representable bound)."""
    return 2.0 ** (int(num_bits) - 24)


@keras.saving.register_keras_serializable(package="glow_tf")
class VariationalDequantization(keras.layers.Layer):
    """Variational dequantisation (Ho et al. 2019, Flow++), as a layer of a `FlowModel`.

    On bins b in {0 .. n_bins - 1} of an image [H, W, C] (D = H W C values,
    n_bins = 2**num_bits), a flow conditioned on the bin centres
    c = squeeze((b + 0.5) / n_bins - 0.5) draws the offset u in (0, 1)^D of
    each value inside its bin:

        eps ~ Logistic(0, 1)^D                        (so sigmoid(eps) ~ U(0, 1))
        z = unsqueeze(f_K(... f_1(squeeze(eps)))),    f_k = affine coupling with
              network NN([z1, c]) o channel shuffle o ActNorm,  on [H/2, W/2, 4C]
        u = sigmoid(z)
        x = (b + clip(u, delta, 1 - delta)) / n_bins - 0.5      in [-0.5, 0.5)
        log q(u | b) = log Logistic(eps) - log|det dz/deps| - sum log(u (1 - u))
        log q_x = log q(u | b) + D log n_bins         (the density of the
                                                       offset x - b/n_bins + 0.5 = u / n_bins)

    `call` returns (x, log q_x [B]), so log p(x) - log q_x is a lower bound of
    the discrete log P(b) for every q (Theis et al. 2016; Ho et al. 2019),
    tightened as q is trained jointly with the flow by `fit` (its weights are
    part of the model's trainable variables).

    noise: as for `UniformDequantization`, the offset v = u / n_bins in
    [0, 1/n_bins) of x inside its bin (x = b / n_bins - 0.5 + v), so
    `encode(images, noise=bin_centre_noise(...))` and the exported `encode`
    keep their meaning. Given noise is not drawn from q: its log q is q's
    density at u = clip(n_bins v, delta, 1 - delta), through the inverse flow
    (eps = f^-1(logit(u))). Without noise, eps is drawn and pushed forward.

    Edges: u is clipped to [delta, 1 - delta] with delta = 2**(num_bits - 24)
    (`edge_margin`) so that quantising x gives b back exactly in float32.
    A drawn sample keeps the log q of its unclipped u (exactly q's density of
    the draw); clipping moves x by at most 2**-24 and happens with probability
    about 2 delta per value.

    The coupling networks start at zero output (so each coupling's scale starts
    at sigmoid(2)) and the ActNorms at the identity. The networks' own ActNorms
    are initialised from data by `FlowModel.initialize`, on one forward pass
    from base noise of a fixed seed (what they see in training, whatever
    noise the init batch is given). Needs even H and W.

    Args:
      num_bits: bits per pixel value, 1..8.
      num_steps: K, conditional flow steps.
      hidden_channels: width of the coupling networks.
      seed: seed of the initial weights and the channel shuffles.

    References:
      Ho et al. (2019), Flow++, https://arxiv.org/abs/1902.00275
      Theis et al. (2016), A note on the evaluation of generative models,
        https://arxiv.org/abs/1511.01844
    """

    def __init__(
        self,
        num_bits: int,
        num_steps: int = 4,
        hidden_channels: int = 32,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("num_steps", num_steps), ("hidden_channels", hidden_channels)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 1 <= int(num_bits) <= 8:
            raise ValueError(f"num_bits must lie in 1..8, got {num_bits!r}")
        self.num_bits = int(num_bits)
        self.num_steps = int(num_steps)
        self.hidden_channels = int(hidden_channels)
        self.seed = seed
        self.act_norms, self.shuffles, self.couplings = [], [], []

    @property
    def num_bins(self) -> int:
        return 2**self.num_bits

    def build(self, input_shape):
        height, width, channels = (None if d is None else int(d) for d in input_shape[1:])
        if None in (height, width, channels) or height % 2 or width % 2:
            raise ValueError(
                "variational dequantisation squeezes the image once: it needs a static "
                f"[H, W, C] with even H and W, got {tuple(input_shape)}"
            )
        squeezed = (None, height // 2, width // 2, 4 * channels)
        seeds = seed_stream(self.seed, "variational_dequantization")
        policy = self.dtype_policy
        for k in range(self.num_steps):
            act_norm = ActNormLayer(dtype=policy, name=f"act_norm_{k}")
            shuffle = ShuffleLayer(seed=seeds(), dtype=policy, name=f"shuffle_{k}")
            coupling = ConditionalCouplingLayer(
                4 * channels,
                "affine",
                hidden_channels=self.hidden_channels,
                seed=seeds(),
                dtype=policy,
                name=f"coupling_{k}",
            )
            for layer in (act_norm, shuffle, coupling):
                layer.build(squeezed)
            self.act_norms.append(act_norm)
            self.shuffles.append(shuffle)
            self.couplings.append(coupling)
        self.built = True

    # ------------------------------------------------------------- the flow

    def _context(self, bins):
        return squeeze2d((bins + 0.5) / self.num_bins - 0.5)

    def _flow(self, bins, training=False) -> FlowSequence:
        context = self._context(bins)
        members = []
        for act_norm, shuffle, coupling in zip(self.act_norms, self.shuffles, self.couplings):
            members += [
                act_norm.bijector(training),
                shuffle.bijector(training),
                coupling.bijector(training, context=context),
            ]
        return FlowSequence(members, name="dequantization_flow")

    def _bins(self, bins):
        bins = tf.cast(bins, self.compute_dtype)
        if bins.shape.rank != 4:
            raise ValueError(f"bins must have shape [batch, H, W, C], got {bins.shape}")
        return bins

    def base_noise(self, shape, seed=None) -> tf.Tensor:
        """eps ~ Logistic(0, 1) of `shape` (= logit(U), U ~ U(0, 1)); with a
        two-int `seed` the draw is stateless and reproducible."""
        tiny = float(np.finfo(np.float32).tiny)
        if seed is None:
            uniform = tf.random.uniform(shape, tiny, 1.0)
        else:
            uniform = tf.random.stateless_uniform(shape, seed=seed, minval=tiny, maxval=1.0)
        uniform = tf.cast(uniform, self.compute_dtype)
        return tf.math.log(uniform) - tf.math.log(1.0 - uniform)

    def offsets_from_base(self, bins, eps, training=False):
        """The forward flow: base noise eps [B, H, W, C] -> (u in (0, 1), not
        clipped; log q(u | bins) [B], the density of u in units of one bin)."""
        bins = self._bins(bins)
        eps = tf.cast(eps, bins.dtype)
        z, log_det = self._flow(bins, training).forward_and_log_det(squeeze2d(eps))
        z = unsqueeze2d(z)
        sigmoid_log_det = logistic_log_prob(z)  # log u (1 - u) = log_sigmoid(z) + log_sigmoid(-z)
        log_q = logistic_log_prob(eps) - log_det - sigmoid_log_det
        return tf.sigmoid(z), log_q

    def offsets_log_prob(self, bins, u, training=False):
        """log q(u | bins) [B] of offsets u in (0, 1)^D, through the inverse flow;
        also returns the base noise eps = f^-1(logit(u))."""
        bins = self._bins(bins)
        u = tf.cast(u, bins.dtype)
        z = tf.math.log(u) - tf.math.log(1.0 - u)  # 1 - u is exact for u >= 0.5; no Log1p in ONNX
        eps, log_det = self._flow(bins, training).inverse_and_log_det(squeeze2d(z))
        eps = unsqueeze2d(eps)
        log_q = logistic_log_prob(eps) + log_det - logistic_log_prob(z)
        return log_q, eps

    def flow_input(self, bins, u):
        """x = (bins + clip(u, delta, 1 - delta)) / n_bins - 0.5 (see `edge_margin`)."""
        delta = edge_margin(self.num_bits)
        u = tf.clip_by_value(u, delta, 1.0 - delta)
        return (bins + u) / self.num_bins - 0.5

    def call(self, bins, noise=None, training=None, seed=None):
        """bins -> (x, log q(u | x)); `noise` (offsets in [0, 1/n_bins)) is
        scored as given; otherwise eps is drawn, statelessly from a two-int
        `seed` if one is given (reproducible training noise)."""
        bins = self._bins(bins)
        if data_dependent_init_active():
            eps = self.base_noise(tf.shape(bins), seed=[0, 0 if self.seed is None else self.seed])
            self.offsets_from_base(bins, eps)
            with data_dependent_init_suspended():
                return self._dequantize(bins, noise, training)
        return self._dequantize(bins, noise, training, seed)

    def _dequantize(self, bins, noise, training, seed=None):
        num_dims = math.prod(bins.shape[1:])
        if noise is None:
            eps = self.base_noise(tf.shape(bins), seed=seed)
            u, log_q = self.offsets_from_base(bins, eps, bool(training))
        else:
            noise = check_noise(noise, bins.shape, self.num_bits, batch=tf.shape(bins)[0])
            noise = tf.cast(noise, bins.dtype)
            delta = edge_margin(self.num_bits)
            u = tf.clip_by_value(noise * self.num_bins, delta, 1.0 - delta)
            log_q, _ = self.offsets_log_prob(bins, u, bool(training))
        x = self.flow_input(bins, u)
        return x, log_q + num_dims * math.log(self.num_bins)

    def get_config(self):
        return {
            **super().get_config(),
            "num_bits": self.num_bits,
            "num_steps": self.num_steps,
            "hidden_channels": self.hidden_channels,
            "seed": self.seed,
        }
