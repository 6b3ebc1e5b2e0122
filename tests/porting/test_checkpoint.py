"""Reading TF1 Saver checkpoints as the official train.py writes them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from glow_tf.porting import PortingError, read_checkpoint
from glow_tf.porting.checkpoint import resolve_checkpoint_prefix
from tests.conftest import Reference
from tests.porting.conftest import write_checkpoint


def test_reads_model_variables_and_ignores_optimizer_slots():
    reference = Reference("ref_A")
    weights = read_checkpoint(reference.dir / "ckpt_trained")
    trained = reference.npz("vars_trained.npz")
    model_names = {
        n
        for n in trained
        if n.startswith("model/") and "ExponentialMovingAverage" not in n
    }
    assert set(weights.variables) == model_names
    for name in model_names:
        np.testing.assert_array_equal(weights.variables[name], trained[name])
    assert "optimizer slots (Variable_N) ignored" in weights.notes[0]


def test_directory_with_a_foreign_state_file_and_prefix_forms(tmp_path):
    source = Reference("ref_A").dir / "ckpt_trained"
    copy = tmp_path / "logs"
    shutil.copytree(source, copy)
    (copy / "checkpoint").write_text(
        'model_checkpoint_path: "/home/someone/logs/model.ckpt"\n'
    )
    prefix = str(copy / "model.ckpt")
    assert resolve_checkpoint_prefix(copy) == prefix
    assert resolve_checkpoint_prefix(prefix + ".index") == prefix
    assert resolve_checkpoint_prefix(prefix + ".data-00000-of-00001") == prefix
    (copy / "checkpoint").unlink()
    assert resolve_checkpoint_prefix(copy) == prefix


def test_ambiguous_or_missing_checkpoints(tmp_path):
    with pytest.raises(PortingError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "model.ckpt")
    with pytest.raises(PortingError, match=r"no checkpoint \(\*.index file\)"):
        read_checkpoint(tmp_path)
    variables = {"model/0/0/actnorm_center/b": np.zeros((1, 1, 1, 4), np.float32)}
    write_checkpoint(tmp_path / "a.ckpt", variables)
    write_checkpoint(tmp_path / "b.ckpt", variables)
    with pytest.raises(PortingError, match="holds 2 checkpoints"):
        read_checkpoint(tmp_path)


def _damaged(tmp_path, filename, damage):
    copy = tmp_path / "ckpt"
    shutil.copytree(Reference("ref_B").dir / "ckpt_trained", copy)
    path = copy / filename
    path.write_bytes(damage(path.read_bytes()))
    return copy


@pytest.mark.parametrize(
    "filename, damage",
    [
        ("model.ckpt.data-00000-of-00001", lambda data: data[: len(data) // 2]),
        (
            "model.ckpt.data-00000-of-00001",
            lambda data: bytes(
                byte ^ 0xFF if i % 997 == 0 else byte for i, byte in enumerate(data)
            ),
        ),
        ("model.ckpt.index", lambda data: data[: len(data) // 2]),
    ],
    ids=["truncated data", "corrupt data", "truncated index"],
)
def test_truncated_or_corrupt_checkpoints_are_refused(tmp_path, filename, damage):
    with pytest.raises(PortingError, match="truncated or corrupt"):
        read_checkpoint(_damaged(tmp_path, filename, damage))


def test_ema_takes_averages_but_untrained_variables_as_stored(official_runs):
    run = official_runs["shuffle_additive"]
    weights = read_checkpoint(run.checkpoint, ema=True)
    assert set(weights.variables) == set(run.variables)
    np.testing.assert_allclose(
        weights.variables["model/0/0/f1/l_1/W"],
        run.variables["model/0/0/f1/l_1/W"] + 0.01,
    )
    np.testing.assert_array_equal(
        weights.variables["model/0/1/shuffle/indices"],
        run.variables["model/0/1/shuffle/indices"],
    )


def test_ema_refused_without_averages(tmp_path, official_runs):
    run = official_runs["lu_affine"]
    prefix = write_checkpoint(
        tmp_path / "plain" / "model.ckpt", run.variables, ema_offset=None
    )
    with pytest.raises(
        PortingError, match="no '<variable>/ExponentialMovingAverage' entries"
    ):
        read_checkpoint(prefix, ema=True)
    prefix = write_checkpoint(
        tmp_path / "partial" / "model.ckpt",
        run.variables,
        without_average=["model/1/0/invconv/L"],
    )
    with pytest.raises(
        PortingError, match=r"1 trained variable\(s\) have no .*model/1/0/invconv/L"
    ):
        read_checkpoint(prefix, ema=True)
    weights = read_checkpoint(prefix)
    np.testing.assert_array_equal(
        weights.variables["model/1/0/invconv/L"], run.variables["model/1/0/invconv/L"]
    )
