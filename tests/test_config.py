"""GlowConfig: validation with clear messages, the latent shapes it gives, round trip."""

import dataclasses

import pytest

from glow_tf import GlowConfig, GlowModel


def test_shapes_follow_openai_multiscale_layout():
    config = GlowConfig(image_shape=(16, 16, 3), num_levels=2)
    shapes = GlowModel.latent_shapes_for(config)
    assert shapes == [(8, 8, 6), (4, 4, 24)]
    assert config.num_dims == 768 == sum(h * w * c for h, w, c in shapes)
    celeba = GlowConfig(image_shape=(256, 256, 3), num_levels=6)
    assert GlowModel.latent_shapes_for(celeba)[-1] == (4, 4, 384)


def test_dict_round_trip():
    config = GlowConfig(image_shape=(8, 8, 1), num_levels=2, num_classes=10, weight_y=0.01)
    assert GlowConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(image_shape=(12, 12, 3), num_levels=3), "not divisible by 2\\*\\*num_levels"),
        (dict(image_shape=(8, 8)), "three positive ints"),
        (dict(coupling="affine2"), "unknown coupling"),
        (dict(permutation="random"), "unknown permutation"),
        (dict(num_bits=0), "num_bits must be an int in 1..8"),
        (dict(num_bits=9), "num_bits must be an int in 1..8"),
        (dict(num_levels=0), "num_levels must be a positive int"),
        (dict(hidden_channels=2.5), "hidden_channels must be a positive int"),
        (dict(weight_y=0.1), "needs a class-conditional model"),
        (dict(permutation="shuffle", lu_decomposed=True), "lu_decomposed=True needs"),
        (dict(network_dtype="int8"), "unknown network_dtype"),
    ],
)
def test_invalid_configs_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        GlowConfig(**{"image_shape": (16, 16, 3), "num_levels": 2, **changes})


def test_unknown_field_is_rejected():
    with pytest.raises(ValueError, match="unknown GlowConfig fields"):
        GlowConfig.from_dict({"image_shape": [8, 8, 1], "depth": 3})


def test_frozen():
    config = GlowConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.num_levels = 2
