"""What every glow_tf command line shares: a quiet TensorFlow, one-line errors, exit codes.

    @command("python -m glow_tf.sample")
    def main(argv=None) -> int:
        args = parser.parse_args(argv)
        ...                      # raise ValueError("...") for bad input

    exit 0 / the int main returns   success (or main's own verdict, e.g. 1 = check failed)
    exit 2                          an expected error: "PROG: error: message" on stderr
                                    (ValueError, TypeError, OSError, tf InvalidArgumentError,
                                    the project's own errors); argparse errors exit 2 as usual
    exit 130                        Ctrl-C: "PROG: interrupted" on stderr

TensorFlow's C++ logging reads TF_CPP_MIN_LOG_LEVEL once, when TensorFlow is
imported, and its native libraries print a few lines while loading whatever
the level ("cudart_stub.cc ... Could not find cuda drivers"). The parent
packages (glow_tf, export) import TensorFlow before any `main` runs, so they
call `quiet_tensorflow_for_commands()` first thing, which acts only when a
command line is starting (`python -m glow_tf...` / `python -m export...`,
a `glow-*` script or `python train_keras.py`), never for a library user: it
sets TF_CPP_MIN_LOG_LEVEL=3 and imports TensorFlow with file descriptor 2
pointed at /dev/null. A command's real errors still reach stderr as Python
exceptions.
GLOW_TF_VERBOSE=1 keeps all of TensorFlow's output (and an explicit
TF_CPP_MIN_LOG_LEVEL is respected). This module imports nothing but the
standard library (and TensorFlow, when asked to quieten it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "VERBOSE_VARIABLE",
    "command",
    "quiet_tensorflow",
    "quiet_tensorflow_for_commands",
    "report_error",
]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
VERBOSE_VARIABLE = "GLOW_TF_VERBOSE"
SCRIPT_PREFIX = "glow-"  # the console scripts of pyproject.toml
SCRIPTS = ("train_keras.py",)  # command lines run as a file
_NOISY_PACKAGES = r"(tensorflow|tf_keras|keras|tensorflow_probability|tf2onnx|onnx|absl)(\.|$)"
_PROJECT_ERRORS = {  # raised only once their module is imported, so looked up there
    "glow_tf.training.errors": "TrainingStopped",
}


def _verbose() -> bool:
    return os.environ.get(VERBOSE_VARIABLE, "").lower() not in ("", "0", "false", "no")


def quiet_tensorflow() -> None:
    """Silences TensorFlow's C++ logs, its absl and Python loggers below ERROR and
    the Python warnings of TF / Keras / TFP / tf2onnx (no-op with GLOW_TF_VERBOSE=1).

    Imports TensorFlow (silently) if it is not imported yet: the C++ log level
    only takes effect then. An explicit TF_CPP_MIN_LOG_LEVEL is kept.
    """
    if _verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 3: no C++ INFO / WARNING / ERROR lines
    for name in ("absl", "tensorflow", "tf2onnx", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=_NOISY_PACKAGES)
    if "tensorflow" not in sys.modules:
        with _native_stderr_discarded():
            import tensorflow  # noqa: F401


@contextlib.contextmanager
def _native_stderr_discarded() -> Iterator[None]:
    """Points file descriptor 2 at /dev/null (native libraries write there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _starting_a_command() -> bool:
    # While `python -m pkg.mod` imports pkg.mod's parent packages, sys.argv[0] is "-m"
    # (runpy); a console script's or a script file's argv[0] is the script itself.
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    return program == "-m" or program.startswith(SCRIPT_PREFIX) or program in SCRIPTS


def quiet_tensorflow_for_commands() -> None:
    """`quiet_tensorflow()` if a glow_tf / export command line is starting, else nothing."""
    if _starting_a_command():
        quiet_tensorflow()


def _expected_errors() -> tuple[type[BaseException], ...]:
    expected = [ValueError, TypeError, OSError]
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None and hasattr(tensorflow, "errors"):
        expected.append(tensorflow.errors.InvalidArgumentError)
    for module_name, class_name in _PROJECT_ERRORS.items():
        module = sys.modules.get(module_name)
        if module is not None:
            expected.append(getattr(module, class_name))
    return tuple(expected)


def _one_line(error: BaseException) -> str:
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None and isinstance(error, tensorflow.errors.OpError):
        text = error.message  # without TF's traceback of graph nodes
    else:
        text = str(error)
        if isinstance(error, FileNotFoundError) and error.filename and error.strerror:
            text = f"{error.strerror}: {error.filename}"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def report_error(prog: str, error: BaseException) -> int:
    """Prints "PROG: error: message" on stderr; returns the exit status 2."""
    print(f"{prog}: error: {_one_line(error) or type(error).__name__}", file=sys.stderr)
    return EXIT_ERROR


def command(
    prog: str, interrupted: str = ""
) -> Callable[[Callable[..., int | None]], Callable[..., int]]:
    """Decorates a command's `main(argv=None) -> int | None` (see the module doc).

    `interrupted` is appended to the Ctrl-C line (e.g. how to resume).
    The wrapped `main` returns the exit status instead of raising; argparse's
    own exits (--help, bad options) pass through as SystemExit.
    """

    def decorate(main: Callable[..., int | None]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapped(*args, **kwargs) -> int:
            quiet_tensorflow()
            try:
                status = main(*args, **kwargs)
            except KeyboardInterrupt:
                hint = f"; {interrupted}" if interrupted else ""
                print(f"\n{prog}: interrupted{hint}", file=sys.stderr)
                return EXIT_INTERRUPTED
            except Exception as error:
                if not isinstance(error, _expected_errors()):
                    raise
                return report_error(prog, error)
            return 0 if status is None else int(status)

        return wrapped

    return decorate
