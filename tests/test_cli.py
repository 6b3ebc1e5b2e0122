"""glow_tf.cli: every command line exits 2 with one `PROG: error: ...` line and no TF logs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from glow_tf import cli
from tests.conftest import REPO_ROOT

TF_LOG_LINE = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d"  # absl / glog: I0000 00:00:17.. cudart_stub.cc ...
    r"|^\d{4}-\d\d-\d\d .*[IWE] tensorflow"  # TF's own C++ logging
    r"|oneDNN|cpu_feature_guard|absl::InitializeLog|cuda|WARNING:absl|Warning:",
    re.MULTILINE,
)


def _run(tmp_path, *argv: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "GLOW_TF"))}
    env.update(PYTHONPATH=str(REPO_ROOT), **extra_env)
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )


# (argv, prog, message): bad input for every command line that uses glow_tf.cli.command
COMMANDS = {
    "sample": (
        ["-m", "glow_tf.sample", "grid", "--model", "missing.keras", "--out", "g.png"],
        "python -m glow_tf.sample",
        "model file not found: missing.keras",
    ),
    "convert": (
        ["-m", "glow_tf.porting.convert", "--graph", "missing.pb", "--out", "m.keras"],
        "python -m glow_tf.porting.convert",
        "graph file 'missing.pb' does not exist",
    ),
    "check": (
        ["-m", "glow_tf.porting.check", "--model", "missing.keras", "--reference", "."],
        "python -m glow_tf.porting.check",
        "model file not found: missing.keras",
    ),
    "export": (
        ["-m", "export", "--model", "missing.keras", "--out", "exports"],
        "python -m export",
        "model file not found: missing.keras",
    ),
    "verify": (
        ["-m", "export.verify", "exports", "--model", "missing.keras"],
        "python -m export.verify",
        "export directory not found: exports",
    ),
}


@pytest.fixture(scope="module")
def command_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every command run once (one after the other: each imports TensorFlow)."""
    tmp_path = tmp_path_factory.mktemp("cli")
    return {name: _run(tmp_path, *argv) for name, (argv, _, _) in COMMANDS.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_bad_input_is_one_line_and_exit_2_without_tf_logs(command_runs, name):
    _, prog, message = COMMANDS[name]
    run = command_runs[name]
    assert run.returncode == 2, run.stderr
    assert run.stderr == f"{prog}: error: {message}\n", run.stderr
    assert not TF_LOG_LINE.search(run.stderr)
    assert "Traceback" not in run.stderr + run.stdout
    if name == "check":
        assert run.stdout.rstrip().endswith("FAIL")  # the verdict stays the last line


@pytest.mark.slow
def test_verbose_keeps_tensorflow_output(tmp_path):
    # sys.argv[0] is "-m" while `python -m glow_tf...` imports the package
    code = (
        "import os, sys; sys.argv[0] = '-m'; import glow_tf; "
        "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"
    )
    quiet = _run(tmp_path, "-c", code)
    assert quiet.stdout.strip() == "3" and not TF_LOG_LINE.search(quiet.stderr), quiet.stderr
    verbose = _run(tmp_path, "-c", code, **{cli.VERBOSE_VARIABLE: "1"})
    assert verbose.stdout.strip() == "None"


def test_a_library_import_leaves_tensorflow_logging_alone(monkeypatch):
    # this process imported glow_tf as a library (pytest's argv[0] is not "-m")
    assert not cli._starting_a_command()
    for argv0, starting in [
        ("-m", True),  # python -m glow_tf.sample / export, while importing the package
        ("/venv/bin/glow-export", True),
        ("train_keras.py", True),
        ("/home/me/my_script.py", False),
        ("", False),  # python -c / the REPL
    ]:
        monkeypatch.setattr(sys, "argv", [argv0])
        assert cli._starting_a_command() is starting, argv0


@pytest.mark.parametrize(
    "error, message",
    [
        (ValueError("bad value\n  more detail"), "bad value more detail"),
        (TypeError("wrong type"), "wrong type"),
        (
            FileNotFoundError(2, "No such file or directory", "x.keras"),
            "No such file or directory: x.keras",
        ),
        (FileExistsError("exports/glow/1 already exists"), "exports/glow/1 already exists"),
        (
            tf.errors.InvalidArgumentError(None, None, "noise must lie in [0, 0.03)"),
            "noise must lie in [0, 0.03)",
        ),
    ],
)
def test_expected_errors_become_one_line_and_exit_2(capsys, error, message):
    @cli.command("prog")
    def main(argv=None):
        raise error

    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"prog: error: {message}\n" and captured.out == ""


def test_project_errors_are_expected(capsys):
    from glow_tf.porting.openai_names import PortingError
    from glow_tf.training.errors import TrainingStopped

    for error in (PortingError("no such variable"), TrainingStopped("the loss became nan")):

        @cli.command("prog")
        def main(error=error):
            raise error

        assert main() == 2
        assert capsys.readouterr().err == f"prog: error: {error}\n"


def test_ctrl_c_exits_130_with_one_line(capsys):
    @cli.command("prog")
    def main():
        raise KeyboardInterrupt

    assert main() == 130
    assert capsys.readouterr().err.strip() == "prog: interrupted"


def test_status_passes_through_and_bugs_are_not_hidden():
    @cli.command("prog")
    def verdict(status):
        return status

    assert verdict(None) == 0 and verdict(1) == 1

    @cli.command("prog")
    def buggy():
        raise RuntimeError("a bug: show the traceback")

    with pytest.raises(RuntimeError, match="a bug"):
        buggy()

    @cli.command("prog")
    def bad_option():
        raise SystemExit(2)  # argparse's own exit

    with pytest.raises(SystemExit):
        bad_option()
