"""The layers reproduce the official OpenAI Glow numerics on the reference fixtures.

The official weights (`vars_trained.npz`) are loaded into a GlowModel of the
same config; each layer is then run on the official input of that layer and
compared with the official output (`ref_forward.npz`), so a mismatch names the
layer at fault.
"""

from __future__ import annotations

import numpy as np
import pytest

from glow_tf import GlowModel
from glow_tf.objectives import standard_normal_log_prob
from glow_tf.porting.openai_names import load_openai_weights

TOL = 1e-4


@pytest.fixture(scope="module")
def forward(reference):
    return reference.npz("ref_forward.npz")


def test_dequantised_input(reference, reference_model, forward):
    x = reference_model.flow_input(reference.npy("x_ref.npy"), reference.npy("noise_ref.npy"))
    np.testing.assert_allclose(x, forward["x_dequant"], atol=1e-6)


def test_every_step_sub_layer(reference, reference_model, forward):
    for i, level in enumerate(reference_model.levels):
        for j, step in enumerate(level.steps):
            name = f"step{i}_{j}_"
            act_norm, log_det_act_norm = step.act_norm(forward[name + "in"])
            np.testing.assert_allclose(act_norm, forward[name + "actnorm"], atol=TOL, err_msg=name)
            permuted, log_det_perm = step.permutation(forward[name + "actnorm"])
            np.testing.assert_allclose(permuted, forward[name + "perm"], atol=TOL, err_msg=name)
            half = permuted.shape[-1] // 2
            h = step.coupling.network(forward[name + "perm"][..., :half])
            np.testing.assert_allclose(h, forward[name + "nn"], atol=TOL, err_msg=name)
            out, log_det_coupling = step.coupling(forward[name + "perm"])
            np.testing.assert_allclose(out, forward[name + "out"], atol=TOL, err_msg=name)
            np.testing.assert_allclose(log_det_act_norm, forward[name + "logdet_actnorm"], rtol=1e-6)
            np.testing.assert_allclose(
                log_det_act_norm + log_det_perm, forward[name + "logdet_actnorm_perm"], rtol=1e-6
            )
            np.testing.assert_allclose(
                log_det_act_norm + log_det_perm + log_det_coupling,
                forward[name + "logdet"],
                rtol=1e-6,
            )
            whole, _ = step(forward[name + "in"])
            np.testing.assert_allclose(whole, forward[name + "out"], atol=TOL, err_msg=name)


def test_split_and_top_prior(reference, reference_model, forward):
    level = reference_model.levels[0]
    z = forward["level0_out"]
    split_out, split_log_det = level.split(z)
    half = z.shape[-1] // 2
    eps = split_out[..., half:]
    np.testing.assert_allclose(eps, forward["level0_split_eps"], atol=TOL)
    split_log_prob = split_log_det + standard_normal_log_prob(eps)
    np.testing.assert_allclose(split_log_prob, forward["level0_split_logp"], atol=TOL * 10)
    prior = reference_model.top_prior.bijector(reference.labels())
    eps_top, top_log_det = prior.forward_and_log_det(forward["z_top"])
    np.testing.assert_allclose(eps_top, forward["top_eps"], atol=TOL)
    np.testing.assert_allclose(
        top_log_det + standard_normal_log_prob(eps_top), forward["top_logp"], atol=TOL * 10
    )


def test_bits_per_dim_and_latents(reference, reference_model, forward):
    x, noise, y = reference.npy("x_ref.npy"), reference.npy("noise_ref.npy"), reference.labels()
    encoding = reference_model.encode(x, y, noise=noise)
    np.testing.assert_allclose(encoding.bits_per_dim, forward["bits_x"], atol=TOL)
    np.testing.assert_allclose(encoding.latents[0], forward["level0_split_eps"], atol=TOL)
    np.testing.assert_allclose(encoding.latents[-1], forward["top_eps"], atol=TOL)
    np.testing.assert_allclose(encoding.flat, reference.npz("ref_encode_decode.npz")["feps"], atol=TOL)
    log_prob = reference_model.log_prob(x, y, noise=noise)
    np.testing.assert_allclose(log_prob, forward["objective"], rtol=1e-6)


def test_classifier_head(reference, reference_model, forward):
    if "bits_y" not in forward:
        pytest.skip(f"{reference.name} has no classifier head")
    terms = reference_model._images_terms(
        reference.npy("x_ref.npy"), reference.labels(), reference.npy("noise_ref.npy")
    )
    np.testing.assert_allclose(terms["logits"], forward["y_logits"], atol=TOL)
    np.testing.assert_allclose(terms["bits_y"], forward["bits_y"], atol=TOL)


def test_decode_reproduces_official_reconstruction(reference, reference_model):
    official = reference.npz("ref_encode_decode.npz")
    y = reference.labels()
    images = reference_model.decode(official["feps"], y)
    np.testing.assert_array_equal(images, official["x_rec"])
    continuous = reference_model.decode(official["feps"], y, as_uint8=False)
    np.testing.assert_allclose(continuous, official["x_rec_cont"], atol=TOL)


def test_temperature_samples_match_official(reference, reference_model):
    official = reference.npz("ref_samples_t0.7.npz")
    y = official["y"] if reference.config.conditional else None
    images = reference_model.decode(official["sample_eps"], y, temperature=float(official["temperature"]))
    differ = images.numpy().astype(int) != official["x_uint8"].astype(int)
    assert differ.mean() <= 0.001
    step = 256 // reference.config.num_bins
    assert np.all(np.abs(images.numpy().astype(int) - official["x_uint8"])[differ] <= step)


def test_data_dependent_init_matches_official(reference):
    """initialize() on the official init batch reproduces the official ActNorm values.

    Every other weight is set to its official post-init value; the ActNorm
    weights are zeroed first, so only our data-dependent init can recover them.
    """
    official = reference.npz("vars_init.npz")
    model = GlowModel(reference.config)
    load_openai_weights(model, official)
    for level in model.levels:
        for step in level.steps:
            norms = [step.act_norm, step.coupling.network.conv_in.norm, step.coupling.network.conv_hidden.norm]
            for norm in norms:
                norm.bias.assign(np.zeros(norm.bias.shape))
                norm.logs.assign(np.zeros(norm.logs.shape))
    model.initialize(
        reference.npy("x_init.npy"),
        reference.labels("y_init.npy"),
        noise=reference.npy("noise_init.npy"),
    )
    for i, level in enumerate(model.levels):
        for j, step in enumerate(level.steps):
            prefix = f"model/{i}/{j}/"
            pairs = [
                ("", step.act_norm),
                ("f1/l_1/", step.coupling.network.conv_in.norm),
                ("f1/l_2/", step.coupling.network.conv_hidden.norm),
            ]
            for scope, norm in pairs:
                bias = official[f"{prefix}{scope}actnorm_center/b"].reshape(-1)
                log_scale = 3 * official[f"{prefix}{scope}actnorm_scale/logs"].reshape(-1)
                np.testing.assert_allclose(norm.bias, bias, atol=1e-4, err_msg=prefix + scope)
                np.testing.assert_allclose(norm.log_scale, log_scale, atol=1e-4, err_msg=prefix + scope)
