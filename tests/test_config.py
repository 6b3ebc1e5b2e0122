"""GlowConfig: validation with clear messages, the latent shapes it gives, round trip."""

import dataclasses
import math
import pathlib

import pytest

from glow_tf import GlowConfig, GlowModel
from glow_tf.config import LIMITS, estimated_num_weights

REFERENCE_DIR = pathlib.Path(__file__).parent / "fixtures" / "openai_reference"


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


# ------------------------------------------------------------- upper bounds

OPENAI_RUNS = {
    "cifar10": dict(image_shape=(32, 32, 3), num_levels=3, num_steps=32),
    "imagenet64": dict(image_shape=(64, 64, 3), num_levels=4, num_steps=48),
    "lsun64": dict(image_shape=(64, 64, 3), num_levels=3, num_steps=48),
    "celeba_hq_256": dict(
        image_shape=(256, 256, 3), num_levels=6, num_steps=32, coupling="additive", num_bits=5
    ),
}


@pytest.mark.parametrize("name", sorted(OPENAI_RUNS))
def test_every_openai_run_is_well_within_the_limits(name):
    config = GlowConfig(hidden_channels=512, num_classes=1000, **OPENAI_RUNS[name])
    assert estimated_num_weights(config) * 5 < LIMITS["num_weights"]
    assert config.num_steps * 5 <= LIMITS["num_steps"] and 512 * 16 == LIMITS["hidden_channels"]


def test_weight_estimate_matches_the_official_celeba_hq_model():
    listing = REFERENCE_DIR / "varnames_celebahq_L6_K32_W512_full.txt"
    official = 0
    for line in listing.read_text().splitlines():
        if not line.startswith("model/"):
            continue
        shape = line[line.index("[") + 1 : line.index("]")]
        official += math.prod(int(s) for s in shape.split(","))
    assert official == 175_099_620  # the listing's own total
    estimate = estimated_num_weights(GlowConfig(**OPENAI_RUNS["celeba_hq_256"]))
    assert abs(estimate - official) < 0.01 * official


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(image_shape=(8192, 8192, 3), num_levels=2), "image height = 8192 is above the limit"),
        (dict(image_shape=(16, 16, 64), num_levels=2), "image channels = 64 is above the limit"),
        (dict(num_levels=10**9), "num_levels = 1000000000 is above the limit of 10"),
        (dict(num_steps=100_000), "num_steps = 100000 is above the limit of 256"),
        (dict(hidden_channels=10**6), "hidden_channels = 1000000 is above the limit of 8192"),
        (dict(num_classes=10**9), "num_classes = 1000000000 is above the limit"),
        (
            dict(image_shape=(1024, 1024, 3), num_levels=8, num_steps=256, hidden_channels=8192),
            r"about \d\.\d+e\+\d+ weights, above the limit of 1e\+09",
        ),
    ],
)
def test_configs_above_the_limits_are_refused_before_any_allocation(changes, message):
    with pytest.raises(ValueError, match=message):
        GlowConfig(**{"image_shape": (16, 16, 3), "num_levels": 2, **changes})


def test_network_dtype_is_the_one_precision_name():
    from glow_tf.config import NETWORK_DTYPES

    policies = {dtype: GlowConfig(network_dtype=dtype).network_policy for dtype in NETWORK_DTYPES}
    assert policies == {"float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def test_replace_validates():
    config = GlowConfig(image_shape=(16, 16, 3), num_levels=2)
    assert config.replace(num_steps=4).num_steps == 4
    with pytest.raises(ValueError, match="unknown coupling"):
        config.replace(coupling="affine2")
