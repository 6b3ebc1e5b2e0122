"""Every official variable of the full-size models maps onto a GlowModel weight.

The models are built in a `keras.StatelessScope` (weights never allocated), and
the port's own mapping (`openai_weight_slots`, `plan_port`) runs on the names
and shapes listed from the official models.
"""

from __future__ import annotations

import ast
import re

import keras
import numpy as np
import pytest

from glow_tf import GlowModel
from glow_tf.porting import (
    config_from_hps,
    infer_config,
    openai_weight_slots,
    plan_port,
)
from glow_tf.porting.port import unallocated_model
from tests.conftest import OPENAI_REFERENCE

# the official README's commands for these runs
CIFAR10 = dict(
    image_size=32,
    n_levels=3,
    depth=32,
    width=512,
    flow_permutation=2,
    flow_coupling=1,
    learntop=True,
    n_bits_x=8,
)
CELEBA_HQ = dict(
    image_size=256,
    n_levels=6,
    depth=32,
    width=512,
    flow_permutation=2,
    flow_coupling=0,
    learntop=True,
    n_bits_x=5,
)


def read_varnames(path):
    """({name: shape}, eps shapes, number of variables, trainable parameters)."""
    shapes, eps_shapes, count, parameters = {}, None, None, None
    for line in path.read_text().splitlines():
        if line.startswith("eps shapes:"):
            eps_shapes = [
                tuple(shape)
                for shape in ast.literal_eval(line.split(":", 1)[1].strip())
            ]
        elif line.startswith("n model variables:"):
            count, parameters = map(int, re.findall(r"(\d+)(?![\d.]*M)", line)[:2])
        elif line.strip():
            name, shape = line.split(None, 1)
            shapes[name] = tuple(ast.literal_eval(shape.strip()))
    return shapes, eps_shapes, count, parameters


def test_celeba_hq_full_list_maps_exactly():
    shapes, eps_shapes, count, parameters = read_varnames(
        OPENAI_REFERENCE / "varnames_celebahq_L6_K32_W512_full.txt"
    )
    assert len(shapes) == count == 2322
    inferred = infer_config(shapes, hps=CELEBA_HQ)
    assert inferred.config == config_from_hps(CELEBA_HQ)
    assert GlowModel.latent_shapes_for(inferred.config) == eps_shapes
    plan = plan_port(shapes, inferred.config)
    assert sorted(name for name, _ in plan) == sorted(shapes)
    paths = [path for _, path in plan]
    assert len(set(paths)) == len(paths)
    assert sum(int(np.prod(shape)) for shape in shapes.values()) == parameters


def test_cifar10_list_maps_and_the_model_has_exactly_its_variables():
    """The CIFAR-10 list shows step 0 of each level and the totals of the model."""
    shapes, eps_shapes, count, parameters = read_varnames(
        OPENAI_REFERENCE / "varnames_cifar10_L3_K32_W512.txt"
    )
    config = config_from_hps(CIFAR10)
    assert GlowModel.latent_shapes_for(config) == eps_shapes
    with unallocated_model(config) as model:
        slots = {slot.name: slot for slot in openai_weight_slots(model)}
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    for name, shape in shapes.items():
        assert name in slots, name
        assert tuple(slots[name].shape) == shape, name
        assert int(np.prod(slots[name].variable.shape)) == int(np.prod(shape)), name
    assert len(slots) == count == 1161
    assert sum(int(np.prod(slot.shape)) for slot in slots.values()) == parameters
    assert trainable == parameters


def test_unallocated_model_leaves_nothing_to_allocate_later():
    from keras.src.backend.common import global_state

    with unallocated_model(config_from_hps({**CIFAR10, "depth": 1})) as model:
        assert model.levels[0].steps[0].permutation.kernel._value is None
    with keras.StatelessScope():
        pass  # would allocate any weight left deferred
    assert not global_state.get_global_attribute("uninitialized_variables", None)


def test_a_normal_model_still_draws_its_random_rotations():
    from glow_tf.flow.conv1x1 import random_rotation

    model = GlowModel(
        config_from_hps({**CIFAR10, "depth": 1, "width": 4, "n_levels": 1})
    )
    layer = model.levels[0].steps[0].permutation
    np.testing.assert_array_equal(layer.kernel.numpy(), random_rotation(12, layer.seed))


def test_dry_run_refuses_what_the_real_port_refuses():
    shapes, *_ = read_varnames(OPENAI_REFERENCE / "varnames_cifar10_L3_K32_W512.txt")
    config = config_from_hps({**CIFAR10, "depth": 1})
    from glow_tf.porting import PortingError

    plan = plan_port(shapes, config)
    assert len(plan) == len(shapes)
    with pytest.raises(PortingError, match="unknown scopes"):
        plan_port({**shapes, "model/3/0/actnorm_center/b": (1, 1, 1, 96)}, config)
    with pytest.raises(
        PortingError,
        match=r"model/prior/p/W: expected shape \[3, 3, 97, 96\], found \[3, 3, 97, 48\]",
    ):
        plan_port({**shapes, "model/prior/p/W": (3, 3, 97, 48)}, config)
