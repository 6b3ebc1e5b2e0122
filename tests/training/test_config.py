"""TrainingConfig: validation with clear messages, warm-up, replace, round trip."""

import dataclasses

import pytest

from glow_tf.training.config import TrainingConfig
from glow_tf.training.optimizers import OPTIMIZERS


def test_defaults_are_valid_and_round_trip():
    config = TrainingConfig(dataset="cifar10", image_size=32, ema_decay=0.999, clip_norm=50.0)
    assert TrainingConfig.from_dict(config.to_dict()) == config
    assert config.evaluation_batch_size == config.batch_size == 64
    assert config.replace(test_batch_size=50).evaluation_batch_size == 50


def test_warmup_in_epochs_or_steps():
    assert TrainingConfig(warmup=5, warmup_unit="epochs").warmup_steps(23) == 115
    assert TrainingConfig(warmup=2.5, warmup_unit="epochs").warmup_steps(10) == 25
    assert TrainingConfig(warmup=976, warmup_unit="steps").warmup_steps(23) == 976
    assert TrainingConfig().warmup_steps(100) == 0


def test_every_optimizer_is_accepted():
    for name in OPTIMIZERS:
        assert TrainingConfig(optimizer=name).optimizer == name


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(dataset=""), "dataset must be a non-empty string"),
        (dict(epochs=0), "epochs must be a positive int"),
        (dict(batch_size=2.5), "batch_size must be a positive int"),
        (dict(image_size=-8), "image_size must be a positive int"),
        (dict(steps_per_epoch=0), "steps_per_epoch must be a positive int"),
        (dict(keep_checkpoints=0), "keep_checkpoints must be a positive int"),
        (dict(channels=2), "channels must be one of"),
        (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
        (dict(strategy="horovod"), "unknown strategy 'horovod'"),
        (dict(lr=0.0), "lr must be a positive number"),
        (dict(invertibility_tolerance=-1.0), "invertibility_tolerance must be a positive"),
        (dict(clip_norm=0.0), "clip_norm must be a positive number or None"),
        (dict(beta1=1.0), "beta1 must lie in \\[0, 1\\)"),
        (dict(beta2=-0.1), "beta2 must lie in \\[0, 1\\)"),
        (dict(ema_decay=1.0), "ema_decay must lie in \\(0, 1\\)"),
        (dict(warmup=-1), "warmup must be a number >= 0"),
        (dict(warmup=2.5, warmup_unit="steps"), "must be a whole number"),
        (dict(warmup_unit="updates"), "unknown warmup_unit 'updates'"),
        (dict(seed=1.5), "seed must be an int"),
        (dict(jit="yes"), "jit must be True or False"),
        (dict(dequantization="gaussian"), "unknown dequantization 'gaussian'"),
        (dict(checkpoint_every_steps=0), "checkpoint_every_steps must be a positive int"),
        (dict(checkpoint_every_minutes=0), "checkpoint_every_minutes must be a positive number"),
        (dict(checkpoint_every_minutes="10"), "checkpoint_every_minutes must be a positive"),
    ],
)
def test_invalid_settings_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**changes)
    with pytest.raises(ValueError, match=message):
        TrainingConfig().replace(**changes)


def test_unknown_field_and_frozen():
    with pytest.raises(ValueError, match="unknown TrainingConfig fields: \\['n_batch_train'\\]"):
        TrainingConfig.from_dict({"n_batch_train": 64})
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainingConfig().epochs = 3


def test_checkpoints_within_an_epoch_every_ten_minutes_by_default():
    config = TrainingConfig()
    assert (config.checkpoint_every_steps, config.checkpoint_every_minutes) == (None, 10.0)
    config = config.replace(checkpoint_every_steps=500, checkpoint_every_minutes=None)
    assert TrainingConfig.from_dict(config.to_dict()) == config
