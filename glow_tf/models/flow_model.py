"""FlowModel: what every image flow shares, as a Keras model that trains with `fit`.

A flow family (Glow, RealNVP, ...) subclasses `FlowModel` and supplies only
its levels and its top prior (and, if it has them, extra loss terms such as
Glow's classifier head); everything else lives here.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from glow_tf import compat
from glow_tf.data.dequantize import draws_seeded_noise
from glow_tf.data.dequantizers import make_dequantizer
from glow_tf.data.preprocess import check_images, check_labels, postprocess, quantize
from glow_tf.flow.act_norm import ActNormLayer, data_dependent_init, data_dependent_init_active
from glow_tf.flow.intermediates import forward_member, recording_active
from glow_tf.flow.level import LevelLayer
from glow_tf.flow.multiscale import (
    MultiScaleFlow,
    flatten_latents,
    latent_shapes,
    unflatten_latents,
)
from glow_tf.models.non_finite_steps import NonFiniteSteps
from glow_tf.nn.act_norm import ActNormalization
from glow_tf.objectives import bits_per_dim, standard_normal_log_prob
from glow_tf.prior import check_temperature

__all__ = ["FlowModel", "Encoding"]


class Encoding(NamedTuple):
    """What `FlowModel.encode` returns.

    Attributes:
      latents: per-level standardised latents eps [B, h_i, w_i, c_i], the top
        last (OpenAI's `encode` before flattening).
      flat: the same flattened and concatenated, [B, D] (OpenAI's `feps`).
      bits_per_dim: [B], the bits/dim of each image (OpenAI's `bits_x`).
    """

    latents: list
    flat: tf.Tensor
    bits_per_dim: tf.Tensor


class FlowModel(keras.Model):
    """A multi-scale normalising flow on channels-last images, as a Keras model.

    Data flow (encode), with D = H * W * C and n_bins = 2**num_bits:

        uint8 image --quantize--> bins --dequantizer--> x in [-0.5, 0.5), log q(u | x)
        x --levels (squeeze, steps, split; factor out)--> latents eps_0 .. eps_{L-2}
          --top prior--> eps_top;  log|det| summed along the way
        log p(x) = log N(eps; 0, I) + log|det|
        bits/dim = -(log p(x) - log q(u | x)) / (D log 2)

    and back (decode): eps * temperature --inverse flow--> x --> uint8. With
    uniform dequantisation log q(u | x) = D log n_bins (OpenAI's `bits_x`).

    The loss `fit` minimises is the mean bits/dim, plus any extra terms of the
    family (`extra_terms`) and the layers' `self.losses` (weight penalties).
    A `training` flag reaches every flow layer (`FlowLayer.bijector(training)`).

    Subclasses set `config_class` and implement `make_levels()` and
    `make_top_prior(top_shape)`; optionally `make_heads(top_shape)`,
    `extra_terms(...)` and `extra_metrics()`.

    Args:
      config: an instance of `config_class` (or its dict). It must provide
        image_shape, num_bits, num_bins, num_dims, num_classes, conditional.
      dequantizer: a layer mapping bins to (x, log q(u | x)), or a name of
        `glow_tf.data.dequantizers.DEQUANTIZATIONS` ("uniform", the default:
        `UniformDequantization(config.num_bits)`; "variational": a learned
        `VariationalDequantization`, trained jointly by `fit`).
    """

    config_class: type = None

    def __init__(self, config, dequantizer: keras.layers.Layer | str | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = self.config_class.from_dict(config)
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"config must be a {self.config_class.__name__} or dict, got "
                f"{type(config).__name__}"
            )
        self.config = config
        if dequantizer is None or isinstance(dequantizer, str):
            dequantizer = make_dequantizer(
                dequantizer or "uniform",
                config.num_bits,
                seed=getattr(config, "seed", None),
                dtype=self.dtype_policy,
            )
        self.dequantizer = dequantizer
        self.levels = self.make_levels(config, self.dtype_policy)
        self.latent_shapes = tuple(latent_shapes(config.image_shape, self.levels))
        self.top_prior = self.make_top_prior(self.latent_shapes[-1])
        self.make_heads(self.latent_shapes[-1])
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.bits_tracker = keras.metrics.Mean(name="bits_per_dim")
        self.build((None, *config.image_shape))

    # ------------------------------------------------------- family hooks

    @classmethod
    def make_levels(cls, config, dtype=None) -> list[LevelLayer]:
        """The family's levels for `config`, in data-flow order (the last
        factors out nothing), not yet built."""
        raise NotImplementedError

    @classmethod
    def latent_shapes_for(cls, config) -> list[tuple[int, int, int]]:
        """[h, w, c] of each latent (the top last) of a model with `config`,
        from its levels' shapes, without building any weights."""
        return latent_shapes(config.image_shape, cls.make_levels(config))

    def make_top_prior(self, top_shape: tuple[int, int, int]):
        """A layer whose `bijector(y)` standardises the top latent, or None
        for a standard-normal top."""
        return None

    def make_heads(self, top_shape: tuple[int, int, int]) -> None:
        """Creates any extra layers (e.g. a classifier on the top latent)."""

    def extra_terms(self, terms: dict, top_latent: tf.Tensor, y) -> dict:
        """Extra per-example terms; may replace terms["loss"] [B]."""
        return {}

    def extra_metrics(self) -> list:
        return []

    # ----------------------------------------------------------------- build

    def build(self, input_shape=None):
        if self.built:
            return
        shape = (None, *self.config.image_shape)
        if not self.dequantizer.built:
            self.dequantizer.build(shape)
        for level in self.levels:
            level.build(shape)
            shape = (None, *level.output_shapes(shape[1:])[0])
        if self.top_prior is not None:
            self.top_prior.build()
        self.initialized = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="initialized"
        )
        self.built = True

    def get_config(self):
        return {
            **super().get_config(),
            "config": self.config.to_dict(),
            "dequantizer": keras.saving.serialize_keras_object(self.dequantizer),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        model_config = config.pop("config")
        dequantizer = config.pop("dequantizer", None)
        if dequantizer is not None:
            dequantizer = keras.saving.deserialize_keras_object(dequantizer)
        kwargs = {k: v for k, v in config.items() if k in ("name", "trainable", "dtype")}
        return cls(model_config, dequantizer=dequantizer, **kwargs)

    # ------------------------------------------------------------ bijectors

    def flow(self, y=None, include_top: bool = True, training: bool = False) -> MultiScaleFlow:
        """The whole flow as a bijector, images [H, W, C] -> latents [D],
        built from the current weights (see `MultiScaleFlow`)."""
        levels = [level.bijector(training=training) for level in self.levels]
        top = None
        if include_top and self.top_prior is not None:
            top = self.top_prior.bijector(y)
        return MultiScaleFlow(self.config.image_shape, levels, top)

    def distribution(self, y=None, temperature: float = 1.0):
        """A `tfd.TransformedDistribution` over the flow's continuous input."""
        from glow_tf.distribution import glow_distribution

        return glow_distribution(self, y=y, temperature=temperature)

    # --------------------------------------------------------------- inputs

    def _check_y(self, y, batch):
        config = self.config
        if config.conditional:
            if y is None:
                raise ValueError(
                    f"this model is class-conditional ({config.num_classes} classes): pass "
                    "labels y, one int per image"
                )
            return check_labels(y, config.num_classes, batch)
        if y is not None:
            raise ValueError(
                "labels were passed to an unconditional model (num_classes=0); drop them, "
                "e.g. dataset.map(lambda x, y: x)"
            )
        return None

    def _dequantize(self, images, noise=None, training=False, seed=None):
        """uint8-valued images -> (x in [-0.5, 0.5), log q(u | x) [B]); `seed`:
        a stateless seed for the noise the dequantizer draws."""
        images = check_images(images, self.config.image_shape)
        bins = quantize(images, self.config.num_bits)
        if seed is None:
            return self.dequantizer(bins, noise=noise, training=training)
        return self.dequantizer(bins, noise=noise, training=training, seed=seed)

    def flow_input(self, images, noise=None) -> tf.Tensor:
        """uint8-valued images -> the dequantised flow input x in [-0.5, 0.5).

        `noise`: None lets the dequantizer draw it; a tensor of the images'
        shape is used as given (reproducible encodes).
        """
        return self._dequantize(images, noise)[0]

    # ------------------------------------------------------------ objective

    def _terms(self, x, log_q, y, training=False):
        """One pass of the flow on the flow input x: latents, log p(x), bits/dim, loss."""
        latents, log_det = self.flow(include_top=False, training=training).forward_latents(x)
        top_latent = latents[-1]
        if self.top_prior is not None:
            eps_top, top_log_det = forward_member(
                self.top_prior.bijector(y), top_latent, "top_prior"
            )
            latents = latents[:-1] + [eps_top]
            log_det += top_log_det
        log_prob = log_det + sum(standard_normal_log_prob(eps) for eps in latents)
        bits = bits_per_dim(log_prob - log_q, self.config.num_dims)
        terms = {"latents": latents, "log_prob": log_prob, "log_q": log_q, "bits_x": bits}
        terms["loss"] = bits
        terms.update(self.extra_terms(terms, top_latent, y))
        return terms

    def _images_terms(self, images, y=None, noise=None, training=False, seed=None):
        x, log_q = self._dequantize(images, noise, training, seed)
        y = self._check_y(y, tf.shape(x)[0])
        return self._compiled(self._terms)(x, log_q, y, training)

    def _decode_latents(self, latents, y, temperature):
        latents = [eps * temperature for eps in latents]
        return self.flow(y).inverse_latents(latents)[0]

    def _compiled(self, method):
        """`method` as a cached tf.function when called eagerly, else `method`.

        Eager calls of encode / decode / sample then run one graph (no Python
        per op); calls inside someone else's tf.function (fit, export) trace
        inline, and data-dependent init and recorded passes stay eager.

        Numerics depend on the call history by float32 rounding: the first
        call traces with its static batch size; once calls with other batch
        sizes make TensorFlow retrace with an unknown batch dimension, that
        graph's reductions can round differently (measured on RealNVP:
        bits/dim up to ~2e-7 relative apart). Two models with the same weights
        and the same call history give identical results, in any process.
        """
        if not tf.executing_eagerly() or data_dependent_init_active() or recording_active():
            return method
        cache = self.__dict__.setdefault("_compiled_methods", {})
        if method.__name__ not in cache:
            cache[method.__name__] = tf.function(method, reduce_retracing=True)
        return cache[method.__name__]

    # ---------------------------------------------------------- public API

    @property
    def has_data_dependent_init(self) -> bool:
        """Whether `initialize` sets weights from data: the model holds
        ActNorms (Glow's flow and networks, a variational dequantiser's).
        Otherwise (RealNVP with uniform dequantisation) `initialize` only
        measures the bits/dim of the initial weights and marks the model
        initialised."""
        return any(
            isinstance(layer, (ActNormLayer, ActNormalization)) for layer in self._flatten_layers()
        )

    @property
    def is_initialized(self) -> bool:
        return bool(int(self.initialized.numpy()))

    def initialize(self, images, y=None, noise=None) -> float:
        """Data-dependent init of every ActNorm on one batch; returns its bits/dim.

        Runs one eager forward pass in which each ActNorm, in flow order, sets
        bias = -mean and log_scale = -log(std) of its input (OpenAI's init).
        Deterministic given `noise`. Under a `tf.distribute` strategy call it
        in the strategy's scope on the global batch: every replica gets the
        same values. Ported or loaded models are already initialised.
        """
        if not tf.executing_eagerly():
            raise RuntimeError(
                f"{type(self).__name__}.initialize must be called eagerly, not in a tf.function"
            )
        with data_dependent_init():
            terms = self._images_terms(images, y, noise)
        self.initialized.assign(1)
        return float(tf.reduce_mean(terms["bits_x"]))

    def encode(self, x, y=None, noise=None) -> Encoding:
        """Images [B, H, W, C] (uint8 values) -> per-level latents and bits/dim."""
        terms = self._images_terms(x, y, noise)
        latents = terms["latents"]
        return Encoding(latents, flatten_latents(latents), terms["bits_x"])

    def decode(self, latents, y=None, temperature: float = 1.0, as_uint8: bool = True):
        """Latents (per-level list, or flat [B, D]) -> images.

        The latents are multiplied by `temperature` first (OpenAI's eps_std).
        Returns uint8 images, or the continuous flow output in [-0.5, 0.5)
        with `as_uint8=False`.
        """
        shapes = [tuple(s) for s in self.latent_shapes]
        if isinstance(latents, (list, tuple)):
            latents = [tf.convert_to_tensor(eps, tf.float32) for eps in latents]
            given = [tuple(eps.shape[1:]) for eps in latents]
            if given != shapes:
                raise ValueError(f"expected latents of shapes {shapes}, got {given}")
        else:
            flat = tf.convert_to_tensor(latents)
            if flat.dtype != tf.float32:
                raise TypeError(f"latents must be float32, got {flat.dtype.name}")
            num_dims = self.config.num_dims
            if flat.shape.rank != 2 or flat.shape[1] != num_dims:
                raise ValueError(
                    f"flat latents must have shape [batch, {num_dims}], got {flat.shape}"
                )
            latents = unflatten_latents(flat, shapes)
        temperature = check_temperature(temperature)
        y = self._check_y(y, tf.shape(latents[0])[0])
        x = self._compiled(self._decode_latents)(latents, y, temperature)
        return postprocess(x, self.config.num_bits) if as_uint8 else x

    def sample(self, n: int, temperature: float = 1.0, seed=None, y=None, as_uint8: bool = True):
        """n images drawn at `temperature` (eps ~ N(0, T^2)); `seed` (int or
        two ints) makes the draw reproducible."""
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        shape = [int(n), self.config.num_dims]
        if seed is None:
            eps = tf.random.normal(shape)
        else:
            eps = tf.random.stateless_normal(shape, seed=_two_int_seed(seed))
        return self.decode(eps, y=y, temperature=temperature, as_uint8=as_uint8)

    def log_prob(self, x, y=None, noise=None) -> tf.Tensor:
        """log p of each discrete image in nats, one dequantisation sample:

        log p(x + u) - log q(u | x)  (a stochastic lower bound of log P(x))
        """
        terms = self._images_terms(x, y, noise)
        return terms["log_prob"] - terms["log_q"]

    def bits_per_dim(self, x, y=None, noise=None) -> tf.Tensor:
        """The bits/dim of each image, [B] (OpenAI's `bits_x`)."""
        return self._images_terms(x, y, noise)["bits_x"]

    # ---------------------------------------------------------------- Keras

    def call(self, inputs, training=False):
        """Per-image bits/dim of `images` or `(images, labels)`."""
        images, y = self._unpack(inputs)
        return self._images_terms(images, y, training=bool(training))["bits_x"]

    def _unpack(self, data):
        if isinstance(data, dict):
            images = data.get("image", data.get("images"))
            y = data.get("label", data.get("labels"))
            if images is None:
                raise ValueError(f"a dict batch needs an 'image' key, got keys {sorted(data)}")
        elif isinstance(data, (tuple, list)):
            if not 1 <= len(data) <= 3:
                raise ValueError(f"expected images or (images, labels), got a tuple of {len(data)}")
            images, y = data[0], (data[1] if len(data) > 1 else None)
        else:
            images, y = data, None
        return images, y

    @property
    def metrics(self):
        return [self.loss_tracker, self.bits_tracker, *self.extra_metrics()]

    def update_extra_metrics(self, terms: dict, y) -> None:
        """Updates the trackers of `extra_metrics` from a step's terms."""

    def _update_metrics(self, terms, y, penalty=0.0):
        self.loss_tracker.update_state(terms["loss"] + penalty)
        self.bits_tracker.update_state(terms["bits_x"])
        self.update_extra_metrics(terms, y)
        return compat.multi_worker_reducible_logs({m.name: m.result() for m in self.metrics})

    def compile(
        self,
        optimizer="adamax",
        *args,
        gradient_clip_norm: float | None = None,
        noise_seed: int | None = None,
        **kwargs,
    ):
        """Keras `compile`, plus:

        `gradient_clip_norm`: rescale each update's gradient g (of the mean
        loss over the global batch, all replicas) to

            g * min(1, gradient_clip_norm / ||g||)     (global norm over all weights)

        Unlike the optimizer's own `global_clipnorm`, which under a
        distribution strategy clips each replica's partial gradient, this
        clips the gradient that is actually applied.

        `noise_seed`: the dequantizer draws the noise of each update
        statelessly from the seed (noise_seed, optimizer step) (folded with
        the replica id when there are several), so a run resumed from a
        checkpoint draws the noise the uninterrupted run would have drawn
        (the dequantizer's `call` must take `seed`); None: unseeded noise.
        """
        if gradient_clip_norm is not None and not gradient_clip_norm > 0:
            raise ValueError(f"gradient_clip_norm must be > 0, got {gradient_clip_norm}")
        if noise_seed is not None and not isinstance(noise_seed, (int, np.integer)):
            raise ValueError(f"noise_seed must be an int or None, got {noise_seed!r}")
        if noise_seed is not None and not draws_seeded_noise(self.dequantizer):
            raise ValueError(
                f"noise_seed: the dequantizer {type(self.dequantizer).__name__} draws no "
                "seeded noise (its call takes no `seed`); compile without noise_seed"
            )
        self.gradient_clip_norm = gradient_clip_norm
        self.noise_seed = None if noise_seed is None else int(noise_seed)
        super().compile(optimizer, *args, **kwargs)
        compat.apply_reduced_gradients(self.optimizer)  # train_step all-reduces them once
        if getattr(self, "non_finite_steps", None) is None:
            self.non_finite_steps = NonFiniteSteps(self.distribute_strategy)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and getattr(self, "gradient_clip_norm", None):
            config = {**config, "gradient_clip_norm": self.gradient_clip_norm}
        if config is not None and getattr(self, "noise_seed", None) is not None:
            config = {**config, "noise_seed": self.noise_seed}
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # private Keras hook: no lazy build from a peeked (uint8) batch
        return compat.build_without_peeked_batch(
            self, super()._maybe_symbolic_build, iterator, data_batch
        )

    def _training_noise_seed(self):
        """The stateless seed of this update's dequantisation noise, [2] int64:
        (noise_seed, optimizer step) with `compile(noise_seed=...)`, else None."""
        if getattr(self, "noise_seed", None) is None:
            return None
        step = tf.cast(tf.convert_to_tensor(self.optimizer.iterations), tf.int64)
        seed = tf.stack([tf.constant(self.noise_seed, tf.int64), step])
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)
        return seed

    def train_step(self, data):
        """One update on the global batch, with no host round trip:

            g = sum over replicas of grad(loss / replicas)    (one all-reduce)
            g = g * min(1, gradient_clip_norm / ||g||)          (if clipping)
            apply g                     if the loss and g are finite, else skip

        A skipped update leaves the weights, the optimizer's slots and its
        `iterations` exactly as they were and is counted in
        `self.non_finite_steps` (read every few steps by `NonFiniteGuard`).
        Under a LossScaleOptimizer (float16 networks) the optimizer itself
        skips non-finite gradients (and halves its scale); the record counts
        those steps.
        """
        images, y = self._unpack(data)
        with tf.GradientTape() as tape:
            seed = self._training_noise_seed()
            terms = self._images_terms(images, y, training=True, seed=seed)
            penalty = tf.add_n([tf.cast(p, tf.float32) for p in self.losses] or [tf.constant(0.0)])
            loss = tf.reduce_mean(terms["loss"]) + penalty
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(loss / replicas)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        global_loss, gradients = _sum_over_replicas(loss / replicas, gradients)
        gradients_finite = _all_finite(gradients)
        if getattr(self, "gradient_clip_norm", None):
            gradients = _clip_global_gradient(gradients, self.gradient_clip_norm, self.optimizer)
        record = getattr(self, "non_finite_steps", None)
        iterations = tf.convert_to_tensor(self.optimizer.iterations)
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            finite = gradients_finite  # what the loss scaler checks; it skips the rest
            self.optimizer.apply(gradients, variables)
        else:
            finite = tf.logical_and(gradients_finite, tf.math.is_finite(global_loss))
            compat.apply_gradients_if(finite, self.optimizer, gradients, variables)
        if record is not None:
            record.record(finite, global_loss, iterations)
        return self._update_metrics(terms, y, penalty)

    def test_step(self, data):
        images, y = self._unpack(data)
        return self._update_metrics(self._images_terms(images, y), y)

    def predict_step(self, data):
        images, y = self._unpack(data)
        return self._images_terms(images, y)["bits_x"]

    def _require_initialized(self, what: str):
        if not self.is_initialized:
            raise RuntimeError(
                f"{what}: the model's ActNorm layers are not initialised; call "
                "model.initialize(batch) with a batch of training images first "
                "(or load trained weights)"
            )

    def fit(self, x=None, *args, **kwargs):
        self._require_initialized("fit")
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a Dataset carries its own shuffling
        return super().fit(x, *args, **kwargs)




def _sum_over_replicas(loss, gradients):
    """(loss, gradients) summed over the replicas of the current strategy, in
    one all-reduce (as they are on one replica); None gradients stay None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return loss, gradients
    present = [g for g in gradients if g is not None]
    loss, present = context.all_reduce(tf.distribute.ReduceOp.SUM, (loss, present))
    present = iter(present)
    return loss, [None if g is None else next(present) for g in gradients]


def _all_finite(gradients) -> tf.Tensor:
    checks = [tf.reduce_all(tf.math.is_finite(g)) for g in gradients if g is not None]
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)


def _clip_global_gradient(gradients, clip_norm: float, optimizer):
    """Scales the gradients (already summed over replicas: the ones the
    optimizer applies) by min(1, clip_norm / ||g||), ||g|| measured without
    the optimizer's loss scale (float16 training)."""
    loss_scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), tf.float32)
    norm = tf.linalg.global_norm([g for g in gradients if g is not None]) / loss_scale
    factor = tf.minimum(1.0, clip_norm / tf.maximum(norm, 1e-12))
    return [None if g is None else g * tf.cast(factor, g.dtype) for g in gradients]


def _two_int_seed(seed) -> tf.Tensor:
    seed = np.asarray(seed, dtype=np.int64).reshape(-1)
    if seed.size == 1:
        seed = np.array([0, seed[0]], dtype=np.int64)
    if seed.size != 2:
        raise ValueError(f"seed must be an int or two ints, got {seed}")
    return tf.constant(seed)
