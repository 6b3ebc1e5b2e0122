"""Loading the `.keras` file to export, with a clear error for anything else."""

from __future__ import annotations

import json
import pathlib
import zipfile

import keras

from glow_tf import GlowModel

__all__ = ["load_glow_model"]

_REGISTERED_NAME = "glow_tf>GlowModel"


def load_glow_model(path: str | pathlib.Path) -> GlowModel:
    """Loads a `GlowModel` saved with `model.save("model.keras")`.

    The archive's `config.json` is read first, so a file that is not a
    Keras archive, or holds another model, is refused before any loading.

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a `.keras` archive, not a glow_tf `GlowModel`, or the
        archive does not load.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; expected a .keras file written by GlowModel.save")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a Keras .keras archive (not a zip file); expected a file "
            "written by GlowModel.save('model.keras')"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, json.JSONDecodeError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path} is not a Keras .keras archive (no readable config.json)"
        ) from error
    registered = config.get("registered_name") or config.get("class_name")
    if registered != _REGISTERED_NAME:
        raise ValueError(
            f"{path} holds a Keras {config.get('class_name', 'object')!r} "
            f"(registered as {registered!r}), not a glow_tf GlowModel"
        )
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a damaged archive
        raise ValueError(f"could not load the GlowModel in {path}: {error}") from error
    if not isinstance(model, GlowModel):
        raise ValueError(f"{path} loaded as {type(model).__name__}, not a glow_tf GlowModel")
    return model
