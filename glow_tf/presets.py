"""Training recipes as data: the built-in digits runs and OpenAI's README runs.

Each preset gives a dataset, the `GlowConfig` fields and the training
settings; `train_keras.py --preset NAME` starts from it and every field can be
overridden on the command line (`--num-steps 8`, `--batch-size 32`, ...).

OpenAI ran its recipes with `mpiexec -n 8` (40 for CelebA-HQ) and
`n_batch_train` images per process; `batch_size` here is the global batch of
those runs (8 x 64 = 512 at 32x32; OpenAI scales the per-process batch by
(32 / image_size)^2, so 1 image per process at 256x256, 40 in all). On fewer
devices pass a smaller `--batch-size`. OpenAI's "epoch" is `n_train` = 50,000
images whatever the dataset, so its 10 warm-up epochs are
10 * 50,000 / batch_size updates; `warmup_steps` states that directly.

Source: https://github.com/openai/glow (README.md, train.py defaults).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PRESETS", "get_preset", "CONFIG_FIELDS", "TRAINING_FIELDS"]

CONFIG_FIELDS = (
    "num_levels",
    "num_steps",
    "hidden_channels",
    "coupling",
    "permutation",
    "lu_decomposed",
    "num_bits",
    "learn_top",
    "conditional",
    "weight_y",
    "seed",
)
TRAINING_FIELDS = (
    "dataset",
    "image_size",
    "epochs",
    "batch_size",
    "test_batch_size",
    "init_batch_size",
    "optimizer",
    "lr",
    "warmup_epochs",
    "warmup_steps",
    "beta1",
    "beta2",
    "clip_norm",
    "ema_decay",
    "sample_every",
)

_TRAINING_DEFAULTS = dict(
    test_batch_size=None,
    init_batch_size=256,
    optimizer="adamax",
    lr=1e-3,
    warmup_epochs=None,
    warmup_steps=None,
    beta1=0.9,
    beta2=0.999,
    clip_norm=None,
    ema_decay=None,
    sample_every=1,
)
_OPENAI_MODEL = dict(
    hidden_channels=512,
    permutation="conv1x1",
    lu_decomposed=False,
    learn_top=True,
    conditional=False,
    weight_y=0.0,
    seed=0,
)


def _openai(dataset, image_size, num_levels, num_steps, coupling, num_bits, batch_size, **changes):
    preset = dict(
        _TRAINING_DEFAULTS,
        **_OPENAI_MODEL,
        dataset=dataset,
        image_size=image_size,
        num_levels=num_levels,
        num_steps=num_steps,
        coupling=coupling,
        num_bits=num_bits,
        batch_size=batch_size,
        epochs=1000,
        test_batch_size=50,
        warmup_steps=10 * 50_000 // batch_size,
        sample_every=50,
    )
    preset.update(changes)
    return preset


PRESETS: dict[str, dict[str, Any]] = {
    # The built-in default: about 5 minutes on 2 CPU cores.
    "digits": dict(
        _TRAINING_DEFAULTS,
        dataset="digits",
        image_size=None,
        num_levels=2,
        num_steps=16,
        hidden_channels=64,
        coupling="affine",
        permutation="conv1x1",
        lu_decomposed=False,
        num_bits=5,
        learn_top=True,
        conditional=False,
        weight_y=0.0,
        seed=0,
        epochs=30,
        batch_size=64,
        test_batch_size=300,
        init_batch_size=512,
        lr=2e-3,
        warmup_epochs=5,
        sample_every=10,
    ),
    # OpenAI README "CIFAR-10 Quantitative result" (3.35 bits/dim in the paper).
    "cifar10": _openai("cifar10", 32, 3, 32, "affine", 8, 512),
    # OpenAI README "Conditional CIFAR-10 Qualitative result".
    "cifar10_conditional": _openai(
        "cifar10", 32, 3, 32, "additive", 5, 512, conditional=True, weight_y=0.01
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
PRESETS["digits_conditional"] = dict(PRESETS["digits"], conditional=True, weight_y=0.01)


def get_preset(name: str) -> dict[str, Any]:
    """A copy of preset `name` (see `PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
