"""Presets are frozen (GlowConfig, TrainingConfig) pairs with OpenAI's values."""

import dataclasses

import pytest

from glow_tf import GlowConfig
from glow_tf.presets import PRESETS, Preset, get_preset
from glow_tf.training.config import TrainingConfig
from glow_tf.training.optimizers import OPTIMIZERS

# name: dataset, image size, L, K, width, coupling, bits, batch, classes (docs/training.md)
DOCUMENTED = {
    "digits": ("digits", 8, 2, 16, 64, "affine", 5, 64, 0),
    "digits_conditional": ("digits", 8, 2, 16, 64, "affine", 5, 64, 10),
    "cifar10": ("cifar10", 32, 3, 32, 512, "affine", 8, 512, 0),
    "cifar10_conditional": ("cifar10", 32, 3, 32, 512, "additive", 5, 512, 10),
    "imagenet32": ("imagenet_resized/32x32", 32, 3, 48, 512, "affine", 8, 512, 0),
    "imagenet64": ("imagenet_resized/64x64", 64, 4, 48, 512, "affine", 8, 128, 0),
    "lsun64": ("lsun/bedroom", 64, 3, 48, 512, "affine", 8, 128, 0),
    "celeba_hq_256": (
        "tfrecord:celeba-tfr/{split}/*-r08-*.tfrecords",
        256,
        6,
        32,
        512,
        "additive",
        5,
        40,
        0,
    ),
}


def test_presets_are_instances_with_the_documented_values():
    assert {n for n, p in PRESETS.items() if isinstance(p.model, GlowConfig)} == set(DOCUMENTED)
    for name, expected in DOCUMENTED.items():
        preset = get_preset(name)
        assert isinstance(preset, Preset)
        assert isinstance(preset.model, GlowConfig)
        assert isinstance(preset.training, TrainingConfig)
        model, training = preset.model, preset.training
        assert (
            training.dataset,
            model.image_shape[0],
            model.num_levels,
            model.num_steps,
            model.hidden_channels,
            model.coupling,
            model.num_bits,
            training.batch_size,
            model.num_classes,
        ) == expected, name
        assert model.weight_y == (0.01 if model.num_classes else 0.0)


def test_openai_recipe_details():
    digits = get_preset("digits").training
    assert (digits.lr, digits.warmup, digits.warmup_unit, digits.epochs) == (2e-3, 5, "epochs", 30)
    assert (digits.init_batch_size, digits.test_batch_size, digits.sample_every) == (512, 300, 10)
    cifar = get_preset("cifar10").training
    # OpenAI: 10 warm-up epochs of n_train = 50,000 images
    assert (cifar.warmup, cifar.warmup_unit) == (10 * 50_000 // 512, "steps")
    assert (cifar.lr, cifar.epochs, cifar.test_batch_size, cifar.sample_every) == (
        1e-3,
        1000,
        50,
        50,
    )
    expected = "openai_adamax" if "openai_adamax" in OPTIMIZERS else "adamax"
    assert all(
        PRESETS[name].training.optimizer == expected for name in DOCUMENTED if "digits" not in name
    )
    assert get_preset("celeba_hq_256").training.init_batch_size == 40


def test_presets_are_frozen_and_unknown_names_refused():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_preset("digits").model = GlowConfig()
    with pytest.raises(ValueError, match="unknown preset 'cifar100'"):
        get_preset("cifar100")
    with pytest.raises(TypeError, match="model must be a GlowConfig"):
        Preset({"num_levels": 2}, TrainingConfig())


def test_realnvp_presets():
    from glow_tf.config import RealNVPConfig

    sizes = {
        "realnvp_digits": (8, 2, 16, 2),
        "realnvp_cifar10": (32, 2, 64, 8),  # paper, section 4.1
        "realnvp_imagenet64": (64, 5, 32, 4),  # official README hpconfig
        "realnvp_celeba64": (64, 5, 32, 4),
    }
    for name, (size, scales, width, blocks) in sizes.items():
        model = get_preset(name).model
        assert isinstance(model, RealNVPConfig)
        assert (model.image_shape[0], model.num_levels, model.hidden_channels, model.num_blocks) == (
            size, scales, width, blocks
        )
        assert get_preset(name).training.optimizer == "adam"
