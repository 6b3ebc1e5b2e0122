"""The one configuration object of a training run (the model's is `GlowConfig`).

| TrainingConfig         | OpenAI flag          | meaning                                   |
|------------------------|----------------------|-------------------------------------------|
| dataset, image_size    | problem, image_size  | what to train on (glow_tf.data.datasets)  |
| batch_size             | n_batch_train x N    | global batch over all replicas, workers   |
| init_batch_size        | n_batch_init x N     | images of the data-dependent ActNorm init |
| optimizer, lr, beta1/2 | optimizer, lr, beta1 | the update rule and its parameters        |
| warmup, warmup_unit    | epochs_warmup        | linear warm-up, in epochs or steps        |
| ema_decay              | polyak_epochs        | Polyak / EMA weights for evaluation       |
| seed                   | seed                 | order of the data, init batch, its noise  |
| dequantization         | (uniform only)       | "uniform" or "variational" (Flow++)       |
| checkpoint_every_*     |                      | checkpoints within an epoch (resume)      |
| steps_per_execution    |                      | train steps per compiled call (Keras)     |
"""

from __future__ import annotations

import dataclasses

from glow_tf.config import FrozenConfig, _is_int
from glow_tf.data.dequantizers import DEQUANTIZATIONS
from glow_tf.training.distribution import STRATEGIES
from glow_tf.training.optimizers import OPTIMIZERS

__all__ = ["TrainingConfig", "WARMUP_UNITS", "IMAGE_CHANNELS"]

WARMUP_UNITS = ("epochs", "steps")
IMAGE_CHANNELS = (1, 3)

_POSITIVE_INTS = (
    "epochs",
    "batch_size",
    "init_batch_size",
    "sample_every",
    "check_invertibility_every",
    "keep_checkpoints",
    "steps_per_execution",
)
_OPTIONAL_POSITIVE_INTS = (
    "image_size",
    "steps_per_epoch",
    "test_batch_size",
    "test_examples",
    "checkpoint_every_steps",
)
_POSITIVE_FLOATS = ("lr", "invertibility_tolerance")


@dataclasses.dataclass(frozen=True)
class TrainingConfig(FrozenConfig):
    """Frozen, validated settings of a training run (data, optimisation, guards).

    Attributes:
      dataset: dataset spec ("digits", "cifar10", "folder:PATH", "tfrecord:GLOB", ...).
      image_size: square size to crop/resize images to; None: the dataset's own.
      channels: 1 or 3 for folders of images; None: 3.
      epochs: epochs to train (a resumed run continues up to this number).
      steps_per_epoch: updates per epoch; None: training images // batch_size.
      batch_size: global batch size (all replicas).
      test_batch_size: batch size of evaluation; None: batch_size.
      test_examples: evaluate on the first N test images only; None: all.
      init_batch_size: images of the data-dependent ActNorm init batch.
      optimizer: a name of `glow_tf.training.optimizers.OPTIMIZERS`.
      lr: learning rate after warm-up.
      warmup: length of the linear warm-up (from lr / warmup_steps), in
        `warmup_unit`; 0 for none.
      warmup_unit: "epochs" or "steps" (steps must be a whole number).
      beta1, beta2: moment decays in [0, 1) (SGD: momentum = beta1).
      clip_norm: clip the global batch's gradient to this global norm; None: no clipping.
      ema_decay: keep EMA weights with this decay in (0, 1); None: no EMA.
      seed: seed of the data order, the init batch and the dequantisation
        noise (of the init batch and of every training step).
      sample_every: write sample grids and reconstructions every N epochs.
      check_invertibility_every: check decode(encode(x)) == x every N epochs.
      invertibility_tolerance: largest allowed reconstruction error.
      keep_checkpoints: newest resumable checkpoints kept (>= 2 lets a run
        fall back past a damaged newest one).
      checkpoint_every_steps: also checkpoint within an epoch every N
        updates; None: not by steps.
      checkpoint_every_minutes: also checkpoint within an epoch every M
        minutes (so a kill loses at most about M minutes); None: not by time.
      jit: compile the train step with XLA.
      steps_per_execution: training steps per call of the compiled train
        function (Keras `compile(steps_per_execution=...)`): fewer host round
        trips; callbacks, checkpoints within an epoch and the guard's checks
        happen between executions. It must divide the steps per epoch.
      strategy: a `tf.distribute` strategy name of `STRATEGIES`.
      dequantization: the model's dequantizer, a name of `DEQUANTIZATIONS`:
        "uniform" (OpenAI's) or "variational" (a learned q(u | x), Flow++,
        trained jointly; its weights are saved with the model).
    """

    dataset: str = "digits"
    image_size: int | None = None
    channels: int | None = None
    epochs: int = 30
    steps_per_epoch: int | None = None
    batch_size: int = 64
    test_batch_size: int | None = None
    test_examples: int | None = None
    init_batch_size: int = 256
    optimizer: str = "adamax"
    lr: float = 1e-3
    warmup: float = 0
    warmup_unit: str = "steps"
    beta1: float = 0.9
    beta2: float = 0.999
    clip_norm: float | None = None
    ema_decay: float | None = None
    seed: int = 0
    sample_every: int = 1
    check_invertibility_every: int = 1
    invertibility_tolerance: float = 1e-3
    keep_checkpoints: int = 2
    checkpoint_every_steps: int | None = None
    checkpoint_every_minutes: float | None = 10.0
    jit: bool = False
    steps_per_execution: int = 1
    strategy: str = "default"
    dequantization: str = "uniform"

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a non-empty string, got {self.dataset!r}")
        for name in _POSITIVE_INTS + _OPTIONAL_POSITIVE_INTS:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_POSITIVE_INTS:
                continue
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        if self.channels is not None and self.channels not in IMAGE_CHANNELS:
            raise ValueError(
                f"channels must be one of {IMAGE_CHANNELS} or None, got {self.channels!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}; expected one of {sorted(OPTIMIZERS)}"
            )
        if self.dequantization not in DEQUANTIZATIONS:
            raise ValueError(
                f"unknown dequantization {self.dequantization!r}; expected one of "
                f"{DEQUANTIZATIONS}"
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; expected one of {STRATEGIES}")
        for name in _POSITIVE_FLOATS:
            if not _is_number(getattr(self, name)) or not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if self.clip_norm is not None and not (_is_number(self.clip_norm) and self.clip_norm > 0):
            raise ValueError(f"clip_norm must be a positive number or None, got {self.clip_norm!r}")
        for name in ("beta1", "beta2"):
            if not _is_number(getattr(self, name)) or not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)!r}")
        if self.ema_decay is not None and not (
            _is_number(self.ema_decay) and 0 < self.ema_decay < 1
        ):
            raise ValueError(f"ema_decay must lie in (0, 1) or be None, got {self.ema_decay!r}")
        if self.warmup_unit not in WARMUP_UNITS:
            raise ValueError(
                f"unknown warmup_unit {self.warmup_unit!r}; expected one of {WARMUP_UNITS}"
            )
        if not _is_number(self.warmup) or self.warmup < 0:
            raise ValueError(f"warmup must be a number >= 0, got {self.warmup!r}")
        if self.warmup_unit == "steps" and self.warmup != int(self.warmup):
            raise ValueError(f"a warm-up in steps must be a whole number, got {self.warmup!r}")
        minutes = self.checkpoint_every_minutes
        if minutes is not None and not (_is_number(minutes) and minutes > 0):
            raise ValueError(
                f"checkpoint_every_minutes must be a positive number or None, got {minutes!r}"
            )
        if not isinstance(self.jit, bool):
            raise ValueError(f"jit must be True or False, got {self.jit!r}")

    @property
    def evaluation_batch_size(self) -> int:
        return self.test_batch_size or self.batch_size

    def warmup_steps(self, steps_per_epoch: int) -> int:
        """The warm-up in updates, for epochs of `steps_per_epoch` updates."""
        if self.warmup_unit == "steps":
            return int(self.warmup)
        return int(round(self.warmup * steps_per_epoch))


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and value == value
