"""The run's model config on its data: one replace of shape, classes and changes."""

import pytest

from glow_tf.data.source import DataSource
from glow_tf.presets import PRESETS
from glow_tf.training.run import model_config_for_source


def _source(image_shape, num_classes):
    return DataSource("fake", image_shape, num_classes, (), examples=lambda split: None)


def test_the_data_sets_shape_and_classes():
    model = PRESETS["digits_conditional"].model
    config = model_config_for_source(model, _source((16, 16, 3), 7), num_steps=2)
    assert config == model.replace(image_shape=(16, 16, 3), num_classes=7, num_steps=2)
    assert config.weight_y == 0.01


def test_conditional_on_and_off():
    unconditional = PRESETS["digits"].model
    config = model_config_for_source(
        unconditional, _source((8, 8, 1), 10), conditional=True, weight_y=0.5
    )
    assert (config.num_classes, config.weight_y) == (10, 0.5)
    config = model_config_for_source(
        PRESETS["digits_conditional"].model, _source((8, 8, 1), 10), conditional=False
    )
    assert (config.num_classes, config.weight_y) == (0, 0.0)
    # the source's labels are not used by an unconditional model
    assert model_config_for_source(unconditional, _source((8, 8, 1), 10)).num_classes == 0


@pytest.mark.parametrize(
    "source, changes, message",
    [
        (_source((8, 8, 3), 0), dict(conditional=True), "has no class labels"),
        (_source((12, 12, 3), 0), dict(num_levels=3), "12x12 cannot be squeezed 3 times"),
        (_source((8, 8, 3), 0), dict(network_dtype="int8"), "unknown network_dtype"),
    ],
)
def test_bad_combinations_are_refused(source, changes, message):
    with pytest.raises(ValueError, match=message):
        model_config_for_source(PRESETS["digits"].model, source, **changes)


def test_resuming_needs_the_same_dequantization():
    from glow_tf import GlowConfig
    from glow_tf.training.checkpoint import Checkpoint
    from glow_tf.training.config import TrainingConfig
    from glow_tf.training.resume import check_compatible, optimizer_layout

    config = GlowConfig(image_shape=(8, 8, 1), num_levels=2)
    uniform = optimizer_layout(config, TrainingConfig())
    variational = optimizer_layout(config, TrainingConfig(dequantization="variational"))
    older = {k: v for k, v in uniform.items() if k != "dequantization"}  # before the field
    for saved, wanted in ((uniform, uniform), (older, uniform), (variational, variational)):
        state = {"config": config.to_dict(), "optimizer_layout": saved}
        check_compatible(Checkpoint("run/checkpoints/epoch-1", 1, state), config, wanted)
    for saved, wanted in ((older, variational), (variational, uniform)):
        state = {"config": config.to_dict(), "optimizer_layout": saved}
        with pytest.raises(ValueError, match="dequantization: checkpoint"):
            check_compatible(Checkpoint("run/checkpoints/epoch-1", 1, state), config, wanted)
