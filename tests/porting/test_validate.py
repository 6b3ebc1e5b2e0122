"""A singular, ill-conditioned or non-finite 1x1 convolution is refused, naming the variable."""

from __future__ import annotations

import numpy as np
import pytest

from glow_tf.porting import PortingError, port_checkpoint, port_frozen_graph
from glow_tf.porting.validate import MAX_CONDITION_NUMBER, check_invertible_convolutions
from tests.conftest import Reference
from tests.porting.conftest import write_checkpoint, write_graph

DENSE_NAME = "model/1/0/invconv/W"
LU_SCOPE = "model/1/0/invconv/"
LU_NAME = LU_SCOPE + "{P,L,U,sign_S,log_S}"


def _trained(name: str) -> dict[str, np.ndarray]:
    return dict(Reference(name).npz("vars_trained.npz"))


@pytest.mark.parametrize("name", ["ref_A", "ref_B"])
def test_official_weights_are_far_below_the_threshold(name):
    conditions = check_invertible_convolutions(_trained(name))
    assert len(conditions) == 4  # 2 levels x 2 steps, dense W
    assert 1.0 <= min(conditions.values()) and max(conditions.values()) < 2.0
    assert max(conditions.values()) * 1000 < MAX_CONDITION_NUMBER


def _singular(w):
    w = w.copy()
    w[:, -1] = w[:, 0]  # two equal columns
    return w


def _ill_conditioned(w):
    u, s, vt = np.linalg.svd(w.astype(np.float64))
    s[-1] = s[0] / 1e6
    return (u @ np.diag(s) @ vt).astype(np.float32)


def _nan(w):
    w = w.copy()
    w[1, 2] = np.nan
    return w


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            _singular,
            r"model/1/0/invconv/W is singular \(condition number .*\); the checkpoint is "
            r"corrupt or not a Glow model",
        ),
        (
            _ill_conditioned,
            r"model/1/0/invconv/W is ill-conditioned \(condition number 1\.0e\+06 "
            r"> 1e\+04\)",
        ),
        (_nan, r"model/1/0/invconv/W: contains NaN or Inf"),
    ],
)
@pytest.mark.parametrize("source", ["checkpoint", "graph"])
def test_damaged_dense_kernel_is_refused_by_name(tmp_path, damage, message, source):
    reference = Reference("ref_A")
    variables = _trained("ref_A")
    variables[DENSE_NAME] = damage(variables[DENSE_NAME])
    hps = reference.dir / "hps.json"
    with pytest.raises(PortingError, match=message):
        if source == "checkpoint":
            port_checkpoint(write_checkpoint(tmp_path / "ckpt" / "model.ckpt", variables), hps=hps)
        else:
            port_frozen_graph(write_graph(tmp_path / "graph.pb", variables), hps=hps)


def test_threshold_is_configurable(tmp_path):
    reference = Reference("ref_A")
    variables = _trained("ref_A")
    variables[DENSE_NAME] = _ill_conditioned(variables[DENSE_NAME])
    checkpoint = write_checkpoint(tmp_path / "ckpt" / "model.ckpt", variables)
    hps = reference.dir / "hps.json"
    result = port_checkpoint(checkpoint, hps=hps, max_condition_number=1e7)
    np.testing.assert_array_equal(
        result.model.levels[1].steps[0].permutation.kernel.numpy(), variables[DENSE_NAME]
    )
    with pytest.raises(PortingError, match=r"model/0/0/invconv/W is ill-conditioned"):
        port_checkpoint(reference.dir / "ckpt_trained", hps=hps, max_condition_number=1.0)


def _zero_sign(v):
    v[LU_SCOPE + "sign_S"][3] = 0.0


def _tiny_diagonal(v):
    v[LU_SCOPE + "log_S"][3] = -20.0  # exp(-20) = 2e-9: cond(W) ~ 1e9


def _not_a_permutation(v):
    v[LU_SCOPE + "P"][0, 0] += 0.5


def _inf_upper(v):
    v[LU_SCOPE + "U"][0, 5] = np.inf


@pytest.mark.parametrize(
    "damage, message",
    [
        (_zero_sign, rf"{LU_NAME} is singular".replace("{", r"\{").replace("}", r"\}")),
        (_tiny_diagonal, r"model/1/0/invconv/\{P,L,U,sign_S,log_S\} is ill-conditioned"),
        (_not_a_permutation, r"model/1/0/invconv/P is not a permutation matrix"),
        (_inf_upper, r"model/1/0/invconv/U: contains NaN or Inf"),
    ],
)
def test_damaged_lu_factors_are_refused_by_name(official_runs, tmp_path, damage, message):
    run = official_runs["lu_affine"]
    variables = {name: value.copy() for name, value in run.variables.items()}
    assert max(check_invertible_convolutions(variables).values()) < 10
    damage(variables)
    checkpoint = write_checkpoint(tmp_path / "ckpt" / "model.ckpt", variables)
    with pytest.raises(PortingError, match=message):
        port_checkpoint(checkpoint, hps=run.hps_path)
