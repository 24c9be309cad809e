"""Errors of per-atom tensor predictions: overall, per species, per irrep, and the sum rule.

The book's one definition (DESIGN.md): **MAE is the mean absolute error over all test atoms
and all Cartesian components, in the data's units** (e for Born charges). RMSE likewise.

>>> import numpy as np
>>> true = np.zeros((2, 3, 3)); pred = np.full((2, 3, 3), 0.1)
>>> round(mae(pred, true), 6), round(rmse(pred, true), 6)
(0.1, 0.1)

Per species, with the chemical symbol of each atom:

>>> per_species(mae, pred, true, ["Ba", "O"])
{'Ba': 0.1..., 'O': 0.1...}

Per irrep: split arrays written in an irreps basis (e.g. from :mod:`teachlib.tensors`) into
their irreps; copies of the same irrep are pooled:

>>> x = np.arange(9.0)[None]                       # one atom, "0e + 1e + 2e" (1 + 3 + 5)
>>> per_irrep(mae, x, 0 * x, "0e + 1e + 2e")
{'0e': 0.0, '1e': 2.0, '2e': 6.0}

The acoustic sum rule says that a tensor summed over the atoms of a snapshot vanishes; its
relative violation is max |Σ_κ T_κ| / max |T_κ| over the snapshots given:

>>> t = np.array([[[1.0], [-1.0]], [[2.0], [-1.5]]])  # (snapshot, atom, component)
>>> sum_rule_violation(t)
0.25
>>> sum_rule_violation(project_sum_rule(t)) < 1e-12
True
"""

from __future__ import annotations

from collections.abc import Callable

import e3nn_jax as e3nn
import numpy as np


def mae(pred, true) -> float:
    """Mean absolute error over every element (atoms and Cartesian components)."""
    pred, true = _pair(pred, true)
    return float(np.mean(np.abs(pred - true)))


def rmse(pred, true) -> float:
    """Root-mean-square error over every element."""
    pred, true = _pair(pred, true)
    return float(np.sqrt(np.mean((pred - true) ** 2)))


def per_species(error: Callable, pred, true, symbols) -> dict[str, float]:
    """``error(pred, true)`` restricted to the atoms of each species.

    Args:
        error: e.g. :func:`mae` or :func:`rmse`.
        pred, true: per-atom arrays, (n_atoms, ...) or (n_snapshots, n_atoms, ...).
        symbols: the chemical symbol of each atom, shaped like the leading axes of ``pred``
            ((n_atoms,) or (n_snapshots, n_atoms)).

    Returns:
        ``{species: error}`` in order of first appearance.
    """
    pred, true = _pair(pred, true)
    symbols = np.asarray(symbols)
    if pred.shape[:symbols.ndim] != symbols.shape:
        raise ValueError(f"symbols of shape {symbols.shape} do not match the leading axes of "
                         f"arrays of shape {pred.shape}")
    species = list(dict.fromkeys(symbols.ravel().tolist()))
    return {s: error(pred[symbols == s], true[symbols == s]) for s in species}


def per_irrep(error: Callable, pred, true, irreps) -> dict[str, float]:
    """``error`` on each irrep of arrays written in an irreps basis (last axis ``irreps.dim``).

    Copies of the same irrep (the Raman tensor's ``2x1o``) are pooled under one name. In an
    orthonormal basis (that of :func:`e3nn_jax.reduced_tensor_product_basis`) the errors are in
    the same units as the Cartesian ones.
    """
    pred, true = _pair(pred, true)
    irreps = e3nn.Irreps(irreps)
    if pred.shape[-1] != irreps.dim:
        raise ValueError(f"last axis {pred.shape[-1]} does not match {irreps} (dim {irreps.dim})")
    columns: dict[str, list[int]] = {}
    for (mul, ir), chunk in zip(irreps, irreps.slices()):
        columns.setdefault(str(ir), []).extend(range(chunk.start, chunk.stop))
    return {name: error(pred[..., cols], true[..., cols]) for name, cols in columns.items()}


def sum_rule_violation(tensors) -> float:
    """Relative acoustic-sum-rule violation: max |Σ_κ T_κ| / max |T_κ|.

    Args:
        tensors: (n_snapshots, n_atoms, ...) per-atom tensors of whole snapshots.
    """
    tensors = np.asarray(tensors, dtype=np.float64)
    if tensors.ndim < 2:
        raise ValueError(f"need (n_snapshots, n_atoms, ...), got shape {tensors.shape}")
    return float(np.abs(tensors.sum(axis=1)).max() / np.abs(tensors).max())


def project_sum_rule(tensors) -> np.ndarray:
    """Subtract each snapshot's mean over atoms so that Σ_κ T_κ = 0 exactly.

    This is the simplest acoustic-sum-rule correction (the one DFPT codes apply): it spreads
    the violation equally over the atoms. ``tensors``: (n_snapshots, n_atoms, ...).
    """
    tensors = np.asarray(tensors, dtype=np.float64)
    return tensors - tensors.mean(axis=1, keepdims=True)


def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"prediction {pred.shape} and truth {true.shape} differ in shape")
    return pred, true
