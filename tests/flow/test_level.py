"""Level (squeeze, steps, split as one unit), the multi-scale loop over levels,
and reading intermediates from that one loop."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import GlowConfig, GlowModel
from glow_tf.flow import Level, MultiScaleFlow, Squeeze, recording_intermediates
from glow_tf.flow.act_norm import ActNorm
from glow_tf.flow.level import factor_shapes
from glow_tf.models import glow_level
from tests.conftest import TINY, tiny_images


def test_factor_shapes_take_the_last_channels():
    assert factor_shapes((4, 4, 8), 0.5) == ((4, 4, 4), (4, 4, 4))
    assert factor_shapes((4, 4, 8), 0.75) == ((4, 4, 2), (4, 4, 6))
    assert factor_shapes((4, 4, 8), 0.0) == ((4, 4, 8), (4, 4, 0))
    with pytest.raises(ValueError, match="cannot factor out"):
        factor_shapes((4, 4, 6), 0.25)


def test_level_squeezes_steps_then_factors_and_merges_back():
    actnorm = ActNorm(tf.constant([0.1, -0.2, 0.3, 0.0]), tf.constant([0.5, 0.1, -0.3, 0.2]))
    level = Level([actnorm], squeeze=Squeeze(), factor_out=0.5)
    assert level.output_shapes((4, 4, 1)) == ((2, 2, 2), (2, 2, 2))
    x = tf.random.stateless_normal([3, 4, 4, 1], seed=[0, 1])
    y, log_det = level.forward_and_log_det(x)
    kept, latent = level.factor(y)
    assert kept.shape == [3, 2, 2, 2] and latent.shape == [3, 2, 2, 2]
    back, inverse_log_det = level.inverse_and_log_det(level.merge(kept, latent))
    np.testing.assert_allclose(back, x, atol=1e-6)
    np.testing.assert_allclose(inverse_log_det, -log_det, atol=1e-6)
    with pytest.raises(ValueError, match="factor_out"):
        Level([actnorm], factor_out=1.0)


def test_layer_shapes_without_weights_equal_the_built_bijectors():
    config = GlowConfig(image_shape=(16, 16, 3), num_levels=3, num_steps=1, hidden_channels=4)
    unbuilt = GlowModel.make_levels(config)
    assert not any(level.built for level in unbuilt)
    model = GlowModel(config)
    assert GlowModel.latent_shapes_for(config) == model.flow().latent_shapes
    assert list(model.latent_shapes) == [(8, 8, 6), (4, 4, 12), (2, 2, 48)]


def test_multiscale_flow_checks_where_latents_leave():
    config = GlowConfig(image_shape=(4, 4, 1), num_levels=2, num_steps=1, hidden_channels=4)
    first, top = (level.bijector() for level in GlowModel(config).levels)
    with pytest.raises(ValueError, match="must not factor out"):
        MultiScaleFlow((4, 4, 1), [first, first])
    with pytest.raises(ValueError, match="factors out nothing"):
        MultiScaleFlow((4, 4, 1), [top, top])
    with pytest.raises(ValueError, match="expected 2 latents"):
        MultiScaleFlow((4, 4, 1), [first, top]).inverse_latents([tf.zeros([1, 1, 1, 8])])


def test_recorded_intermediates_are_the_steps_of_the_one_loop(tiny_model):
    images = tiny_images(3, TINY.image_shape, seed=5)
    noise = np.full(images.shape, 0.5 / TINY.num_bins, np.float32)
    with recording_intermediates() as records:
        encoding = tiny_model.encode(images, noise=noise)
    level, step = tiny_model.levels[0], tiny_model.levels[0].steps[1]
    step_input = records[f"level_0/{tiny_model.levels[0].steps[0].name}"]
    expected, expected_log_det = step.bijector().forward_and_log_det(step_input)
    np.testing.assert_allclose(records[f"level_0/{step.name}"], expected, atol=1e-6)
    np.testing.assert_allclose(records[f"level_0/{step.name}:log_det"], expected_log_det, atol=1e-4)
    assert records[f"level_0/{step.name}/coupling/network"].shape[-1] == expected.shape[-1]
    np.testing.assert_allclose(records["top_prior"], encoding.latents[-1], atol=1e-6)
    assert level.split is not None and f"level_0/{level.split.name}" in records
    with recording_intermediates() as empty:
        pass
    assert empty == {}
    tiny_model.encode(images, noise=noise)  # outside the context nothing is recorded
    assert empty == {}


def test_glow_level_is_squeeze_steps_split():
    config = TINY.replace(num_steps=3)
    level = glow_level(config, 0, seed=0)
    assert [m.name for m in level.members] == ["squeeze", "step_0", "step_1", "step_2", "split"]
    top = glow_level(config, config.num_levels - 1, seed=0)
    assert top.split is None and top.factor_out == 0.0
