"""The convert command line, in-process and, end to end, in fresh processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from glow_tf.porting.convert import main
from tests.conftest import REPO_ROOT, Reference


def _run(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_convert_then_check_in_fresh_processes(tmp_path):
    reference = Reference("ref_B")
    out = tmp_path / "ref_b.keras"
    converted = _run(
        "glow_tf.porting.convert",
        "--graph",
        str(reference.dir / "graph_frozen.pb"),
        "--hps",
        str(reference.dir / "hps.json"),
        "--out",
        str(out),
    )
    assert converted.returncode == 0, converted.stderr
    assert "permutation      conv1x1          [weights]" in converted.stdout
    assert "num_bits         5                [hps]" in converted.stdout
    assert "mapped 57 OpenAI variables onto 57 weights" in converted.stdout
    assert "note: " in converted.stdout  # no classifier head in an encode/decode graph
    checked = _run(
        "glow_tf.porting.check", "--model", str(out), "--reference", str(reference.dir)
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.strip().splitlines()
    assert lines[-1] == "PASS"
    assert any(line.startswith("bits_x ") for line in lines)
    assert any(line.startswith("bits_y ") and "skipped" in line for line in lines)


def test_checkpoint_with_flags_and_ema(tmp_path, capsys):
    reference = Reference("ref_A")
    out = tmp_path / "a.keras"
    code = main(
        [
            "--checkpoint",
            str(reference.dir / "ckpt_trained"),
            "--image-size",
            "16",
            "--n-bits",
            "8",
            "--ema",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and out.is_file()
    assert "image_shape      [16, 16, 3]      [--image-size]" in printed
    assert "Polyak averages (--ema)" in printed
    assert "mapped 54 OpenAI variables onto 54 weights" in printed
    assert printed.rstrip().endswith(f"wrote {out}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.keras"]


def test_dry_run_prints_the_mapping_and_writes_nothing(tmp_path, capsys):
    reference = Reference("ref_B")
    code = main(
        [
            "--checkpoint",
            str(reference.dir / "ckpt_trained"),
            "--hps",
            str(reference.dir / "hps.json"),
            "--dry-run",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert (
        "model/prior/y_emb/W" in printed
        and "top_prior/class_embedding/kernel" in printed
    )
    assert "dry run: all 60 variables map onto the model; nothing written" in printed


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image-size", "16"], "n_bits_x"),
        (
            ["--n-bits", "8", "--image-size", "10"],
            "not divisible by 2\\*\\*num_levels = 4",
        ),
        (["--hps", "{ref_B}/hps.json"], "hps contradict the weights: flow_coupling=0"),
    ],
)
def test_errors_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    args = [a.replace("{ref_B}", str(Reference("ref_B").dir)) for a in args]
    out = tmp_path / "x.keras"
    code = main(
        [
            "--checkpoint",
            str(Reference("ref_A").dir / "ckpt_trained"),
            *args,
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


def test_truncated_checkpoint_exits_2_and_writes_nothing(tmp_path, capsys):
    copy = tmp_path / "ckpt"
    shutil.copytree(Reference("ref_A").dir / "ckpt_trained", copy)
    data = copy / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    out = tmp_path / "out" / "a.keras"
    assert (
        main(
            [
                "--checkpoint",
                str(copy),
                "--image-size",
                "16",
                "--n-bits",
                "8",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "truncated or corrupt" in capsys.readouterr().err
    assert not out.exists()


def test_option_errors(tmp_path, capsys):
    graph = str(Reference("ref_A").dir / "graph_frozen.pb")
    assert main(["--graph", graph, "--ema", "--out", str(tmp_path / "a.keras")]) == 2
    assert "--ema applies to checkpoints" in capsys.readouterr().err
    assert main(["--graph", graph, "--out", str(tmp_path / "a.h5")]) == 2
    assert "must end with .keras" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            ["--graph", graph, "--checkpoint", "x", "--out", str(tmp_path / "a.keras")]
        )
