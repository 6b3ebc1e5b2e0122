"""GlowConfig: validation with clear messages, derived shapes, round trip."""

import dataclasses

import pytest

from glow_tf import GlowConfig


def test_shapes_follow_openai_multiscale_layout():
    config = GlowConfig(image_shape=(16, 16, 3), num_levels=2)
    assert config.level_shapes == [(8, 8, 12), (4, 4, 24)]
    assert config.eps_shapes == [(8, 8, 6), (4, 4, 24)]
    assert config.num_dims == 768 == sum(h * w * c for h, w, c in config.eps_shapes)
    celeba = GlowConfig(image_shape=(256, 256, 3), num_levels=6)
    assert celeba.eps_shapes[-1] == (4, 4, 384)


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


def test_network_dtype_is_the_one_precision_name():
    from glow_tf.config import NETWORK_DTYPES

    policies = {dtype: GlowConfig(network_dtype=dtype).network_policy for dtype in NETWORK_DTYPES}
    assert policies == {"float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def test_replace_validates():
    config = GlowConfig(image_shape=(16, 16, 3), num_levels=2)
    assert config.replace(num_steps=4).num_steps == 4
    with pytest.raises(ValueError, match="unknown coupling"):
        config.replace(coupling="affine2")
