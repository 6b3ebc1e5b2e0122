"""The config the official variables determine, and what they cannot."""

from __future__ import annotations

import numpy as np
import pytest

from glow_tf.porting import PortingError, config_from_hps, infer_config, read_hps
from tests.porting.conftest import VARIANTS
from tests.porting.openai_numpy import random_official_variables


def _shapes(variables):
    return {name: value.shape for name, value in variables.items()}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_inferred_config_equals_the_config_of_the_runs_hps(variant):
    hps = VARIANTS[variant]
    shapes = _shapes(random_official_variables(hps))
    inferred = infer_config(
        shapes,
        image_size=hps.image_size,
        num_bits=hps.n_bits_x,
        weight_y=hps.weight_y if hps.weight_y > 0 else None,
    )
    assert inferred.config == config_from_hps(hps.to_json_dict())
    assert inferred.provenance["num_steps"] == "weights"
    assert inferred.provenance["image_shape"] == "--image-size"
    with_hps = infer_config(shapes, hps=hps.to_json_dict())
    assert with_hps.config == inferred.config
    assert with_hps.provenance["num_bits"] == "hps"


def test_reference_variables_infer_the_fixture_config(reference):
    shapes = _shapes(reference.npz("vars_trained.npz"))
    inferred = infer_config(shapes, hps=read_hps(reference.dir / "hps.json"))
    assert inferred.config == reference.config


def test_flags_override_the_hps():
    hps = VARIANTS["lu_affine"]
    shapes = _shapes(random_official_variables(hps))
    inferred = infer_config(shapes, image_size=16, num_bits=8, hps=hps.to_json_dict())
    assert inferred.config.image_shape == (16, 16, 3) and inferred.config.num_bits == 8
    assert inferred.provenance["image_shape"] == "--image-size"


def test_classifier_without_weight_y_uses_the_official_value_and_says_so():
    hps = VARIANTS["shuffle_affine_3_levels_classifier"]
    inferred = infer_config(
        _shapes(random_official_variables(hps)), image_size=8, num_bits=5
    )
    assert inferred.config.weight_y == 0.01
    assert inferred.provenance["weight_y"] == "default"
    assert any("no weight_y was given" in note for note in inferred.notes)


def test_hps_that_contradict_the_weights_are_refused():
    hps = VARIANTS["shuffle_additive"]
    shapes = _shapes(random_official_variables(hps))
    wrong = {**hps.to_json_dict(), "depth": 32, "flow_coupling": 1}
    with pytest.raises(
        PortingError,
        match=r"contradict the weights: depth=32 \(weights: 2\), flow_coupling=1",
    ):
        infer_config(shapes, hps=wrong)


def test_image_shape_stated_by_a_graph_is_cross_checked():
    hps = VARIANTS["lu_affine"]
    shapes = _shapes(random_official_variables(hps))
    with pytest.raises(
        PortingError, match=r"disagrees with the file's input placeholder \(8, 8, 3\)"
    ):
        infer_config(shapes, image_size=16, num_bits=5, image_shape_hint=(8, 8, 3))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda v: [v.pop(n) for n in list(v) if n.startswith("model/1/")],
            r"levels \(model/<level>/\): found \[0, 2\], missing \[1\]",
        ),
        (
            lambda v: [v.pop(n) for n in list(v) if n.startswith("model/0/1/")],
            "different numbers of steps",
        ),
        (
            lambda v: v.update({"model/0/1/invconv/W": np.eye(12, dtype=np.float32)}),
            "several permutations",
        ),
        (
            lambda v: [v.pop(n) for n in list(v) if "y_emb" in n],
            "classifier without model/prior/y_emb",
        ),
        (
            lambda v: v.update(
                {"model/0/0/f1/l_last/W": np.zeros((3, 3, 9, 5), np.float32)}
            ),
            "5 outputs for 12 channels",
        ),
        (
            lambda v: [v.pop(n) for n in list(v) if n.startswith("model/")],
            "no OpenAI Glow flow-step",
        ),
    ],
    ids=[
        "level missing",
        "step missing",
        "mixed permutations",
        "classifier alone",
        "odd coupling",
        "nothing",
    ],
)
def test_names_that_form_no_official_glow(edit, message):
    hps = VARIANTS["shuffle_affine_3_levels_classifier"]
    variables = random_official_variables(hps)
    edit(variables)
    with pytest.raises(PortingError, match=message):
        infer_config(_shapes(variables), hps=hps.to_json_dict())
