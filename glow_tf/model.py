"""GlowModel: the whole Glow as a Keras model that trains with `fit`."""

from __future__ import annotations

import math
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from glow_tf.config import GlowConfig
from glow_tf.data.dequantize import check_noise, uniform_noise
from glow_tf.data.preprocess import check_images, check_labels, postprocess, quantize, to_flow_input
from glow_tf.flow.act_norm import data_dependent_init, data_dependent_init_active
from glow_tf.flow.multiscale import LevelLayer, MultiScaleFlow, flatten_latents, unflatten_latents
from glow_tf.nn.conv import LinearZeros
from glow_tf.objectives import bits_per_dim, classification_bits, standard_normal_log_prob
from glow_tf.prior import TopPriorLayer, check_temperature

__all__ = ["GlowModel", "Encoding"]

_NETWORK_POLICIES = {"float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


class Encoding(NamedTuple):
    """What `GlowModel.encode` returns.

    Attributes:
      latents: per-level standardised latents eps [B, h_i, w_i, c_i], the top
        last (OpenAI's `encode` before flattening).
      flat: the same flattened and concatenated, [B, D] (OpenAI's `feps`).
      bits_per_dim: [B], OpenAI's `bits_x` of each image.
    """

    latents: list
    flat: tf.Tensor
    bits_per_dim: tf.Tensor


@keras.saving.register_keras_serializable(package="glow_tf")
class GlowModel(keras.Model):
    """Glow (Kingma & Dhariwal, 2018) on channels-last images, as a Keras model.

    Data flow (encode), with D = H * W * C and n_bins = 2**num_bits:

        uint8 image --quantize--> bins --(/n_bins - 0.5 + u)--> x in [-0.5, 0.5)
        x --MultiScaleFlow--> latents eps (per level, top last), log|det|
        log p(x) = log N(eps; 0, I) + log|det|
        bits/dim = -(log p(x) - D log n_bins) / (D log 2)

    and back (decode): eps * temperature --inverse flow--> x --> uint8.

    Usage:
        model = GlowModel(GlowConfig(image_shape=(8, 8, 1), num_levels=2, ...))
        model.initialize(first_batch)         # data-dependent ActNorm init
        model.compile(keras.optimizers.Adamax(1e-3))
        model.fit(dataset)                    # loss = bits/dim
        images = model.sample(16, temperature=0.7)

    Args:
      config: a `GlowConfig` (or its dict).

    References:
      Kingma & Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    def __init__(self, config: GlowConfig | dict, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = GlowConfig.from_dict(config)
        if not isinstance(config, GlowConfig):
            raise TypeError(f"config must be a GlowConfig or dict, got {type(config).__name__}")
        self.glow_config = config
        step_config = dict(
            coupling=config.coupling,
            permutation=config.permutation,
            lu_decomposed=config.lu_decomposed,
            hidden_channels=config.hidden_channels,
            network_dtype=_NETWORK_POLICIES[config.network_dtype],
        )
        policy = self.dtype_policy
        self.levels = [
            LevelLayer(
                config.num_steps,
                split=i < config.num_levels - 1,
                step_config=step_config,
                seed=config.seed + 10_000 * i,
                dtype=policy,
                name=f"level_{i}",
            )
            for i in range(config.num_levels)
        ]
        self.top_prior = TopPriorLayer(
            config.top_shape, config.learn_top, config.num_classes, dtype=policy, name="top_prior"
        )
        self.classifier = (
            LinearZeros(config.num_classes, dtype=policy, name="classifier")
            if config.weight_y > 0
            else None
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.bits_tracker = keras.metrics.Mean(name="bits_per_dim")
        self.bits_y_tracker = keras.metrics.Mean(name="bits_y") if self.classifier else None
        self.accuracy_tracker = (
            keras.metrics.SparseCategoricalAccuracy(name="accuracy") if self.classifier else None
        )
        self.build((None, *config.image_shape))

    # ----------------------------------------------------------------- build

    def build(self, input_shape=None):
        if self.built:
            return
        for level, shape in zip(self.levels, self.glow_config.level_shapes):
            level.build((None, *shape))
        self.top_prior.build()
        if self.classifier is not None:
            self.classifier.build((None, self.glow_config.top_shape[-1]))
        self.initialized = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="initialized"
        )
        self.built = True

    def get_config(self):
        return {**super().get_config(), "config": self.glow_config.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        glow_config = config.pop("config")
        kwargs = {k: v for k, v in config.items() if k in ("name", "trainable", "dtype")}
        return cls(glow_config, **kwargs)

    # ------------------------------------------------------------ bijectors

    def flow(self, y=None, include_top: bool = True) -> MultiScaleFlow:
        """The whole flow as a bijector, images [H, W, C] -> latents [D],
        built from the current weights (see `MultiScaleFlow`)."""
        levels = [level.bijector() for level in self.levels]
        splits = [level.split.bijector() for level in self.levels[:-1]]
        top = self.top_prior.bijector(y) if include_top else None
        return MultiScaleFlow(self.glow_config.image_shape, levels, splits, top)

    def distribution(self, y=None, temperature: float = 1.0):
        """A `tfd.TransformedDistribution` over the flow's continuous input."""
        from glow_tf.distribution import glow_distribution

        return glow_distribution(self, y=y, temperature=temperature)

    # --------------------------------------------------------------- inputs

    def _check_y(self, y, batch):
        config = self.glow_config
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

    def flow_input(self, images, noise=None) -> tf.Tensor:
        """uint8-valued images -> the dequantised flow input x in [-0.5, 0.5).

        `noise`: None draws u ~ U[0, 1/n_bins); a tensor of the images' shape
        is used as given (reproducible encodes).
        """
        config = self.glow_config
        images = check_images(images, config.image_shape)
        if noise is None:
            noise = uniform_noise(tf.shape(images), config.num_bits)
        else:
            noise = check_noise(noise, images.shape, config.num_bits)
        return to_flow_input(quantize(images, config.num_bits), config.num_bits, noise)

    # ------------------------------------------------------------ objective

    def _terms(self, x, y):
        """One pass of the flow on the flow input x: latents, log p(x), classifier."""
        flow = self.flow(include_top=False)
        latents, log_det = flow.forward_latents(x)
        z_top = latents[-1]
        eps_top, top_log_det = self.top_prior.bijector(y).forward_and_log_det(z_top)
        latents = latents[:-1] + [eps_top]
        log_prob = log_det + top_log_det
        log_prob += sum(standard_normal_log_prob(eps) for eps in latents)
        config = self.glow_config
        bits_x = bits_per_dim(log_prob, config.num_dims, config.num_bins)
        terms = {"latents": latents, "log_prob": log_prob, "bits_x": bits_x, "loss": bits_x}
        if self.classifier is not None:
            logits = self.classifier(tf.reduce_mean(z_top, axis=[1, 2]))
            bits_y = classification_bits(logits, y)
            terms.update(logits=logits, bits_y=bits_y, loss=bits_x + config.weight_y * bits_y)
        return terms

    def _images_terms(self, images, y=None, noise=None):
        x = self.flow_input(images, noise)
        y = self._check_y(y, tf.shape(x)[0])
        return self._compiled(self._terms)(x, y)

    def _decode_latents(self, latents, y, temperature):
        latents = [eps * temperature for eps in latents]
        return self.flow(y).inverse_latents(latents)[0]

    def _compiled(self, method):
        """`method` as a cached tf.function when called eagerly, else `method`.

        Eager calls of encode / decode / sample then run one graph (no Python
        per op); calls inside someone else's tf.function (fit, export) trace
        inline, and data-dependent init stays eager.
        """
        if not tf.executing_eagerly() or data_dependent_init_active():
            return method
        cache = self.__dict__.setdefault("_compiled_methods", {})
        if method.__name__ not in cache:
            cache[method.__name__] = tf.function(method, reduce_retracing=True)
        return cache[method.__name__]

    # ---------------------------------------------------------- public API

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
            raise RuntimeError("GlowModel.initialize must be called eagerly, not in a tf.function")
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
        config = self.glow_config
        if isinstance(latents, (list, tuple)):
            latents = [tf.convert_to_tensor(eps, tf.float32) for eps in latents]
            shapes = [tuple(eps.shape[1:]) for eps in latents]
            if shapes != [tuple(s) for s in config.eps_shapes]:
                raise ValueError(f"expected latents of shapes {config.eps_shapes}, got {shapes}")
        else:
            flat = tf.convert_to_tensor(latents)
            if flat.dtype != tf.float32:
                raise TypeError(f"latents must be float32, got {flat.dtype.name}")
            if flat.shape.rank != 2 or flat.shape[1] != config.num_dims:
                raise ValueError(
                    f"flat latents must have shape [batch, {config.num_dims}], got {flat.shape}"
                )
            latents = unflatten_latents(flat, config.eps_shapes)
        temperature = check_temperature(temperature)
        y = self._check_y(y, tf.shape(latents[0])[0])
        x = self._compiled(self._decode_latents)(latents, y, temperature)
        return postprocess(x, config.num_bits) if as_uint8 else x

    def sample(self, n: int, temperature: float = 1.0, seed=None, y=None, as_uint8: bool = True):
        """n images drawn at `temperature` (eps ~ N(0, T^2)); `seed` (int or
        two ints) makes the draw reproducible."""
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        shape = [int(n), self.glow_config.num_dims]
        if seed is None:
            eps = tf.random.normal(shape)
        else:
            eps = tf.random.stateless_normal(shape, seed=_two_int_seed(seed))
        return self.decode(eps, y=y, temperature=temperature, as_uint8=as_uint8)

    def log_prob(self, x, y=None, noise=None) -> tf.Tensor:
        """log p of each discrete image in nats, one dequantisation sample:

            log p(x + u) - D log n_bins  (a stochastic lower bound of log P(x))
        """
        config = self.glow_config
        terms = self._images_terms(x, y, noise)
        return terms["log_prob"] - config.num_dims * math.log(config.num_bins)

    def bits_per_dim(self, x, y=None, noise=None) -> tf.Tensor:
        """OpenAI's `bits_x` of each image, [B]."""
        return self._images_terms(x, y, noise)["bits_x"]

    # ---------------------------------------------------------------- Keras

    def call(self, inputs, training=False):
        """Per-image bits/dim of `images` or `(images, labels)`."""
        images, y = self._unpack(inputs)
        return self._images_terms(images, y)["bits_x"]

    def _unpack(self, data):
        if isinstance(data, dict):
            images = data.get("image", data.get("images"))
            y = data.get("label", data.get("labels"))
            if images is None:
                raise ValueError(f"a dict batch needs an 'image' key, got keys {sorted(data)}")
        elif isinstance(data, (tuple, list)):
            if not 1 <= len(data) <= 3:
                raise ValueError(
                    f"expected images or (images, labels), got a tuple of {len(data)}"
                )
            images, y = data[0], (data[1] if len(data) > 1 else None)
        else:
            images, y = data, None
        return images, y

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.bits_tracker, self.bits_y_tracker, self.accuracy_tracker]
        return [t for t in trackers if t is not None]

    def _update_metrics(self, terms, y):
        self.loss_tracker.update_state(terms["loss"])
        self.bits_tracker.update_state(terms["bits_x"])
        if self.classifier is not None:
            self.bits_y_tracker.update_state(terms["bits_y"])
            self.accuracy_tracker.update_state(y, terms["logits"])
        return _per_replica_logs({m.name: m.result() for m in self.metrics})

    def compile(self, optimizer="adamax", *args, gradient_clip_norm: float | None = None, **kwargs):
        """Keras `compile`, plus `gradient_clip_norm`: rescale each update's
        gradient g (of the mean loss over the global batch, all replicas) to

            g * min(1, gradient_clip_norm / ||g||)     (global norm over all weights)

        Unlike the optimizer's own `global_clipnorm`, which under a
        distribution strategy clips each replica's partial gradient, this
        clips the gradient that is actually applied.
        """
        if gradient_clip_norm is not None and not gradient_clip_norm > 0:
            raise ValueError(f"gradient_clip_norm must be > 0, got {gradient_clip_norm}")
        self.gradient_clip_norm = gradient_clip_norm
        super().compile(optimizer, *args, **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and getattr(self, "gradient_clip_norm", None):
            config = {**config, "gradient_clip_norm": self.gradient_clip_norm}
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras builds models lazily from a peeked data batch, which under a
        # strategy it first averages over replicas with strategy.reduce("MEAN").
        # Under MultiWorkerMirroredStrategy that is a collective on the uint8
        # images, which has no uint8 kernel (InvalidArgumentError). A GlowModel
        # is built from its config in __init__, so unless compile() added
        # losses or metrics that need building, only the optimizer is left.
        if self._compile_metrics is not None or self._compile_loss is not None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def train_step(self, data):
        images, y = self._unpack(data)
        with tf.GradientTape() as tape:
            terms = self._images_terms(images, y)
            loss = tf.reduce_mean(terms["loss"])
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(loss / replicas)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        if getattr(self, "gradient_clip_norm", None):
            gradients = _clip_global_gradient(gradients, self.gradient_clip_norm, self.optimizer)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_metrics(terms, y)

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


def _per_replica_logs(logs: dict) -> dict:
    """The step's scalar logs in the shape Keras can reduce over replicas.

    Keras (3.12 to 3.15 at least) averages the logs of `train_step` /
    `test_step` over the replicas of a multi-worker MultiWorkerMirroredStrategy
    with `strategy.reduce("MEAN", value, axis=0)`, which needs an axis 0 and
    fails on the scalars every metric returns ("Invalid reduction dimension 0
    for input with 0 dimensions", tensorflow/tensorflow#72388). There, each
    value gets a leading axis of length 1, so that reduction averages the
    replicas' values into the scalar Keras expects; elsewhere (one device,
    MirroredStrategy, single-worker runs) the logs stay scalars.
    """
    strategy = tf.distribute.get_strategy()
    in_multi_worker_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and in_multi_worker_mode():
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def _clip_global_gradient(gradients, clip_norm: float, optimizer):
    """Scales this replica's gradients by min(1, clip_norm / ||g||), where g
    is the sum of all replicas' gradients (the one the optimizer applies) and
    ||g|| is measured without the optimizer's loss scale (float16 training)."""
    context = tf.distribute.get_replica_context()
    total = gradients
    if context is not None and context.num_replicas_in_sync > 1:
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
    loss_scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), tf.float32)
    norm = tf.linalg.global_norm(total) / loss_scale
    factor = tf.minimum(1.0, clip_norm / tf.maximum(norm, 1e-12))
    return [None if g is None else g * tf.cast(factor, g.dtype) for g in gradients]


def _two_int_seed(seed) -> tf.Tensor:
    seed = np.asarray(seed, dtype=np.int64).reshape(-1)
    if seed.size == 1:
        seed = np.array([0, seed[0]], dtype=np.int64)
    if seed.size != 2:
        raise ValueError(f"seed must be an int or two ints, got {seed}")
    return tf.constant(seed)
