"""A RealNVPModel ported from the official TensorFlow RealNVP checkpoint
reproduces the official encoder, log-dets, bits/dim and decoder (ref_R1)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import FIXTURES, REPO_ROOT

REFERENCE = FIXTURES / "realnvp_reference" / "ref_R1"


@pytest.fixture(scope="module")
def ported():
    from glow_tf.porting.realnvp_names import port_realnvp, read_realnvp_checkpoint, read_realnvp_hps

    return port_realnvp(
        read_realnvp_checkpoint(REFERENCE / "ckpt"), read_realnvp_hps(REFERENCE / "hps.json")
    )


@pytest.fixture(scope="module")
def comparisons(ported):
    from glow_tf.porting.realnvp_check import compare_realnvp_with_reference

    return {c.name: c for c in compare_realnvp_with_reference(ported.model, REFERENCE)}


def test_config_and_every_variable(ported):
    config = ported.config
    assert config.image_shape == (16, 16, 3)
    assert (config.num_levels, config.hidden_channels, config.num_blocks) == (2, 8, 1)
    assert config.coupling == "affine" and config.batch_norm and config.skip
    trainable = sum(int(np.prod(w.shape)) for w in ported.model.trainable_weights)
    assert trainable == 56977  # the official count (hps.json _n_trainable_parameters)
    assert ported.num_weights + ported.num_unused == 351  # every model variable of vars.npz


@pytest.mark.parametrize(
    "name, tolerance",
    [
        ("bits_per_dim_per_example", 1e-5),
        ("bit_per_dim", 1e-5),
        ("z", 1e-4),
        ("z_level0", 1e-4),
        ("z_level1", 1e-4),
        ("logit_x_in", 1e-4),
        ("log_diff_map", 1e-4),
        ("x_rec_logit", 1e-4),
        ("sample_logit_t1.0", 1e-4),
        ("sample_logit_t0.7", 1e-4),
        ("x_rec_uint8", 0.0),
        ("x_rec_uint8 == x_ref", 0.0),
    ],
)
def test_quantity_within_tolerance(comparisons, name, tolerance):
    comparison = comparisons[name]
    assert comparison.max_abs_diff <= tolerance, comparison.line()


def test_every_coupling_matches(comparisons):
    couplings = [name for name in comparisons if name.startswith("enc_s")]
    assert len(couplings) == 10 * 4  # 10 couplings: in, out, logdiff, logdet
    for name in couplings:
        comparison = comparisons[name]
        limit = comparison.tolerance if name.endswith("logdet") else 1e-4
        assert comparison.max_abs_diff <= limit, comparison.line()
    assert all(c.passed for c in comparisons.values())


def test_official_postprocessing_of_samples(comparisons):
    for temperature in ("1.0", "0.7"):
        assert comparisons[f"sample_uint8_t{temperature}"].max_abs_diff <= 1


def test_refuses_a_glow_checkpoint_layout():
    from glow_tf.porting.openai_names import PortingError
    from glow_tf.porting.realnvp_names import realnvp_config

    with pytest.raises(PortingError, match="not an official RealNVP"):
        realnvp_config({"model/0/0/actnorm_center/b": np.zeros([1, 1, 1, 4])})


def test_command_lines_convert_and_check(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = tmp_path / "realnvp.keras"
    convert = subprocess.run(
        [sys.executable, "-m", "glow_tf.porting.convert", "--checkpoint", str(REFERENCE / "ckpt"),
         "--hps", str(REFERENCE / "hps.json"), "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert convert.returncode == 0, convert.stderr
    assert "RealNVP" in convert.stdout and out.exists()
    check = subprocess.run(
        [sys.executable, "-m", "glow_tf.porting.check", "--model", str(out),
         "--reference", str(REFERENCE)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    lines = check.stdout.strip().splitlines()
    assert lines[-1] == "PASS"
    assert any(line.startswith("bits_per_dim_per_example") for line in lines)
