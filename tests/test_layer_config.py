"""Every Keras layer of glow_tf round-trips through its config.

The layers are discovered, not listed: every `keras.layers.Layer` subclass
registered with `register_keras_serializable(package="glow_tf")` in any
module of the package. `CASES` holds how to build and run each; a layer it
does not cover fails `test_every_registered_layer_has_a_case`. The `.keras`
save and reload of a whole model is `tests/test_model.py`
(`test_keras_file_reloads_identically`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import pkgutil
from collections.abc import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf

import glow_tf
from tests.conftest import TINY, tiny_images

PACKAGE = "glow_tf"


@functools.cache
def registered_layers() -> dict[str, type]:
    """{class name: class} of every Keras layer registered in package glow_tf."""
    for module in pkgutil.walk_packages(glow_tf.__path__, f"{PACKAGE}."):
        importlib.import_module(module.name)
    prefix = f"{PACKAGE}>"
    return {
        name[len(prefix) :]: cls
        for name, cls in keras.saving.get_custom_objects().items()
        if name.startswith(prefix) and isinstance(cls, type) and issubclass(cls, keras.layers.Layer)
    }


def _images(layer, x):
    return layer(x)


def _dequantization(layer, bins):
    return layer(bins, noise=tf.fill(tf.shape(bins), 0.01))


def _with_context(layer, x):
    context = tf.constant(np.random.default_rng(1).normal(size=(2, 4, 4, 3)), tf.float32)
    return layer(x, context=context), layer(x, inverse=True, context=context)


def _top_prior(layer, y):
    return layer.gaussian(y)


def _glow_model(layer, images):
    noise = tf.random.stateless_uniform(images.shape, [1, 2], 0, 1 / TINY.num_bins)
    return layer.encode(images, noise=noise)


@dataclasses.dataclass(frozen=True)
class Case:
    """How to build and run one layer class.

    kwargs: constructor arguments (not the defaults, where that is possible,
      so that an argument the config drops is caught).
    input_shape: what `build` gets (None: `build()` without a shape, or the
      layer builds itself in __init__).
    inputs: a batch for `run`.
    run: (layer, inputs) -> outputs (any nest of tensors).
    """

    kwargs: dict
    input_shape: tuple | None
    inputs: Callable[[], object]
    run: Callable = _images


def _normal(*shape):
    return lambda: tf.constant(np.random.default_rng(0).normal(size=shape), tf.float32)


EVENTS = (2, 4, 4, 4)
CASES = {
    "ActNormLayer": Case({}, (None, 4, 4, 4), _normal(*EVENTS)),
    "ReverseLayer": Case({}, (None, 4, 4, 4), _normal(*EVENTS)),
    "ShuffleLayer": Case(dict(seed=3), (None, 4, 4, 4), _normal(*EVENTS)),
    "Conv1x1Layer": Case(dict(seed=3), (None, 4, 4, 4), _normal(*EVENTS)),
    "Conv1x1LULayer": Case(dict(seed=3), (None, 4, 4, 4), _normal(*EVENTS)),
    "CouplingLayer": Case(
        dict(coupling="additive", hidden_channels=6, network_dtype="float32", seed=3),
        (None, 4, 4, 4),
        _normal(*EVENTS),
    ),
    "SplitLayer": Case({}, (None, 4, 4, 4), _normal(*EVENTS)),
    "FlowStepLayer": Case(
        dict(
            coupling="additive",
            permutation="conv1x1",
            lu_decomposed=True,
            hidden_channels=6,
            network_dtype="float32",
            seed=3,
        ),
        (None, 4, 4, 4),
        _normal(*EVENTS),
    ),
    "UniformDequantization": Case(
        dict(num_bits=5),
        (None, 4, 4, 1),
        lambda: tf.constant(np.arange(32, dtype=np.float32).reshape(2, 4, 4, 1)),
        _dequantization,
    ),
    "VariationalDequantization": Case(
        dict(num_bits=3, num_steps=2, hidden_channels=6, seed=3),
        (None, 4, 4, 1),
        lambda: tf.constant(np.arange(32, dtype=np.float32).reshape(2, 4, 4, 1) % 8),
        _dequantization,
    ),
    "ConditionalCouplingLayer": Case(
        dict(
            context_channels=3,
            coupling="affine",
            hidden_channels=6,
            network_dtype="float32",
            seed=3,
        ),
        (None, 4, 4, 4),
        _normal(*EVENTS),
        _with_context,
    ),
    "ActNormalization": Case({}, (None, 4, 4, 4), _normal(*EVENTS)),
    "ConvActNorm": Case(
        dict(filters=6, kernel_size=1, seed=3), (None, 4, 4, 2), _normal(2, 4, 4, 2)
    ),
    "ZeroConv2D": Case(dict(filters=6, kernel_size=1), (None, 4, 4, 2), _normal(2, 4, 4, 2)),
    "LinearZeros": Case(dict(units=5), (None, 3), _normal(2, 3)),
    "CouplingNetwork": Case(
        dict(hidden_channels=6, out_channels=4, seed=3), (None, 4, 4, 2), _normal(2, 4, 4, 2)
    ),
    "TopPriorLayer": Case(
        dict(top_shape=(2, 2, 4), learn_top=False, num_classes=3),
        None,
        lambda: tf.constant([0, 2]),
        _top_prior,
    ),
    "GlowModel": Case(
        dict(config=TINY),
        None,
        lambda: tf.constant(tiny_images(2, TINY.image_shape)),
        _glow_model,
    ),
}


def _realnvp_model(layer, images):
    noise = tf.random.stateless_uniform(images.shape, [1, 2], 0, 1 / 256)
    return layer.encode(images, noise=noise)


def _unit_images(*shape):
    return lambda: 0.45 * tf.tanh(_normal(*shape)())


_CHECKERBOARD = {"kind": "checkerboard", "parity": 0, "keep": "first"}
_CHANNEL = {"kind": "channel", "parity": 1, "keep": "second"}
CASES.update(
    {
        "SqueezeLayer": Case(
            dict(factor=2, order="diagonal_first", unsqueeze=False), (None, 4, 4, 4), _normal(*EVENTS)
        ),
        "DataConstraintLogitLayer": Case(
            dict(alpha=0.8, offset=0.5), (None, 4, 4, 4), _unit_images(*EVENTS)
        ),
        "MaskedCouplingLayer": Case(
            dict(mask=_CHANNEL, coupling="affine", hidden_channels=6, num_blocks=2, skip=False,
                 batch_norm=False, l2_penalty=0.01, seed=3),
            (None, 4, 4, 4),
            _normal(*EVENTS),
        ),
        "FlowBatchNormLayer": Case(dict(mask=_CHECKERBOARD), (None, 4, 4, 4), _normal(*EVENTS)),
        "RealNVPCouplingLayer": Case(
            dict(mask=_CHECKERBOARD, coupling="additive", hidden_channels=6, num_blocks=1,
                 skip=True, batch_norm=True, l2_penalty=0.0, seed=3),
            (None, 4, 4, 4),
            _normal(*EVENTS),
        ),
        "WeightNormConv2D": Case(
            dict(filters=6, kernel_size=3, use_magnitude=False, use_bias=True,
                 magnitude_regularizer=None, seed=3),
            (None, 4, 4, 2),
            _normal(2, 4, 4, 2),
        ),
        "RealNVPResNet": Case(
            dict(hidden_channels=6, output_channels=4, num_blocks=2, skip=True, batch_norm=True,
                 mask_channel=True, input_scale=2.0, magnitude_regularizer=None, seed=3),
            (None, 4, 4, 3),
            _normal(2, 4, 4, 3),
        ),
        "RealNVPModel": Case(
            dict(config=glow_tf.RealNVPConfig(image_shape=(4, 4, 1), num_levels=2,
                                              hidden_channels=4, num_blocks=1)),
            None,
            lambda: tf.constant(tiny_images(2, (4, 4, 1))),
            _realnvp_model,
        ),
    }
)


def test_every_registered_layer_has_a_case():
    found = set(registered_layers())
    assert found - set(CASES) == set(), (
        f"Keras layers of glow_tf without a case in {__name__}.CASES: "
        f"{sorted(found - set(CASES))}; add one (constructor args, input shape, how to run it)"
    )
    assert set(CASES) - found == set(), f"CASES for layers not found: {set(CASES) - found}"


def _build(cls, case: Case, config=None):
    layer = cls(**case.kwargs) if config is None else cls.from_config(config)
    if case.input_shape is not None:
        layer.build(case.input_shape)
    elif not layer.built:
        layer.build()
    return layer


def _perturb(layer, seed=0):
    """Random trainable weights, so the outputs depend on every one of them
    (many start at zero)."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_weights:
        value = variable.numpy()
        variable.assign(value + 0.1 * rng.standard_normal(value.shape).astype(value.dtype))


def _plain(value):
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    return value


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_config_round_trip(name):
    cls = registered_layers()[name]
    case = CASES[name]
    layer = _build(cls, case)
    config = layer.get_config()

    arguments = [
        parameter
        for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]
        if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    ]
    missing = [p.name for p in arguments if p.name not in config]
    assert not missing, f"{name}.get_config() lacks constructor arguments {missing}"
    for key, value in case.kwargs.items():
        assert config[key] == _plain(value), (key, config[key], value)

    clone = _build(cls, case, config)
    assert type(clone) is cls
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is cls and revived.get_config() == config

    _perturb(layer)
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    clone.set_weights(layer.get_weights())
    inputs = case.inputs()
    expected = tf.nest.flatten(case.run(layer, inputs))
    actual = tf.nest.flatten(case.run(clone, inputs))
    assert len(actual) == len(expected) > 0
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))
