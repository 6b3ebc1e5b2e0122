"""The independent numpy oracle reproduces the official fixtures, so it can judge
the variants the fixtures do not cover (LU, shuffle, reverse, no learntop)."""

from __future__ import annotations

import numpy as np

from tests.porting import openai_numpy


def _hps(reference) -> openai_numpy.Hps:
    config = reference.config
    return openai_numpy.Hps(
        image_size=config.image_shape[0],
        n_levels=config.num_levels,
        depth=config.num_steps,
        width=config.hidden_channels,
        flow_permutation=2,
        flow_coupling=1 if config.coupling == "affine" else 0,
        learntop=config.learn_top,
        ycond=config.conditional,
        n_y=config.num_classes or 10,
        weight_y=config.weight_y,
        n_bits_x=config.num_bits,
    )


def test_oracle_reproduces_official_forward_and_decode(reference):
    hps = _hps(reference)
    variables = reference.npz("vars_trained.npz")
    x, y, noise = (
        reference.npy("x_ref.npy"),
        reference.npy("y_ref.npy"),
        reference.npy("noise_ref.npy"),
    )
    ours = openai_numpy.encode(variables, hps, x, y, noise)
    official = reference.npz("ref_forward.npz")
    assert set(official) <= set(ours)
    for name, value in official.items():
        scale = (
            1.0
            if value.ndim > 1 or name == "bits_x"
            else max(1.0, float(np.abs(value).max()))
        )
        np.testing.assert_allclose(ours[name], value, atol=1e-4 * scale, err_msg=name)
    codec = reference.npz("ref_encode_decode.npz")
    np.testing.assert_allclose(ours["feps"], codec["feps"], atol=1e-4)
    x_rec, x_rec_cont = openai_numpy.decode(variables, hps, codec["feps"], y)
    np.testing.assert_array_equal(x_rec, codec["x_rec"])
    np.testing.assert_allclose(x_rec_cont, codec["x_rec_cont"], atol=1e-5)
    samples = reference.npz("ref_samples_t0.7.npz")
    x_sample, _ = openai_numpy.decode(
        variables, hps, samples["sample_eps"], samples["y"], 0.7
    )
    assert np.mean(x_sample != samples["x_uint8"]) <= 0.001


def test_random_variables_have_the_official_names_and_shapes_of_ref_a(reference):
    """The oracle's variable generator creates exactly the official variables."""
    official = {
        name: value.shape
        for name, value in reference.npz("vars_trained.npz").items()
        if name.startswith("model/") and not name.endswith("ExponentialMovingAverage")
    }
    made = openai_numpy.random_official_variables(_hps(reference))
    assert {name: value.shape for name, value in made.items()} == official
