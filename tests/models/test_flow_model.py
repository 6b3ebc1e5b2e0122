"""FlowModel: what a flow family gets for free, shown with a tiny family of its own."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from glow_tf import FlowModel, GlowConfig, GlowModel
from glow_tf.data.dequantize import UniformDequantization
from glow_tf.flow import ActNormLayer, FlowLayer, LevelLayer, ShuffleLayer, SqueezeLayer
from glow_tf.flow.act_norm import ActNorm
from tests.conftest import tiny_images

CONFIG = GlowConfig(image_shape=(4, 4, 1), num_levels=2, num_steps=1, hidden_channels=4, num_bits=5)


class TrainingProbe(ActNormLayer):
    """An ActNorm that counts the forward calls it sees with training=True."""

    def build(self, input_shape):
        super().build(input_shape)
        self.training_calls = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="training_calls"
        )

    def call_has_side_effects(self, training=False):
        return bool(training) or super().call_has_side_effects(training)

    def call(self, inputs, inverse=False, training=None):
        if training and not inverse:
            self.training_calls.assign_add(1.0)
        return super().call(inputs, inverse=inverse, training=training)


class TinyFamily(FlowModel):
    """Two levels of (squeeze, ActNorm, shuffle), the first factoring out half,
    a standard-normal top, and an L2 penalty on the ActNorm log-scales."""

    config_class = GlowConfig

    @classmethod
    def make_levels(cls, config, dtype=None):
        def level(i, top):
            steps = [
                TrainingProbe(dtype=dtype, name="probe"),
                ShuffleLayer(seed=i, dtype=dtype, name="shuffle"),
            ]
            return LevelLayer(
                steps,
                squeeze=SqueezeLayer(dtype=dtype, name="squeeze"),
                factor_out=0.0 if top else 0.5,
                dtype=dtype,
                name=f"level_{i}",
            )

        return [level(i, i == config.num_levels - 1) for i in range(config.num_levels)]


@pytest.fixture(scope="module")
def family():
    model = TinyFamily(CONFIG)
    model.initialize(tiny_images(16, CONFIG.image_shape, seed=0))
    return model


def test_a_family_supplies_only_levels_and_gets_encode_decode(family):
    assert family.latent_shapes == ((2, 2, 2), (1, 1, 8))
    assert TinyFamily.latent_shapes_for(CONFIG) == [(2, 2, 2), (1, 1, 8)]
    images = tiny_images(3, CONFIG.image_shape, seed=1)
    noise = np.full(images.shape, 0.5 / CONFIG.num_bins, np.float32)
    encoding = family.encode(images, noise=noise)
    assert encoding.flat.shape == [3, CONFIG.num_dims]
    back = family.decode(encoding.latents).numpy()
    step = 256 // CONFIG.num_bins
    np.testing.assert_array_equal(back, images // step * step)


def test_the_training_flag_reaches_every_flow_layer(family):
    probes = [level.steps[0] for level in family.levels]
    before = [float(p.training_calls.numpy()) for p in probes]
    family.compile(keras.optimizers.Adam(1e-3))
    images = tiny_images(8, CONFIG.image_shape, seed=2)
    family.fit(tf.data.Dataset.from_tensor_slices(images).batch(4), epochs=1, verbose=0)
    after = [float(p.training_calls.numpy()) for p in probes]
    assert [a - b for a, b in zip(after, before)] == [2.0, 2.0]
    family.evaluate(tf.data.Dataset.from_tensor_slices(images).batch(4), verbose=0)
    family.encode(images)
    assert [float(p.training_calls.numpy()) for p in probes] == after


def test_train_step_adds_the_layers_losses():
    model = TinyFamily(CONFIG)
    model.initialize(tiny_images(16, CONFIG.image_shape, seed=0))
    probe = model.levels[0].steps[0]
    probe.logs.regularizer = keras.regularizers.L2(0.25)
    expected = 0.25 * float(tf.reduce_sum(tf.square(probe.logs)))
    assert expected > 0 and len(model.losses) == 1
    model.compile(keras.optimizers.SGD(0.0))
    logs = model.train_on_batch(tiny_images(4, CONFIG.image_shape, seed=3), return_dict=True)
    assert logs["loss"] - logs["bits_per_dim"] == pytest.approx(expected, rel=1e-4)
    logs = model.test_on_batch(tiny_images(4, CONFIG.image_shape, seed=3), return_dict=True)
    assert logs["loss"] == pytest.approx(logs["bits_per_dim"], rel=1e-6)


class HalfBinDequantization(UniformDequantization):
    """Uniform noise on half of each bin: log q = D log(2 n_bins)."""

    def call(self, bins, noise=None, training=None):
        x, log_q = super().call(bins, noise=noise, training=training)
        return x, log_q + math.prod(bins.shape[1:]) * math.log(2.0)


def test_the_dequantizer_is_pluggable_and_its_log_q_enters_the_objective():
    model = GlowModel(CONFIG)
    model.initialize(tiny_images(16, CONFIG.image_shape, seed=0))
    other = GlowModel(CONFIG, dequantizer=HalfBinDequantization(CONFIG.num_bits))
    other.set_weights(model.get_weights())
    images = tiny_images(4, CONFIG.image_shape, seed=4)
    noise = np.full(images.shape, 0.25 / CONFIG.num_bins, np.float32)
    plain = model.bits_per_dim(images, noise=noise).numpy()
    shifted = other.bits_per_dim(images, noise=noise).numpy()
    np.testing.assert_allclose(shifted - plain, 1.0, rtol=1e-5)


def test_one_seed_stream_gives_every_initial_weight():
    first, second = GlowModel(CONFIG), GlowModel(CONFIG)
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    other = GlowModel(CONFIG.replace(seed=1))
    kernels = [
        (a.numpy(), b.numpy())
        for a, b in zip(first.weights, other.weights)
        if a.path.endswith("conv_in/kernel")
    ]
    assert len(kernels) == CONFIG.num_levels * CONFIG.num_steps
    assert not any(np.array_equal(a, b) for a, b in kernels)
    steps = [w.numpy() for w in first.weights if w.path.endswith("permutation/kernel")]
    assert not np.array_equal(steps[0], steps[1]), "two steps drew the same 1x1 conv"


def test_act_norm_bijector_is_pure_and_init_happens_in_the_layer():
    layer = ActNormLayer()
    layer.build((None, 2, 2, 3))
    bijector = layer.bijector()
    assert isinstance(bijector, ActNorm)
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, (8, 2, 2, 3)), tf.float32)
    bijector.forward_and_log_det(x)
    np.testing.assert_array_equal(layer.bias.numpy(), 0.0)
    from glow_tf.flow.act_norm import data_dependent_init

    with data_dependent_init():
        y, _ = layer(x)
    np.testing.assert_allclose(tf.reduce_mean(y, [0, 1, 2]), 0.0, atol=1e-5)
    assert isinstance(layer, FlowLayer)


def _seeded_steps(noise_seed, steps=2):
    model = GlowModel(CONFIG)
    init = tiny_images(16, CONFIG.image_shape, seed=0)
    model.initialize(init, noise=np.full(init.shape, 0.5 / CONFIG.num_bins, np.float32))
    model.compile(keras.optimizers.SGD(0.1), noise_seed=noise_seed)
    images = tiny_images(4, CONFIG.image_shape, seed=5)
    for _ in range(steps):
        model.train_on_batch(images)
    return model, [w.numpy() for w in model.trainable_variables]


def test_seeded_training_noise_is_drawn_from_the_seed_and_the_step():
    model, weights = _seeded_steps(noise_seed=7)
    _, again = _seeded_steps(noise_seed=7)
    _, other_seed = _seeded_steps(noise_seed=8)
    for a, b in zip(weights, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights, other_seed, strict=True))
    seed = model._training_noise_seed().numpy()
    assert seed.tolist() == [7, 2]  # the seed and the optimizer's step
    bins = np.zeros((4, *CONFIG.image_shape), np.float32)
    x, _ = model.dequantizer(bins, seed=seed)
    expected = tf.random.stateless_uniform(bins.shape, seed, maxval=1 / CONFIG.num_bins)
    np.testing.assert_array_equal(x.numpy(), expected.numpy() - 0.5)
    reloaded = keras.models.load_model(_saved(model))
    assert reloaded.noise_seed == 7
    with pytest.raises(ValueError, match="noise_seed must be an int or None"):
        model.compile(keras.optimizers.SGD(0.1), noise_seed=1.5)
    other = GlowModel(CONFIG, dequantizer=HalfBinDequantization(CONFIG.num_bits))
    with pytest.raises(ValueError, match="HalfBinDequantization draws no seeded noise"):
        other.compile(keras.optimizers.SGD(0.1), noise_seed=7)


def _saved(model):
    import tempfile

    path = tempfile.mkdtemp() + "/model.keras"
    model.save(path)
    return path
