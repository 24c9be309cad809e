"""Errors per atom, per species, per irrep, and the acoustic sum rule."""

from __future__ import annotations

import e3nn_jax as e3nn
import numpy as np
import pytest

from teachlib import metrics


def test_mae_rmse_against_hand_values():
    pred, true = np.array([[1.0, -2.0], [0.0, 4.0]]), np.zeros((2, 2))
    np.testing.assert_allclose(metrics.mae(pred, true), 7 / 4)
    np.testing.assert_allclose(metrics.rmse(pred, true), np.sqrt(21 / 4))
    with pytest.raises(ValueError, match="shape"):
        metrics.mae(pred, true[:1])


def test_per_species_with_and_without_a_snapshot_axis():
    rng = np.random.default_rng(0)
    symbols = np.array(["Ba", "Ti", "O", "O", "O"])
    pred, true = rng.normal(size=(4, 5, 3, 3)), rng.normal(size=(4, 5, 3, 3))
    by_species = metrics.per_species(metrics.mae, pred, true, np.tile(symbols, (4, 1)))
    assert list(by_species) == ["Ba", "Ti", "O"]
    np.testing.assert_allclose(by_species["O"], np.abs(pred - true)[:, 2:].mean())
    flat = metrics.per_species(metrics.mae, pred[0], true[0], symbols)
    np.testing.assert_allclose(flat["Ti"], np.abs(pred[0, 1] - true[0, 1]).mean())
    with pytest.raises(ValueError, match="symbols"):
        metrics.per_species(metrics.mae, pred, true, symbols)


def test_per_irrep_pools_copies_and_keeps_units_in_an_orthonormal_basis():
    basis = e3nn.reduced_tensor_product_basis("ijk=ikj", i="1o", j="1o", k="1o")  # 2x1o+2o+3o
    q = np.asarray(basis.array).reshape(27, 18)
    rng = np.random.default_rng(1)
    error = rng.normal(size=(7, 18))                          # (atoms, irreps dim)
    by_irrep = metrics.per_irrep(metrics.rmse, error, 0 * error, basis.irreps)
    assert list(by_irrep) == ["1o", "2o", "3o"]
    np.testing.assert_allclose(by_irrep["1o"], np.sqrt(np.mean(error[:, :6] ** 2)))
    # orthonormal basis: total squared error is the same in Cartesian and irreps form
    cartesian = error @ q.T                                   # (atoms, 27)
    total = sum(np.sum(error[:, s] ** 2) for s in basis.irreps.slices())
    np.testing.assert_allclose(np.sum(cartesian ** 2), total)


def test_sum_rule_violation_and_projection():
    rng = np.random.default_rng(2)
    t = rng.normal(size=(3, 10, 3, 3))
    expected = np.abs(t.sum(1)).max() / np.abs(t).max()
    np.testing.assert_allclose(metrics.sum_rule_violation(t), expected)
    projected = metrics.project_sum_rule(t)
    np.testing.assert_allclose(projected.sum(1), 0, atol=1e-12)
    # the projection is the closest sum-rule-obeying tensor in the least-squares sense
    np.testing.assert_allclose(np.sum((projected - t) ** 2), np.sum(t.sum(1) ** 2) / 10)
