"""Training machinery around `GlowModel.fit`: the `TrainingConfig`, optimizers
and schedules, EMA weights, guards, resumable checkpoints, logs and images,
tf.distribute; `run.train` runs it all (what `train_keras.py` calls)."""

from glow_tf.training.callbacks import (
    EpochLog,
    ImageWriter,
    InvertibilityGuard,
    NonFiniteGuard,
    RunCheckpoint,
    write_images,
)
from glow_tf.training.checkpoint import Checkpoint, CheckpointStore
from glow_tf.training.config import TrainingConfig
from glow_tf.training.distribution import STRATEGIES, is_chief, make_strategy
from glow_tf.training.ema import EMAEvaluation, ema_weights, has_ema
from glow_tf.training.errors import TrainingStopped
from glow_tf.training.optimizers import OPTIMIZERS, Adam, Adamax, OpenAIAdamax, make_optimizer
from glow_tf.training.schedules import LinearWarmup

__all__ = [
    "Adam",
    "Adamax",
    "Checkpoint",
    "CheckpointStore",
    "EMAEvaluation",
    "EpochLog",
    "ImageWriter",
    "InvertibilityGuard",
    "LinearWarmup",
    "NonFiniteGuard",
    "OPTIMIZERS",
    "OpenAIAdamax",
    "RunCheckpoint",
    "STRATEGIES",
    "TrainingConfig",
    "TrainingStopped",
    "ema_weights",
    "has_ema",
    "is_chief",
    "make_optimizer",
    "make_strategy",
    "write_images",
]
