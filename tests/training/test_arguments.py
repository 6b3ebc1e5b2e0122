"""train_keras's command line: flags named after config fields, choices from
the configs' constants, overrides by `replace`, --mixed-precision as an alias."""

import dataclasses
import os

import pytest

from glow_tf import GlowConfig
from glow_tf.config import COUPLINGS, NETWORK_DTYPES, PERMUTATIONS
from glow_tf.data.dequantizers import DEQUANTIZATIONS
from glow_tf.presets import PRESETS
from glow_tf.training.arguments import MIXED_PRECISION_ALIASES, build_parser, configs_from_args
from glow_tf.training.config import IMAGE_CHANNELS, TrainingConfig
from glow_tf.training.distribution import STRATEGIES
from glow_tf.training.optimizers import OPTIMIZERS
from glow_tf.training.run import RunOptions


def _configs(*argv):
    return configs_from_args(build_parser().parse_args(list(argv)))


def _choices():
    return {action.dest: action.choices for action in build_parser()._actions if action.choices}


def test_choices_are_the_configs_constants():
    choices = _choices()
    assert tuple(choices["coupling"]) == COUPLINGS
    assert tuple(choices["permutation"]) == PERMUTATIONS
    assert tuple(choices["network_dtype"]) == NETWORK_DTYPES
    assert list(choices["optimizer"]) == sorted(OPTIMIZERS)
    assert tuple(choices["strategy"]) == STRATEGIES
    assert tuple(choices["channels"]) == IMAGE_CHANNELS
    assert tuple(choices["dequantization"]) == DEQUANTIZATIONS
    assert list(choices["preset"]) == sorted(PRESETS)
    assert set(MIXED_PRECISION_ALIASES.values()) == set(NETWORK_DTYPES)


def test_every_config_field_has_its_flag():
    dests = {action.dest for action in build_parser()._actions}
    from_data = {"image_shape", "num_classes"}  # set from the dataset
    assert {f.name for f in dataclasses.fields(GlowConfig)} - dests == from_data
    # the warm-up is given as --warmup-epochs or --warmup-steps
    assert {f.name for f in dataclasses.fields(TrainingConfig)} - dests == {"warmup", "warmup_unit"}
    assert {f.name for f in dataclasses.fields(RunOptions)} <= dests


def test_no_flags_give_the_preset():
    run = _configs("--preset", "cifar10")
    assert run.model_config == PRESETS["cifar10"].model
    assert run.training == PRESETS["cifar10"].training
    assert run.model_changes == {}
    assert run.options == RunOptions(output_dir=os.path.join("runs", "cifar10"))


def test_flags_replace_their_fields():
    run = _configs(
        "--preset",
        "cifar10",
        "--num-steps",
        "8",
        "--coupling",
        "additive",
        "--lu-decomposed",
        "true",
        "--batch-size",
        "32",
        "--warmup-epochs",
        "2",
        "--seed",
        "3",
        "--jit",
        "--steps-per-execution",
        "4",
        "--keep-checkpoints",
        "5",
        "--conditional",
        "false",
        "--output-dir",
        "/tmp/run",
        "--resume",
        "never",
        "--tensorboard",
        "off",
        "--dequantization",
        "variational",
    )
    assert run.model_changes == dict(
        num_steps=8, coupling="additive", lu_decomposed=True, seed=3, conditional=False
    )
    assert run.training == PRESETS["cifar10"].training.replace(
        batch_size=32,
        warmup=2.0,
        warmup_unit="epochs",
        seed=3,
        jit=True,
        steps_per_execution=4,
        keep_checkpoints=5,
        dequantization="variational",
    )
    assert run.options == RunOptions(output_dir="/tmp/run", resume="never", tensorboard=False)


def test_warmup_steps_win_over_epochs():
    run = _configs("--warmup-epochs", "3", "--warmup-steps", "0")
    assert (run.training.warmup, run.training.warmup_unit) == (0, "steps")


@pytest.mark.parametrize("alias, dtype", sorted(MIXED_PRECISION_ALIASES.items()))
def test_mixed_precision_is_an_alias_of_network_dtype(alias, dtype):
    assert _configs("--mixed-precision", alias) == _configs("--network-dtype", dtype)
    assert _configs("--mixed-precision", alias).model_changes == {"network_dtype": dtype}
    assert _configs("--mixed-precision", alias, "--network-dtype", dtype).model_changes == {
        "network_dtype": dtype
    }


def test_contradicting_precisions_are_refused():
    with pytest.raises(ValueError, match="--mixed-precision bf16 means --network-dtype bfloat16"):
        _configs("--mixed-precision", "bf16", "--network-dtype", "float16")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--mixed-precision", "bf16"], "--mixed-precision does not apply to a RealNVPConfig"),
        (["--mixed-precision", "none"], "--mixed-precision does not apply to a RealNVPConfig"),
        (["--network-dtype", "float16"], "--network-dtype do.es. not apply to a RealNVPConfig"),
        (["--num-steps", "4"], "--num-steps do.es. not apply to a RealNVPConfig"),
    ],
)
def test_glow_only_flags_are_refused_for_realnvp(flags, message):
    with pytest.raises(ValueError, match=message):
        _configs("--model", "realnvp", *flags)
    with pytest.raises(ValueError, match=message):
        _configs("--preset", "realnvp_digits", *flags)


def test_realnvp_flags_set_their_fields():
    run = _configs("--model", "realnvp", "--num-blocks", "3", "--hidden-channels", "8")
    assert run.model_changes == {"num_blocks": 3, "hidden_channels": 8}
    assert run.model_config == PRESETS["realnvp_digits"].model


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "epochs must be a positive int"),
        (["--lr", "-1"], "lr must be a positive number"),
        (["--ema-decay", "1.5"], "ema_decay must lie in"),
    ],
)
def test_bad_values_are_refused_by_the_config(flags, message):
    with pytest.raises(ValueError, match=message):
        _configs(*flags)


def test_unknown_choices_exit_like_argparse(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--network-dtype", "int8"])
    assert exit_info.value.code == 2
    assert "train_keras.py: error: argument --network-dtype" in capsys.readouterr().err


def test_checkpoint_intervals_and_zero_for_off():
    run = _configs("--checkpoint-every-steps", "200", "--checkpoint-every-minutes", "2.5")
    assert run.training.checkpoint_every_steps == 200
    assert run.training.checkpoint_every_minutes == 2.5
    run = _configs("--checkpoint-every-steps", "0", "--checkpoint-every-minutes", "0")
    assert run.training.checkpoint_every_steps is None
    assert run.training.checkpoint_every_minutes is None
    with pytest.raises(ValueError, match="checkpoint_every_minutes must be a positive number"):
        _configs("--checkpoint-every-minutes", "-1")
