"""GlowModel: Glow's levels and top prior on the shared `FlowModel`."""

from __future__ import annotations

import keras
import tensorflow as tf

from glow_tf.config import GlowConfig
from glow_tf.flow.level import LevelLayer
from glow_tf.flow.split import SplitLayer
from glow_tf.flow.squeeze import SqueezeLayer
from glow_tf.flow.step import FlowStepLayer
from glow_tf.models.flow_model import FlowModel
from glow_tf.nn.conv import LinearZeros
from glow_tf.objectives import classification_bits
from glow_tf.prior import TopPriorLayer
from glow_tf.seeds import seed_stream

__all__ = ["GlowModel", "glow_level"]

def glow_level(config: GlowConfig, index: int, seed: int | None, dtype=None) -> LevelLayer:
    """Level `index` of a Glow: squeeze, K steps of flow (ActNorm, permutation,
    coupling), and, unless it is the top level, a split whose learned prior
    standardises the second half of the channels, which leaves as the latent.
    """
    top = index == config.num_levels - 1
    seeds = seed_stream(seed, "glow_level")
    steps = [
        FlowStepLayer(
            coupling=config.coupling,
            permutation=config.permutation,
            lu_decomposed=config.lu_decomposed,
            hidden_channels=config.hidden_channels,
            network_dtype=config.network_policy,
            seed=seeds(),
            dtype=dtype,
            name=f"step_{j}",
        )
        for j in range(config.num_steps)
    ]
    return LevelLayer(
        steps,
        squeeze=SqueezeLayer(dtype=dtype, name="squeeze"),
        split=None if top else SplitLayer(dtype=dtype, name="split"),
        factor_out=0.0 if top else 0.5,
        loop_steps=config.loop_steps,
        recompute_gradients=config.recompute_gradients,
        dtype=dtype,
        name=f"level_{index}",
    )


@keras.saving.register_keras_serializable(package="glow_tf")
class GlowModel(FlowModel):
    """Glow (Kingma & Dhariwal, 2018) on channels-last images, as a Keras model.

    Levels i = 0 .. L-1 (`glow_level`): squeeze, K x (ActNorm, 1x1 conv or
    channel permutation, coupling), then a split that factors out half of the
    channels under a prior conditioned on the other half; the top latent is
    standardised by a learned (optionally class-conditional) prior
    (`TopPriorLayer`). With `weight_y > 0`, a classifier on the mean of the
    top latent adds `weight_y * bits_y` to the loss (OpenAI's `ycond`).
    Everything else (dequantisation, bits/dim, fit, encode / decode / sample)
    comes from `FlowModel`.

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

    config_class = GlowConfig

    @classmethod
    def make_levels(cls, config: GlowConfig, dtype=None) -> list[LevelLayer]:
        seeds = seed_stream(config.seed, "glow")
        return [glow_level(config, i, seeds(), dtype=dtype) for i in range(config.num_levels)]

    def make_top_prior(self, top_shape):
        config = self.config
        return TopPriorLayer(
            top_shape,
            config.learn_top,
            config.num_classes,
            dtype=self.dtype_policy,
            name="top_prior",
        )

    def make_heads(self, top_shape):
        self.classifier = None
        self.bits_y_tracker = self.accuracy_tracker = None
        if self.config.weight_y > 0:
            self.classifier = LinearZeros(
                self.config.num_classes, dtype=self.dtype_policy, name="classifier"
            )
            self.classifier.build((None, top_shape[-1]))
            self.bits_y_tracker = keras.metrics.Mean(name="bits_y")
            self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def extra_terms(self, terms, top_latent, y) -> dict:
        if self.classifier is None:
            return {}
        logits = self.classifier(tf.reduce_mean(top_latent, axis=[1, 2]))
        bits_y = classification_bits(logits, y)
        return {
            "logits": logits,
            "bits_y": bits_y,
            "loss": terms["loss"] + self.config.weight_y * bits_y,
        }

    def extra_metrics(self) -> list:
        if self.classifier is None:
            return []
        return [self.bits_y_tracker, self.accuracy_tracker]

    def update_extra_metrics(self, terms, y) -> None:
        if self.classifier is not None:
            self.bits_y_tracker.update_state(terms["bits_y"])
            self.accuracy_tracker.update_state(y, terms["logits"])
