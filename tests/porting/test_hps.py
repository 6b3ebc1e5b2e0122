"""OpenAI hps (hps.json or a train.py log) -> GlowConfig."""

from __future__ import annotations

import json

import pytest

from glow_tf import GlowConfig
from glow_tf.porting import HpsError, config_from_hps, read_hps
from tests.conftest import Reference


def test_reference_hps_give_the_fixture_configs():
    a = config_from_hps(read_hps(Reference("ref_A").dir / "hps.json"))
    assert a == GlowConfig(
        image_shape=(16, 16, 3),
        num_levels=2,
        num_steps=2,
        hidden_channels=16,
        coupling="affine",
        permutation="conv1x1",
        num_bits=8,
        learn_top=True,
    )
    b = config_from_hps(read_hps(Reference("ref_B").dir / "hps.json"))
    assert (b.coupling, b.num_bits, b.num_classes, b.weight_y) == (
        "additive",
        5,
        10,
        0.01,
    )


def test_train_log_first_line_is_read(tmp_path):
    hps = read_hps(Reference("ref_A").dir / "hps.json")
    log = tmp_path / "train.txt"
    log.write_text(
        json.dumps(hps) + "\n" + json.dumps({"epoch": 1, "loss": 3.4}) + "\n"
    )
    assert read_hps(log) == hps


def test_official_codes_and_flags():
    hps = dict(
        image_size=32,
        n_levels=3,
        depth=4,
        width=8,
        flow_coupling=0,
        flow_permutation=1,
        n_bits_x=5,
        learntop=False,
        ycond=False,
        n_y=10,
        weight_y=0.5,
        use_lu=True,
    )
    config = config_from_hps(hps)
    assert (config.coupling, config.permutation, config.lu_decomposed) == (
        "additive",
        "shuffle",
        False,
    )
    assert (config.num_classes, config.weight_y, config.learn_top) == (0, 0.0, False)
    lu = config_from_hps({**hps, "flow_permutation": 2})
    assert lu.lu_decomposed and lu.permutation == "conv1x1"
    conditional = config_from_hps({**hps, "ycond": True, "weight_y": 0.0})
    assert (conditional.num_classes, conditional.weight_y) == (10, 0.0)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"image_size": None}, "lacks \\['image_size'\\]"),
        ({"n_bits_x": None}, "n_bits_x"),
        ({"image_size": -1}, "unresolved"),
        ({"flow_coupling": 2}, "flow_coupling=2 is not one of the official codes"),
        ({"flow_permutation": 3}, "flow_permutation=3"),
    ],
)
def test_bad_hps_are_refused(change, message):
    hps = dict(
        image_size=32,
        n_levels=3,
        depth=4,
        width=8,
        flow_coupling=0,
        flow_permutation=2,
        n_bits_x=5,
        learntop=True,
    )
    hps.update(change)
    hps = {key: value for key, value in hps.items() if value is not None}
    with pytest.raises(HpsError, match=message):
        config_from_hps(hps)


def test_unreadable_hps_files(tmp_path):
    with pytest.raises(HpsError, match="does not exist"):
        read_hps(tmp_path / "nope.json")
    (tmp_path / "bad.txt").write_text("not json\n{}")
    with pytest.raises(HpsError, match="neither a JSON object"):
        read_hps(tmp_path / "bad.txt")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(HpsError, match="JSON list"):
        read_hps(tmp_path / "list.json")
