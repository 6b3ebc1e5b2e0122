"""Acceptance: official weights ported from checkpoints and frozen graphs reproduce
the official outputs (ref_A, ref_B) and an independent numpy implementation of
the official math (LU, shuffle, reverse, no learntop, ycond variants)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from glow_tf import GlowModel
from glow_tf.flow.squeeze import squeeze2d
from glow_tf.porting import (
    PortingError,
    compare_with_reference,
    format_report,
    port_checkpoint,
    port_frozen_graph,
    read_checkpoint,
)
from tests.conftest import tiny_images
from tests.porting import openai_numpy

TOL = 1e-4  # the numpy oracle's random variants, and the check tool's default
# ref_A / ref_B (official outputs) measured from either format: bits_x 4.8e-7 (one
# float32 ulp of bits/dim in [4, 8)), latents 2.9e-6, step intermediates 4.8e-6,
# x_rec and T = 0.7 samples exact; the tolerances keep a margin of about 2x.
BITS_TOL = 1e-6
LATENT_TOL = 6e-6
STEP_TOL = 1e-5


# ------------------------------------------------------------- ref_A, ref_B


def test_ported_config_is_the_official_one(reference, ported_reference):
    config = ported_reference.model.config
    expected = reference.config
    if ported_reference.model.classifier is None and expected.weight_y > 0:
        # a frozen encode/decode graph has no classifier head
        expected = expected.replace(weight_y=0.0)
        assert any("classifier" in note for note in ported_reference.notes)
    assert config == expected
    assert ported_reference.model.is_initialized


def test_every_official_quantity_matches(reference, ported_reference):
    comparisons = compare_with_reference(ported_reference.model, reference.dir)
    report = format_report(comparisons)
    assert report.endswith("PASS"), report
    names = {c.name for c in comparisons if c.max_abs_diff is not None}
    official = set(reference.npz("ref_forward.npz"))
    if ported_reference.model.classifier is None:
        official -= {"y_logits", "bits_y"}
    assert official <= names
    assert {"feps", "x_rec", "samples_t0.7/x_uint8"} <= names


def test_bits_latents_and_every_step_intermediate(reference, ported_reference):
    model = ported_reference.model
    forward = reference.npz("ref_forward.npz")
    x, noise, y = (
        reference.npy("x_ref.npy"),
        reference.npy("noise_ref.npy"),
        reference.labels(),
    )
    encoding = model.encode(x, y, noise=noise)
    np.testing.assert_allclose(encoding.bits_per_dim, forward["bits_x"], atol=BITS_TOL)
    for i in range(model.config.num_levels - 1):
        np.testing.assert_allclose(
            encoding.latents[i], forward[f"level{i}_split_eps"], atol=LATENT_TOL
        )
    np.testing.assert_allclose(encoding.latents[-1], forward["top_eps"], atol=LATENT_TOL)
    z = forward["z_squeezed"]
    for i, level in enumerate(model.levels):
        for j, step in enumerate(level.steps):
            name = f"step{i}_{j}_"
            np.testing.assert_allclose(z, forward[name + "in"], atol=STEP_TOL, err_msg=name)
            normed, log_det = step.act_norm(z)
            np.testing.assert_allclose(
                normed, forward[name + "actnorm"], atol=STEP_TOL, err_msg=name
            )
            permuted, log_det_perm = step.permutation(normed)
            np.testing.assert_allclose(
                permuted, forward[name + "perm"], atol=STEP_TOL, err_msg=name
            )
            half = permuted.shape[-1] // 2
            h = step.coupling.network(permuted[..., :half])
            np.testing.assert_allclose(h, forward[name + "nn"], atol=STEP_TOL, err_msg=name)
            z, log_det_coupling = step.coupling(permuted)
            np.testing.assert_allclose(z, forward[name + "out"], atol=STEP_TOL, err_msg=name)
            np.testing.assert_allclose(
                log_det + log_det_perm + log_det_coupling,
                forward[name + "logdet"],
                rtol=1e-6,
            )
        if level.split is not None:
            split, _ = level.split(z)
            half = z.shape[-1] // 2
            np.testing.assert_allclose(
                split[..., half:], forward[f"level{i}_split_eps"], atol=STEP_TOL
            )
            z = squeeze2d(split[..., :half])
    np.testing.assert_allclose(z, forward["z_top"], atol=STEP_TOL)


def test_decode_and_temperature_samples(reference, ported_reference):
    model = ported_reference.model
    codec = reference.npz("ref_encode_decode.npz")
    y = reference.labels()
    np.testing.assert_array_equal(model.decode(codec["feps"], y), codec["x_rec"])
    samples = reference.npz("ref_samples_t0.7.npz")
    y = samples["y"] if reference.config.conditional else None
    images = model.decode(samples["sample_eps"], y, temperature=0.7)
    np.testing.assert_array_equal(images, samples["x_uint8"])


def test_class_conditional_bits_y_and_logits_from_checkpoint():
    from tests.conftest import Reference

    reference = Reference("ref_B")
    model = port_checkpoint(
        reference.dir / "ckpt_trained", hps=reference.dir / "hps.json"
    ).model
    assert model.classifier is not None
    forward = reference.npz("ref_forward.npz")
    x, noise, y = (
        reference.npy("x_ref.npy"),
        reference.npy("noise_ref.npy"),
        reference.labels(),
    )
    np.testing.assert_allclose(
        model.encode(x, y, noise=noise).bits_per_dim, forward["bits_x"], atol=BITS_TOL
    )
    comparisons = {c.name: c for c in compare_with_reference(model, reference.dir)}
    assert comparisons["y_logits"].max_abs_diff <= BITS_TOL
    assert comparisons["bits_y"].max_abs_diff <= BITS_TOL
    assert np.abs(forward["y_logits"]).max() > 1e-3  # the head is not at its zero init


def test_ema_port_takes_the_averages():
    from tests.conftest import Reference

    reference = Reference("ref_A")
    raw = read_checkpoint(reference.dir / "ckpt_trained")
    ema = read_checkpoint(reference.dir / "ckpt_trained", ema=True)
    assert set(raw.variables) == set(ema.variables)
    assert all(not name.startswith("Variable") for name in raw.variables)
    name = "model/0/0/invconv/W"
    assert not np.array_equal(raw.variables[name], ema.variables[name])
    trained = reference.npz("vars_trained.npz")
    np.testing.assert_array_equal(raw.variables[name], trained[name])
    model = port_checkpoint(
        reference.dir / "ckpt_trained", ema=True, hps=reference.dir / "hps.json"
    ).model
    np.testing.assert_array_equal(
        model.levels[0].steps[0].permutation.kernel.numpy(), ema.variables[name]
    )


# ------------------------------------------------------------ save and fit


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory):
    """ref_B ported from its checkpoint, saved to .keras and loaded back."""
    from tests.conftest import Reference

    reference = Reference("ref_B")
    ported = port_checkpoint(
        reference.dir / "ckpt_trained", hps=reference.dir / "hps.json"
    ).model
    path = tmp_path_factory.mktemp("saved") / "ref_b.keras"
    ported.save(path)
    return reference, ported, keras.models.load_model(path)


def test_saved_port_reloads_with_the_same_outputs(reloaded):
    reference, ported, model = reloaded
    assert isinstance(model, GlowModel) and model.is_initialized
    assert model.config == ported.config
    x, noise, y = (
        reference.npy("x_ref.npy"),
        reference.npy("noise_ref.npy"),
        reference.labels(),
    )
    np.testing.assert_array_equal(
        model.bits_per_dim(x, y, noise=noise), ported.bits_per_dim(x, y, noise=noise)
    )
    assert format_report(compare_with_reference(model, reference.dir)).endswith("PASS")


def test_reloaded_port_fine_tunes_without_data_dependent_init(reloaded):
    reference, _, model = reloaded
    before = {w.path: w.numpy().copy() for w in model.weights}
    images = np.concatenate([reference.npy("x_ref.npy")] * 4)
    labels = np.concatenate([reference.npy("y_ref.npy")] * 4).astype(np.int32)
    model.compile(keras.optimizers.Adamax(2e-3))
    history = model.fit(
        images, labels, batch_size=16, epochs=6, shuffle=False, verbose=0
    )
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 0.01, losses
    # fine-tuning moved the weights from the official values, not an init
    kernel = model.levels[0].steps[0].act_norm.bias
    assert not np.array_equal(kernel.numpy(), before[kernel.path])
    assert int(model.initialized.numpy()) == 1


def test_port_marks_the_model_initialised_so_no_init_runs():
    """fit refuses uninitialised models; a port is initialised and its ActNorm
    values stay the official ones until the optimizer moves them."""
    from tests.conftest import Reference

    reference = Reference("ref_A")
    model = port_frozen_graph(
        reference.dir / "graph_frozen.pb", hps=reference.dir / "hps.json"
    ).model
    trained = reference.npz("vars_trained.npz")
    model.encode(tiny_images(4, (16, 16, 3)))
    np.testing.assert_array_equal(
        model.levels[1].steps[1].act_norm.bias.numpy(),
        trained["model/1/1/actnorm_center/b"].reshape(-1),
    )
    assert GlowModel(model.config).is_initialized is False


# ---------------------------------------------------------------- variants


@pytest.mark.parametrize(
    "variant",
    [
        "lu_affine",
        "shuffle_additive",
        "reverse_affine_no_learntop",
        "ycond_no_classifier_no_learntop",
        "shuffle_affine_3_levels_classifier",
    ],
)
def test_variant_matches_the_numpy_oracle(official_runs, weight_source, variant):
    run = official_runs[variant]
    hps = run.hps
    if weight_source == "checkpoint":
        result = port_checkpoint(run.checkpoint, hps=run.hps_path)
    else:
        result = port_frozen_graph(run.graph, hps=run.hps_path)
    model = result.model
    config = model.config
    assert config.permutation == ["reverse", "shuffle", "conv1x1"][hps.flow_permutation]
    assert config.lu_decomposed == hps.use_lu
    assert config.learn_top == hps.learntop
    assert config.num_classes == (hps.n_y if hps.ycond else 0)
    assert (model.classifier is not None) == (hps.weight_y > 0)
    assert result.num_variables == len(run.variables)

    comparisons = compare_with_reference(model, run.reference)
    assert format_report(comparisons).endswith("PASS"), format_report(comparisons)
    assert all(c.max_abs_diff is not None for c in comparisons)

    outputs = openai_numpy.reference_outputs(run.variables, hps)
    x, y, noise = outputs["x_ref.npy"], outputs["y_ref.npy"], outputs["noise_ref.npy"]
    y = y if hps.ycond else None
    encoding = model.encode(x, y, noise=noise)
    forward = outputs["ref_forward.npz"]
    np.testing.assert_allclose(encoding.bits_per_dim, forward["bits_x"], atol=TOL)
    np.testing.assert_allclose(
        encoding.flat, outputs["ref_encode_decode.npz"]["feps"], atol=TOL
    )
    np.testing.assert_array_equal(
        model.decode(encoding.flat, y), outputs["ref_encode_decode.npz"]["x_rec"]
    )


def test_lu_port_assembles_w_like_the_official_code(official_runs):
    run = official_runs["lu_affine"]
    model = port_checkpoint(run.checkpoint, hps=run.hps_path).model
    layer = model.levels[1].steps[0].permutation
    w, _, _ = openai_numpy._invconv_matrices(run.variables, "model/1/0/", 1)
    np.testing.assert_allclose(layer.bijector().kernel.numpy(), w, atol=1e-5)


@pytest.mark.parametrize("variant", ["lu_affine", "shuffle_affine_3_levels_classifier"])
def test_ported_variant_saves_and_reloads(official_runs, tmp_path, variant):
    run = official_runs[variant]
    model = port_frozen_graph(run.graph, hps=run.hps_path).model
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert format_report(compare_with_reference(reloaded, run.reference)).endswith(
        "PASS"
    )


# --------------------------------------------------------------- bad input


def _broken(run, edit) -> dict:
    variables = {name: value.copy() for name, value in run.variables.items()}
    edit(variables)
    return variables


def _port_variables(variables, **kwargs):
    from glow_tf.porting import OpenAIWeights, port_openai_weights

    return port_openai_weights(OpenAIWeights(variables, source="test"), **kwargs)


def test_missing_variable_is_named(official_runs):
    run = official_runs["lu_affine"]
    variables = _broken(run, lambda v: v.pop("model/1/1/f1/l_2/actnorm_scale/logs"))
    with pytest.raises(PortingError, match="model/1/1/f1/l_2/actnorm_scale/logs"):
        _port_variables(variables, hps=run.hps.to_json_dict())


def test_shape_mismatch_names_expected_and_found(official_runs):
    run = official_runs["shuffle_additive"]

    def edit(v):
        v["model/0/1/f1/l_2/W"] = np.zeros((1, 1, 8, 9), np.float32)

    with pytest.raises(
        PortingError,
        match=r"model/0/1/f1/l_2/W: expected shape \[1, 1, 8, 8\], found \[1, 1, 8, 9\]",
    ):
        _port_variables(_broken(run, edit), hps=run.hps.to_json_dict())


def test_unknown_scopes_are_refused(official_runs):
    run = official_runs["reverse_affine_no_learntop"]

    def edit(v):
        v["model/0/0/f1/l_3/W"] = np.zeros((1, 1, 8, 8), np.float32)
        v["model/extra/thing/b"] = np.zeros((3,), np.float32)

    with pytest.raises(
        PortingError, match=r"unknown scopes.*model/0/0/f1/l_3.*model/extra/thing"
    ):
        _port_variables(_broken(run, edit), hps=run.hps.to_json_dict())


def test_wrong_shuffle_inverse_is_refused(official_runs):
    run = official_runs["shuffle_additive"]

    def edit(v):
        v["model/1/0/shuffle/indices_inverse"] = v["model/1/0/shuffle/indices"].copy()

    with pytest.raises(PortingError, match="indices_inverse is not the inverse"):
        _port_variables(_broken(run, edit), hps=run.hps.to_json_dict())


def test_nan_weight_is_refused(official_runs):
    run = official_runs["lu_affine"]

    def edit(v):
        v["model/prior/p/W"][0, 0, 0, 0] = np.nan

    with pytest.raises(PortingError, match="model/prior/p/W: contains NaN"):
        _port_variables(_broken(run, edit), hps=run.hps.to_json_dict())


def test_image_size_and_n_bits_are_never_guessed(official_runs):
    run = official_runs["lu_affine"]
    with pytest.raises(PortingError, match="image size.*n_bits_x.*nothing is guessed"):
        _port_variables(run.variables)
    with pytest.raises(PortingError, match="n_bits_x"):
        _port_variables(run.variables, image_size=8)
    with pytest.raises(PortingError, match="image size"):
        _port_variables(run.variables, num_bits=5)
    result = _port_variables(run.variables, image_size=8, num_bits=5)
    assert result.inferred.provenance["image_shape"] == "--image-size"


def test_image_size_not_divisible_by_2_to_the_levels(official_runs):
    run = official_runs["shuffle_affine_3_levels_classifier"]
    with pytest.raises(
        PortingError, match=r"image size 12 .* not divisible by 2\*\*num_levels = 8"
    ):
        _port_variables(run.variables, image_size=12, num_bits=5)


def test_failed_load_leaves_an_existing_model_untouched(official_runs):
    """load_openai_weights validates everything before assigning anything."""
    from glow_tf.porting import load_openai_weights

    run = official_runs["lu_affine"]
    model = _port_variables(run.variables, hps=run.hps.to_json_dict()).model
    before = [w.numpy().copy() for w in model.weights]

    def edit(v):
        for name in v:
            if v[name].dtype.kind == "f":
                v[name] = v[name] + 1
        v["model/prior/p/logs"][0, -1] = (
            np.inf
        )  # validated last: after every other slot

    with pytest.raises(PortingError, match="model/prior/p/logs"):
        load_openai_weights(model, _broken(run, edit))
    for weight, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)
