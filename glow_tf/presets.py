"""Training recipes as data: the built-in digits runs and OpenAI's README runs.

A preset is a frozen `Preset`: a `GlowConfig` (the model) and a
`TrainingConfig` (data and optimisation). `train_keras.py --preset NAME`
starts from it and every field can be overridden on the command line
(`--num-steps 8`, `--batch-size 32`, ...), which amounts to
`preset.model.replace(...)` and `preset.training.replace(...)`. The model's
image shape and number of classes are those of the preset's dataset; a run
replaces them with the shape and classes of the data it loads
(`glow_tf.training.run.model_config_for_source`).

    from glow_tf.presets import get_preset
    preset = get_preset("cifar10")
    model = GlowModel(preset.model.replace(num_steps=8))

OpenAI ran its recipes with `mpiexec -n 8` (40 for CelebA-HQ) and
`n_batch_train` images per process; `batch_size` here is the global batch of
those runs (8 x 64 = 512 at 32x32; OpenAI scales the per-process batch by
(32 / image_size)^2, so 1 image per process at 256x256, 40 in all). On fewer
devices pass a smaller `--batch-size`. OpenAI's "epoch" is `n_train` = 50,000
images whatever the dataset, so its 10 warm-up epochs are
10 * 50,000 / batch_size updates (`warmup_unit="steps"`).

Source: https://github.com/openai/glow (README.md, train.py defaults).
"""

from __future__ import annotations

import dataclasses

import math

from glow_tf.config import FrozenConfig, GlowConfig, RealNVPConfig
from glow_tf.training.config import TrainingConfig
from glow_tf.training.optimizers import OPTIMIZERS

__all__ = ["Preset", "PRESETS", "get_preset"]

# OpenAI's Adamax variant, once glow_tf.training.optimizers provides it.
_OPENAI_OPTIMIZER = "openai_adamax" if "openai_adamax" in OPTIMIZERS else "adamax"


@dataclasses.dataclass(frozen=True)
class Preset(FrozenConfig):
    """A training recipe: the model and the training settings.

    Attributes:
      model: the `GlowConfig`, on the image shape (and classes) of
        `training.dataset`.
      training: the `TrainingConfig`.
    """

    model: GlowConfig | RealNVPConfig
    training: TrainingConfig

    def __post_init__(self):
        if not isinstance(self.model, (GlowConfig, RealNVPConfig)):
            raise TypeError(
                f"model must be a GlowConfig or RealNVPConfig, got {type(self.model).__name__}"
            )
        if not isinstance(self.training, TrainingConfig):
            raise TypeError(
                f"training must be a TrainingConfig, got {type(self.training).__name__}"
            )


def _openai(dataset, size, num_levels, num_steps, coupling, num_bits, batch_size, **changes):
    model = GlowConfig(
        image_shape=(size, size, 3),
        num_levels=num_levels,
        num_steps=num_steps,
        hidden_channels=512,
        coupling=coupling,
        num_bits=num_bits,
        num_classes=changes.pop("num_classes", 0),
        weight_y=changes.pop("weight_y", 0.0),
    )
    training = TrainingConfig(
        dataset=dataset,
        image_size=size,
        epochs=1000,
        batch_size=batch_size,
        test_batch_size=50,
        optimizer=_OPENAI_OPTIMIZER,
        lr=1e-3,
        warmup=10 * 50_000 // batch_size,
        warmup_unit="steps",
        sample_every=50,
        **changes,
    )
    return Preset(model, training)


_DIGITS = Preset(
    # The built-in default: about 3 minutes on 2 CPU cores.
    GlowConfig(image_shape=(8, 8, 1), num_levels=2, num_steps=16, hidden_channels=64, num_bits=5),
    TrainingConfig(
        dataset="digits",
        epochs=30,
        batch_size=64,
        test_batch_size=300,
        init_batch_size=512,
        optimizer="adamax",
        lr=2e-3,
        warmup=5,
        warmup_unit="epochs",
        sample_every=10,
    ),
)

PRESETS: dict[str, Preset] = {
    "digits": _DIGITS,
    "digits_conditional": _DIGITS.replace(
        model=_DIGITS.model.replace(num_classes=10, weight_y=0.01)
    ),
    # OpenAI README "CIFAR-10 Quantitative result" (3.35 bits/dim in the paper).
    "cifar10": _openai("cifar10", 32, 3, 32, "affine", 8, 512),
    # OpenAI README "Conditional CIFAR-10 Qualitative result".
    "cifar10_conditional": _openai(
        "cifar10", 32, 3, 32, "additive", 5, 512, num_classes=10, weight_y=0.01
    ),
    # OpenAI README "ImageNet 32x32 Quantitative result" (4.09 bits/dim).
    "imagenet32": _openai("imagenet_resized/32x32", 32, 3, 48, "affine", 8, 512),
    # OpenAI README "ImageNet 64x64 Quantitative result" (3.81 bits/dim).
    "imagenet64": _openai("imagenet_resized/64x64", 64, 4, 48, "affine", 8, 128),
    # OpenAI README "LSUN 64x64 Quantitative result" (bedroom/church_outdoor/tower:
    # pick the category with --dataset lsun/<category>).
    "lsun64": _openai("lsun/bedroom", 64, 3, 48, "affine", 8, 128),
    # OpenAI README "CelebA-HQ 256x256 Qualitative result": 5 bits, additive.
    # OpenAI's TFRecords: --dataset 'tfrecord:/data/celeba-tfr/{split}/*-r08-*.tfrecords'.
    "celeba_hq_256": _openai(
        "tfrecord:celeba-tfr/{split}/*-r08-*.tfrecords",
        256,
        6,
        32,
        "additive",
        5,
        40,
        init_batch_size=40,
    ),
}


def _official_realnvp_clip(image_shape) -> float:
    # The official code clips the gradient of the loss in nats to global norm
    # 100 (clip_gradient); glow_tf's loss is in bits/dim, D log 2 times smaller.
    return 100.0 / (math.prod(image_shape) * math.log(2.0))


def _realnvp(dataset, size, num_levels, hidden_channels, num_blocks, batch_size, **changes):
    model = RealNVPConfig(
        image_shape=(size, size, 3),
        num_levels=num_levels,
        hidden_channels=hidden_channels,
        num_blocks=num_blocks,
    )
    training = TrainingConfig(
        dataset=dataset,
        image_size=size,
        epochs=changes.pop("epochs", 100),
        batch_size=batch_size,
        test_batch_size=100,  # the official evaluate() batch
        optimizer="adam",  # official: Adam, lr 1e-3, beta1 0.9, beta2 0.999
        lr=1e-3,
        beta1=0.9,
        beta2=0.999,
        clip_norm=_official_realnvp_clip(model.image_shape),
        sample_every=5,
        **changes,
    )
    return Preset(model, training)


PRESETS.update(
    {
        # RealNVP on the built-in 8x8 digits: a few minutes on 2 CPU cores.
        "realnvp_digits": Preset(
            RealNVPConfig(
                image_shape=(8, 8, 1), num_levels=2, hidden_channels=16, num_blocks=2, num_bits=5
            ),
            TrainingConfig(
                dataset="digits",
                epochs=20,
                batch_size=64,
                test_batch_size=300,
                init_batch_size=64,
                optimizer="adam",
                lr=1e-3,
                clip_norm=_official_realnvp_clip((8, 8, 1)),
                sample_every=10,
            ),
        ),
        # Paper (Dinh et al. 2017, section 4.1): CIFAR-10 "8 residual blocks, 64
        # feature maps, and downscale only once" (2 scales); batch 64 (paper).
        "realnvp_cifar10": _realnvp("cifar10", 32, 2, 64, 8, 64),
        # Official README (research/real_nvp): imnet 64x64 with
        # --hpconfig=n_scale=5,base_dim=32,clip_gradient=100,residual_blocks=4;
        # batch 64 (the official default batch_size).
        "realnvp_imagenet64": _realnvp("imagenet_resized/64x64", 64, 5, 32, 4, 64),
        # Official README: CelebA 64x64 uses the same hpconfig as imnet 64x64.
        "realnvp_celeba64": _realnvp("celeb_a", 64, 5, 32, 4, 64),
    }
)


def get_preset(name: str) -> Preset:
    """Preset `name` (see `PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]
