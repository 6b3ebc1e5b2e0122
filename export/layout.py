"""TF Serving's directory layout: OUT/<name>/<version>/, versions as positive integers.

TF Serving watches OUT/<name>/ (its `--model_base_path`) and serves the
highest numbered version directory; anything not named by an integer is
ignored. An export is written into a hidden staging directory next to its
version directory and renamed into place when complete
(`glow_tf.saving.staged_directory`), so the server never sees half a model
and a failed export leaves an existing version untouched.
"""

from __future__ import annotations

import contextlib
import pathlib
import re
from collections.abc import Iterator

from glow_tf.saving import staged_directory

__all__ = [
    "METADATA_FILE",
    "version_dirs",
    "next_version",
    "check_name",
    "staged_version_dir",
    "find_version_dir",
]

METADATA_FILE = "glow_export.json"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_name(name: str) -> str:
    """A model name usable in a path and in `/v1/models/<name>:predict`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"model name must be letters, digits, '_', '-' or '.', starting with a letter or "
            f"digit; got {name!r}"
        )
    return name


def version_dirs(model_dir: pathlib.Path) -> dict[int, pathlib.Path]:
    """{version: path} of the integer-named subdirectories of `model_dir`."""
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        return {}
    return {
        int(path.name): path
        for path in model_dir.iterdir()
        if path.is_dir() and path.name.isdigit() and int(path.name) > 0
    }


def next_version(model_dir: pathlib.Path) -> int:
    """1 + the highest existing version (1 for a new model)."""
    return max(version_dirs(model_dir), default=0) + 1


@contextlib.contextmanager
def staged_version_dir(
    out: pathlib.Path, name: str, version: int | None, overwrite: bool = False
) -> Iterator[tuple[pathlib.Path, int]]:
    """Yields (staging directory, version); on success it becomes out/name/version.

    Args:
      out: the export root (TF Serving's model base paths live under it).
      name: the model name.
      version: a positive int, or None for the next free version.
      overwrite: replace an existing version directory; without it an
        existing one is an error and is left as it is.

    Raises:
      FileExistsError: the version exists and `overwrite` is False.
    """
    model_dir = pathlib.Path(out) / check_name(name)
    if version is None:
        version = next_version(model_dir)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive int, got {version!r}")
    final = model_dir / str(version)
    if final.exists() and not overwrite:
        raise FileExistsError(
            f"{final} already exists; pass --overwrite (overwrite=True) to replace it, or "
            "choose another --version"
        )
    with staged_directory(final, overwrite=overwrite) as staging:
        yield staging, version


def find_version_dir(
    path: pathlib.Path, name: str | None = None, version: int | None = None
) -> pathlib.Path:
    """The version directory meant by `path`, for reading an export back.

    `path` may be the version directory itself, a model directory
    (out/<name>, its highest or the given version), or the export root
    (out/, with its only model or the given `name`).
    """
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"export directory not found: {path}")
    if (path / METADATA_FILE).is_file():
        return path
    if name is not None and version_dirs(path / name):
        path = path / name
    elif not version_dirs(path):
        models = sorted(p.name for p in path.iterdir() if p.is_dir() and version_dirs(p))
        if len(models) == 1:
            path = path / models[0]
        elif models:
            raise ValueError(f"{path} holds several models {models}; pass --name")
        else:
            raise FileNotFoundError(
                f"no exported model under {path} (expected <name>/<version>/{METADATA_FILE})"
            )
    versions = version_dirs(path)
    if version is None:
        version = max(versions)
    if version not in versions:
        raise FileNotFoundError(f"no version {version} under {path}; found {sorted(versions)}")
    if not (versions[version] / METADATA_FILE).is_file():
        raise FileNotFoundError(f"{versions[version]} is not a glow_tf export (no {METADATA_FILE})")
    return versions[version]
