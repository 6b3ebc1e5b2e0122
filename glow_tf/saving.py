"""Files on disk: loading a saved flow model, and writing files and directories atomically.

    load_flow_model(path)            a `.keras` file -> GlowModel, RealNVPModel, ... (any
                                     family of glow_tf.models.families), or a clear error
    load_glow_model(path)            the same, accepting only a GlowModel
    atomic_path(path)                write a temporary file, renamed to `path` on success
    save_keras_atomically(model, p)  model.save through `atomic_path`
    write_json_atomically(p, data)   json.dump through `atomic_path` (fsync'd)
    staged_directory(final)          build a directory beside `final`, renamed into place

A rename within one file system is atomic, so a reader (TF Serving, a resumed
run, a user's script) sees the old file or directory or the complete new one,
never half of either, and a failure leaves the old one untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any

__all__ = [
    "load_flow_model",
    "load_glow_model",
    "atomic_path",
    "save_keras_atomically",
    "write_json_atomically",
    "staged_directory",
]

def load_glow_model(path: str | os.PathLike, compile: bool = False):
    """Loads a `GlowModel` saved with `model.save("model.keras")`; see
    `load_flow_model` (the same checks, and any other family is refused)."""
    return load_flow_model(path, compile=compile, family="glow")


def load_flow_model(path: str | os.PathLike, compile: bool = False, family: str | None = None):
    """Loads a glow_tf flow model (any registered family, or only `family`)
    saved with `model.save("model.keras")`.

    The archive's `config.json` is read first, so a file that is not a
    Keras archive, or holds another model, is refused before any loading.
    `compile=True` restores the optimizer state too (resuming training).

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a `.keras` archive, not a glow_tf model (of `family`),
        or the archive does not load.
    """
    import keras

    from glow_tf.models.families import model_class_for, registered_names

    accepted = registered_names()
    if family is not None:
        wanted = model_class_for(family)
        accepted = {name: cls for name, cls in accepted.items() if cls is wanted}
    kinds = " or ".join(cls.__name__ for cls in accepted.values())
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; expected a .keras file written by {kinds}.save")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a Keras .keras archive (not a zip file); expected a file "
            f"written by {kinds}.save('model.keras')"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, json.JSONDecodeError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path} is not a Keras .keras archive (no readable config.json)"
        ) from error
    registered = config.get("registered_name") or config.get("class_name")
    if registered not in accepted:
        raise ValueError(
            f"{path} holds a Keras {config.get('class_name', 'object')!r} "
            f"(registered as {registered!r}), not a glow_tf {kinds}"
        )
    model_class = accepted[registered]
    try:
        model = keras.models.load_model(path, compile=compile)
    except Exception as error:  # Keras raises many types for a damaged archive
        raise ValueError(
            f"could not load the {model_class.__name__} in {path}: {error}"
        ) from error
    if not isinstance(model, model_class):
        raise ValueError(
            f"{path} loaded as {type(model).__name__}, not a glow_tf {model_class.__name__}"
        )
    return model


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside `path` (same suffix); renamed to `path` on success.

    The caller writes the whole file to the yielded path; on an exception the
    temporary file is removed and `path` keeps its old content (or stays absent).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(path)
    stem, suffix = os.path.splitext(name)
    handle, temporary = tempfile.mkstemp(prefix=f".partial-{stem}-", suffix=suffix, dir=directory)
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def save_keras_atomically(model, path: str | os.PathLike) -> None:
    """`model.save(path)` through a temporary file and an atomic rename."""
    with atomic_path(path) as temporary:
        model.save(temporary)


def write_json_atomically(path: str | os.PathLike, data: Any) -> None:
    """json.dump to `path` through a temporary file and an atomic rename."""
    with atomic_path(path) as temporary, open(temporary, "w") as file:
        json.dump(data, file, indent=1, sort_keys=True)
        file.flush()
        os.fsync(file.fileno())


@contextlib.contextmanager
def staged_directory(
    final: str | os.PathLike, overwrite: bool = False, mode: int = 0o755
) -> Iterator[pathlib.Path]:
    """Yields an empty staging directory beside `final`; on success it becomes `final`.

    With `overwrite`, an existing `final` is replaced: renamed aside, the
    staging directory renamed into place, then the old one removed (put back
    if the rename fails). On an exception the staging directory is removed
    and `final` is left as it was.

    Raises:
      FileExistsError: `final` exists and `overwrite` is False.
    """
    final = pathlib.Path(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".staging-{final.name}-", dir=final.parent))
    staging.chmod(mode)  # mkdtemp's 0o700 would hide it from a reader run as another user
    try:
        yield staging
        if final.exists():
            if not overwrite:
                raise FileExistsError(f"{final} appeared while it was being written")
            retired = pathlib.Path(
                tempfile.mkdtemp(prefix=f".replaced-{final.name}-", dir=final.parent)
            )
            final.rename(retired / "old")
            try:
                staging.rename(final)
            except BaseException:
                (retired / "old").rename(final)  # put the old one back
                raise
            finally:
                shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
