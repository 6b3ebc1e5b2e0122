"""Untrusted `.keras` files: code (Lambda), unknown classes and oversized configs are refused.

`glow_tf.saving.load_glow_model` is the loader of every CLI; it reads the
archive's config.json before Keras builds anything, then loads with Keras'
default `safe_mode=True`, which refuses to deserialise Python code.
"""

from __future__ import annotations

import json
import pathlib
import zipfile

import keras
import pytest

from glow_tf.saving import load_glow_model
from glow_tf import GlowModel
from tests.conftest import TINY


def _rewritten(source: pathlib.Path, target: pathlib.Path, edit) -> pathlib.Path:
    """A copy of the archive `source` whose config.json went through `edit`."""
    with zipfile.ZipFile(source) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(entries["config.json"])
    edit(config)
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return target


@pytest.fixture(scope="module")
def tiny_archive(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("untrusted") / "tiny.keras"
    GlowModel(TINY).save(path)
    return path


@pytest.fixture(scope="module")
def lambda_archive(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("untrusted") / "lambda.keras"
    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(path)
    return path


def test_a_lambda_layer_is_refused_in_safe_mode(lambda_archive):
    with pytest.raises(ValueError, match=r"(?s)Lambda.*safe_mode"):
        keras.models.load_model(lambda_archive)
    with pytest.raises(ValueError, match=r"'Sequential'.*not a glow_tf GlowModel"):
        load_glow_model(lambda_archive)


def test_an_unknown_class_is_refused(tiny_archive, tmp_path):
    def edit(config):
        config.update(module="evil", class_name="Evil", registered_name="evil>Evil")

    path = _rewritten(tiny_archive, tmp_path / "evil.keras", edit)
    with pytest.raises(TypeError, match="Could not locate class 'Evil'"):
        keras.models.load_model(path)
    with pytest.raises(ValueError, match=r"registered as 'evil>Evil'\), not a glow_tf GlowModel"):
        load_glow_model(path)


def test_a_lambda_in_place_of_the_glow_config_is_refused(tiny_archive, lambda_archive, tmp_path):
    with zipfile.ZipFile(lambda_archive) as archive:
        sequential = json.loads(archive.read("config.json"))
    lambda_layer = next(
        layer for layer in sequential["config"]["layers"] if layer["class_name"] == "Lambda"
    )

    def edit(config):
        config["config"]["config"] = lambda_layer

    path = _rewritten(tiny_archive, tmp_path / "glow_lambda.keras", edit)
    with pytest.raises(ValueError, match="unknown GlowConfig fields"):
        load_glow_model(path)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("hidden_channels", 10**7, "hidden_channels = 10000000 is above the limit of 8192"),
        ("num_steps", 10**6, "num_steps = 1000000 is above the limit of 256"),
        ("image_shape", [2**20, 2**20, 3], "image height = 1048576 is above the limit"),
    ],
)
def test_an_oversized_config_is_refused_before_any_allocation(
    tiny_archive, tmp_path, field, value, message
):
    def edit(config):
        config["config"]["config"][field] = value

    path = _rewritten(tiny_archive, tmp_path / "huge.keras", edit)
    with pytest.raises(ValueError, match=message):
        load_glow_model(path)
    with pytest.raises(ValueError, match=message):
        keras.models.load_model(path)
