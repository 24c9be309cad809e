"""Tests of teachlib.vae: shapes, determinism, training, in-filling and its baselines."""

import jax
import numpy as np
import pytest

from teachlib import motifs as mt
from teachlib import vae


def _motifs(n=200, seed=0):
    """Tetrahedral-ish motifs: 4 bonds near the tetrahedron, 4 outer atoms, all jittered."""
    rng = np.random.default_rng(seed)
    tetra = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    outer = -tetra * 3.6
    x = np.concatenate([tetra * 2.35, outer], axis=0)[None].repeat(n, 0)
    x = x + rng.normal(0, 0.15, x.shape)
    q = np.linalg.qr(rng.normal(size=(n, 3, 3)))[0]
    return mt.sort_by_distance(np.einsum("nij,nkj->nki", q, x))


@pytest.fixture(scope="module")
def trained():
    x = _motifs(400)
    norm = mt.Normaliser.fit(mt.gram_features(x))
    f = norm.normalise(mt.gram_features(x))
    model = vae.VAE()
    result = vae.train_vae(model, f[:300], f[300:], epochs=60, batch_size=50, learning_rate=3e-3,
                           noise=0.2, seed=0, progress=False)
    return model, result, norm, x


def test_shapes():
    model = vae.VAE()
    params = model.init(jax.random.PRNGKey(0), np.zeros((1, 36)), jax.random.PRNGKey(1))
    x_hat, mu, log_var = model.apply(params, np.zeros((7, 36)), jax.random.PRNGKey(2))
    assert x_hat.shape == (7, 36) and mu.shape == (7, 8) and log_var.shape == (7, 8)
    sizes = jax.tree.map(np.shape, params)["params"]
    assert sizes["encoder_0"]["kernel"] == (36, 28) and sizes["encoder_1"]["kernel"] == (28, 18)
    assert sizes["mu_head"]["kernel"] == (18, 8) and sizes["log_var_head"]["kernel"] == (18, 8)
    assert sizes["decoder_0"]["kernel"] == (8, 18) and sizes["decoder_1"]["kernel"] == (18, 28)
    assert sizes["output"]["kernel"] == (28, 36)


def test_kl_of_the_prior_is_zero():
    mu, log_var = np.zeros((4, 8)), np.zeros((4, 8))
    np.testing.assert_allclose(vae.kl_per_dimension(mu, log_var), 0.0)
    np.testing.assert_allclose(vae.kl_per_dimension(mu + 1.0, log_var), 0.5)


def test_training_is_deterministic_and_learns(trained):
    model, result, norm, x = trained
    f = norm.normalise(mt.gram_features(x))
    again = vae.train_vae(model, f[:300], f[300:], epochs=60, batch_size=50, learning_rate=3e-3,
                          noise=0.2, seed=0, progress=False)
    leaves = zip(jax.tree.leaves(result.params), jax.tree.leaves(again.params))
    for a, b in leaves:
        np.testing.assert_allclose(a, b)
    history = result.history
    assert history["val_loss"][-1] < 0.5 * history["val_loss"][0]
    assert len(history["kl_per_dimension"]) == 8


def test_reconstruction_beats_the_mean_motif(trained):
    model, result, norm, x = trained
    test = x[300:]
    rec = vae.reconstruct(model, result.params, norm, test)
    error = np.mean([mt.aligned_rmsd(r, t) for r, t in zip(rec, test)])
    mean_motif = mt.coordinates_from_features(norm.normalise(mt.gram_features(x[:300])).mean(0),
                                              norm)
    baseline = np.mean([mt.aligned_rmsd(mean_motif, t) for t in test])
    assert error < baseline
    np.testing.assert_allclose(rec.shape, test.shape)


def test_sampling_shapes_and_seed(trained):
    model, result, norm, _ = trained
    a = vae.sample(model, result.params, norm, jax.random.PRNGKey(0), 5)
    b = vae.sample(model, result.params, norm, jax.random.PRNGKey(0), 5)
    assert a.shape == (5, 8, 3)
    np.testing.assert_allclose(a, b)


def test_interpolation_starts_near_the_first_motif(trained):
    model, result, norm, x = trained
    path = vae.interpolate(model, result.params, norm, x[300], x[301], 5)
    assert path.shape == (5, 8, 3)
    rec = vae.reconstruct(model, result.params, norm, x[300:301])[0]
    np.testing.assert_allclose(mt.aligned_rmsd(path[0], rec), 0.0, atol=1e-4)


def test_complete_motifs_is_exact_with_the_true_gram_matrix():
    x = _motifs(10, seed=1)
    fixed = vae.random_fixed(10, 5, np.random.default_rng(0))
    assert (fixed.sum(1) == 5).all()
    out = vae.complete_motifs(mt.gram_matrix(x), x, fixed)
    np.testing.assert_allclose(out, x, atol=1e-10)


def test_gaussian_conditional_mean_of_a_known_gaussian():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    samples = rng.normal(size=(20000, 3)) @ a.T
    model = vae.GaussianModel.fit(samples)
    known = np.array([[True, True, False]])
    value = np.array([[1.0, -0.5, 0.0]])
    cov = a @ a.T
    expected = cov[2, :2] @ np.linalg.solve(cov[:2, :2], value[0, :2])
    np.testing.assert_allclose(model.conditional_mean(value, known)[0, 2], expected, atol=0.05)
    np.testing.assert_allclose(model.conditional_mean(value, known)[0, :2], value[0, :2])


def test_infilling_methods_keep_fixed_atoms_and_beat_chance(trained):
    model, result, norm, x = trained
    test = x[300:340]
    fixed = vae.random_fixed(len(test), 6, np.random.default_rng(1))
    gaussian = vae.GaussianModel.fit(norm.normalise(mt.gram_features(x[:300])))
    outputs = {
        "vae": vae.infill_vae(model, result.params, norm, test, fixed, noise=0.2,
                              key=jax.random.PRNGKey(0), steps=100),
        "nearest": vae.infill_nearest(x[:300], test, fixed),
        "gaussian": vae.infill_gaussian(gaussian, norm, test, fixed),
    }
    # Chance: a free atom placed at a random training motif's same slot, randomly turned.
    rng = np.random.default_rng(2)
    chance = vae.infill_error(x[rng.integers(0, 300, len(test))], test, fixed).mean()
    for name, out in outputs.items():
        assert out.shape == test.shape
        np.testing.assert_allclose(out[fixed], test[fixed], err_msg=name)
        assert vae.infill_error(out, test, fixed).mean() < 0.5 * chance, name
