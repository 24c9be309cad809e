"""Tests of teachlib.motifs: Gram features, their symmetries, coordinates back, validity, files."""

import ase.io
import jax
import numpy as np
import pytest
from ase.build import bulk

from teachlib import motifs as mt
from teachlib.symmetry import random_o3


def _motifs(n=20, seed=0):
    """Random motifs shaped like a-Si ones: 4 bonds near 2.35 Å, 4 atoms at 3.3-3.9 Å."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n, 8, 3))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    radii = np.concatenate([rng.uniform(2.3, 2.4, (n, 4)), rng.uniform(3.3, 3.9, (n, 4))], 1)
    return directions * radii[..., None]


@pytest.mark.parametrize("reflection", [False, True])
def test_gram_features_invariant_under_o3(reflection):
    x = _motifs()
    for k in range(5):
        with jax.enable_x64(True):  # a float64 group element: invariance to round-off
            r = np.asarray(random_o3(jax.random.PRNGKey(k), reflection=reflection))
        assert r.dtype == np.float64 and (np.linalg.det(r) < 0) == reflection
        np.testing.assert_allclose(mt.gram_features(x @ r.T), mt.gram_features(x), atol=1e-10)


def test_permutation_permutes_rows_and_columns_of_g():
    x = _motifs(1)[0]
    perm = np.random.default_rng(1).permutation(8)
    g = mt.gram_matrix(x)
    np.testing.assert_allclose(mt.gram_matrix(x[perm]), g[np.ix_(perm, perm)], atol=1e-12)
    # ... so the 36 features change (the representation is not permutation invariant),
    assert np.abs(mt.gram_features(x[perm]) - mt.gram_features(x)).max() > 0.1
    # ... but diagonal features only move among themselves (hence the separate normalisation).
    diagonal = mt.is_diagonal()
    np.testing.assert_allclose(np.sort(mt.gram_features(x[perm])[diagonal]),
                               np.sort(mt.gram_features(x)[diagonal]))


def test_permutation_copies_stay_within_shells():
    x = mt.sort_by_distance(_motifs(10))
    copies = mt.permutation_copies(x, 6, np.random.default_rng(0)).reshape(10, 6, 8, 3)
    np.testing.assert_allclose(copies[:, 0], x)
    r = np.linalg.norm(copies, axis=-1)  # (10, 6, 8)
    np.testing.assert_allclose(np.sort(r[..., :4], -1), np.sort(r[:, :1, :4], -1).repeat(6, 1))
    np.testing.assert_allclose(np.sort(r[..., 4:], -1), np.sort(r[:, :1, 4:], -1).repeat(6, 1))
    assert not np.allclose(copies[:, 1], x)  # some copies really are permuted


def test_normaliser_round_trip_and_permutation_commutes():
    f = mt.gram_features(_motifs(50))
    norm = mt.Normaliser.fit(f)
    np.testing.assert_allclose(norm.denormalise(norm.normalise(f)), f, atol=1e-12)
    x = _motifs(1, seed=3)[0]
    perm = np.random.default_rng(2).permutation(8)
    g_norm = mt.gram_from_features(norm.normalise(mt.gram_features(x)))
    g_norm_perm = mt.gram_from_features(norm.normalise(mt.gram_features(x[perm])))
    np.testing.assert_allclose(g_norm_perm, g_norm[np.ix_(perm, perm)], atol=1e-12)


def test_coordinates_from_gram_exact_up_to_o3():
    x = _motifs(30, seed=4)
    back = mt.coordinates_from_gram(mt.gram_matrix(x))
    errors = [mt.aligned_rmsd(b, a) for a, b in zip(x, back)]
    np.testing.assert_allclose(errors, 0.0, atol=1e-10)
    # A reflection is needed about half of the time: a proper rotation alone does not do.
    proper = [mt.aligned_rmsd(b, a, reflection=False) for a, b in zip(x, back)]
    assert max(proper) > 0.1


def test_coordinates_from_noisy_gram_degrade_gracefully():
    x = _motifs(30, seed=5)
    rng = np.random.default_rng(0)
    errors = []
    for level in (0.01, 0.1, 1.0):  # Å² of symmetric noise on every entry
        noise = rng.normal(0, level, (30, 8, 8))
        g = mt.gram_matrix(x) + 0.5 * (noise + noise.transpose(0, 2, 1))
        errors.append(np.mean([mt.aligned_rmsd(b, a) for a, b in
                               zip(x, mt.coordinates_from_gram(g))]))
    assert errors[0] < errors[1] < errors[2]
    np.testing.assert_allclose(errors[0], 0.0, atol=0.01)


def test_kabsch_recovers_a_random_o3_element():
    x = _motifs(1, seed=6)[0]
    with jax.enable_x64(True):
        r = np.asarray(random_o3(jax.random.PRNGKey(3), reflection=True))
    np.testing.assert_allclose(mt.kabsch(x, x @ r), r, atol=1e-10)


def test_matched_rmsd_undoes_a_swap():
    x = _motifs(1, seed=7)[0]
    y = x[[0, 1, 3, 2, 4, 5, 6, 7]]
    assert mt.aligned_rmsd(y, x) > 0.3
    np.testing.assert_allclose(mt.matched_rmsd(y, x), 0.0, atol=1e-10)


def test_local_environments_of_diamond():
    x, centres = mt.local_environments(bulk("Si", "diamond", a=5.431, cubic=True))
    assert x.shape == (8, 8, 3) and len(centres) == 8
    r = np.linalg.norm(x, axis=-1)
    np.testing.assert_allclose(r[:, :4], 5.431 * np.sqrt(3) / 4, rtol=1e-6)
    np.testing.assert_allclose(r[:, 4:], 5.431 / np.sqrt(2), rtol=1e-6)


def test_validity_rules():
    x, _ = mt.local_environments(bulk("Si", "diamond", a=5.431))
    assert mt.is_valid(x).all()
    too_close = x.copy()
    too_close[0, 4] = too_close[0, 0] * 1.8 / np.linalg.norm(too_close[0, 0])  # 0.55 Å from atom 0
    too_far = x.copy()
    too_far[1, 7] *= 4.1 / np.linalg.norm(too_far[1, 7])
    np.testing.assert_allclose(mt.is_valid(np.stack([x[0], too_close[0], too_far[1]])),
                               [True, False, False])


def test_centre_structure_of_diamond():
    x, _ = mt.local_environments(bulk("Si", "diamond", a=5.431))
    np.testing.assert_allclose(mt.centre_coordination(x), [4, 4])
    np.testing.assert_allclose(mt.centre_angles(x), 109.4712206, atol=1e-6)


def test_written_motifs_are_readable_by_ase(tmp_path):
    x = _motifs(5)
    path = mt.write_motifs(tmp_path / "m.extxyz", x, infos=[{"fixed": np.array([0, 2, 5])}] * 5)
    frames = ase.io.read(path, index=":")
    assert len(frames) == 5
    for frame, motif in zip(frames, x):
        assert frame.get_chemical_symbols() == ["Si"] * 9 and not frame.pbc.any()
        np.testing.assert_allclose(frame.positions[0], 0.0)
        np.testing.assert_allclose(frame.positions[1:], motif, atol=1e-8)
    np.testing.assert_allclose(frames[0].info["fixed"], [0, 2, 5])
