r"""Which index is which, and in which units: the BaTiO3 labels checked against physics (ch. 5).

A response tensor is a derivative, and a derivative leaves fingerprints in data. Two checks pin
the conventions of the BaTiO3 labels (:func:`teachlib.data.load_batio3`) without trusting any
documentation:

**Integrability (which index is the displacement).** If ``T_κ[o, β] = ∂G_o/∂τ_κβ`` for some
cell quantity ``G`` (the dipole ``P_α`` for Born charges, the susceptibility ``χ_ij`` for Raman
tensors), then the mixed second derivatives agree,

.. math::  ∂T_κ[o, β] / ∂τ_λγ = ∂²G_o / ∂τ_κβ ∂τ_λγ = ∂T_λ[o, γ] / ∂τ_κβ ,

a Maxwell relation. :func:`integrability_test` fits each tensor linearly in the displacements
of the neighbours from the ideal perovskite lattice, once freely and once with this relation
imposed, for each reading of which axis is the displacement. Under the right reading the
constraint costs nothing on held-out snapshots (it halves the parameters for free); under a
wrong one it costs accuracy.

**Scale (the constant between Raman tensors and ε∞).** If ``∂ε∞/∂τ_κβ = c · R_κ[β, :, :]``
and ε∞ is quadratic in the displacements ``u`` from the centrosymmetric ideal lattice (where
every Raman tensor vanishes), then ``ε∞(u) − ε∞(0) = (c/2) Σ_κβ R_κ[β](u) u_κβ``;
:func:`raman_constant` fits c. :data:`DOCUMENTED_CONSTANTS` lists what the workflow's
documented definitions predict for a cell of volume Ω.

>>> import numpy as np
>>> round(documented_constants(1728.0)["dchi_per_input_cell"], 3)   # 4π
12.566
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from teachlib.baselines import SITE_TYPES, neighbour_offsets, perovskite_sites

__all__ = [
    "BORN_CHARGE_AXES",
    "RAMAN_AXES",
    "born_charges_field_first",
    "displacements",
    "integrability_test",
    "IntegrabilityResult",
    "raman_constant",
    "documented_constants",
]

#: Axes of the stored Born charges after the atom axis, as pinned by the integrability test on
#: the data: the *displacement* comes first, the *field* second (see chapter 5).
BORN_CHARGE_AXES = ("displacement", "field")
#: Axes of the stored Raman tensors after the atom axis.
RAMAN_AXES = ("displacement", "field", "field")


def born_charges_field_first(born_charges):
    """Stored Born charges, [atom, displacement, field], as Z*[atom, field, displacement].

    Z*_{κ,αβ} = ∂P_α/∂τ_κβ has the field (polarisation) index α first in the textbooks and in
    the workflow's documentation; the stored array has it last (:data:`BORN_CHARGE_AXES`).

    >>> z = np.zeros((1, 3, 3)); z[0, 0, 2] = 1.0   # dF_x/dE_z: displacement x, field z
    >>> float(born_charges_field_first(z)[0, 2, 0])   # Z*[field z, displacement x]
    1.0
    """
    return np.swapaxes(born_charges, -1, -2)


def displacements(snapshots) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Displacements from the ideal perovskite lattice, the site grid and the site types.

    Returns:
        ``u`` (n_snapshots, n_atoms, 3) in Å, ``grid`` (n_atoms, 3) ideal sites in units of a/2,
        ``types`` (n_atoms,) site types (Ba, Ti, O_x, O_y, O_z); the atom order and the ideal
        sites must be the same in every snapshot.
    """
    sites = [perovskite_sites(atoms) for atoms in snapshots]
    if any((s.grid != sites[0].grid).any() for s in sites):
        raise ValueError("the snapshots do not share one atom order on the ideal lattice")
    u = np.stack([s.displacements for s in sites])                        # (S, n, 3)
    return u, sites[0].grid, sites[0].site_types


def _design(snapshots, radius: float, constrained: bool) -> np.ndarray:
    """Design matrix of the linear model T_κ[o, β] = T̄_type[o, β] + Σ_λγ W[o, β, γ] Δu_λγ.

    Rows (snapshot, atom, β), columns the parameters (shared by every output o). A neighbour at
    ideal offset d of a site of type t has its own 3x3 block W_{t,d}[β, γ]; with ``constrained``
    the block of the reverse pair (t', −d) is tied to its transpose, W_{t',−d} = W_{t,d}ᵀ, which
    is the Maxwell relation for a gradient field. Δu = u_λ − u_κ keeps translations exact.
    """
    u, grid, types = displacements(snapshots)
    n_snap, n_atoms, _ = u.shape
    a = snapshots[0].cell.array[0, 0] / round((types == "Ba").sum() ** (1 / 3))
    size = grid.max() + 1
    lookup = {tuple(g): i for i, g in enumerate(grid)}
    column, n_params = {}, 0
    for t in SITE_TYPES:                                   # assign parameter blocks to pairs
        for d in map(tuple, neighbour_offsets(t, radius, a)):
            partner_type = _type_at(types, lookup, grid[types == t][0] + d, size)
            partner = (partner_type, tuple(-x for x in d))
            if constrained and partner in column:
                column[t, d] = (column[partner][0], True)   # transposed block of the partner
            else:
                column[t, d] = (n_params, False)
                n_params += 9
    x = np.zeros((n_snap, n_atoms, 3, n_params + 3 * len(SITE_TYPES)))  # (S, n, β, params)
    beta = np.arange(3)
    for k in range(n_atoms):
        t = types[k]
        x[:, k, beta, n_params + 3 * SITE_TYPES.index(t) + beta] = 1.0    # intercepts
        for d in map(tuple, neighbour_offsets(t, radius, a)):
            j = lookup[tuple((grid[k] + d) % size)]
            start, transposed = column[t, d]
            du = u[:, j] - u[:, k]                                            # (S, 3)
            for b in range(3):
                cols = start + (3 * beta + b if transposed else 3 * b + beta)   # over γ
                x[:, k, b, cols] += du
    return x


def _type_at(types, lookup, site, size):
    return types[lookup[tuple(np.asarray(site) % size)]]


class IntegrabilityResult(NamedTuple):
    """Cross-validated MAE of the free and the Maxwell-constrained linear models, per reading."""

    readings: tuple[str, ...]       # e.g. ("axis 1 = displacement", "axis 2 = displacement")
    free_mae: tuple[float, ...]     # (same for every reading: only the labels are permuted)
    constrained_mae: tuple[float, ...]
    n_free: int                     # number of parameters
    n_constrained: int

    def cost(self) -> dict[str, float]:
        """Relative extra error that the constraint costs, per reading (≈ 0 for the right one)."""
        return {r: c / f - 1 for r, c, f in zip(self.readings, self.constrained_mae, self.free_mae)}

    def best(self) -> str:
        """The reading under which the data are most nearly a gradient field."""
        return min(self.cost().items(), key=lambda item: item[1])[0]


def integrability_test(snapshots, label: str, *, radius: float = 2.9, folds: int = 5,
                       displacement_axes=(1, 2)) -> IntegrabilityResult:
    """Is ``label`` a gradient field, and with which axis as the displacement?

    Args:
        snapshots: BaTiO3 snapshots (one atom order, cubic supercell).
        label: ``"born_charges"`` (n, 3, 3) or ``"raman_tensors"`` (n, 3, 3, 3).
        radius: neighbour shell of the linear model, Å (2.9: Ti–O, Ba–O and O–O pairs).
        folds: cross-validation folds over snapshots.
        displacement_axes: the axes (after the atom axis, counted from 1) to try as the
            displacement index.

    Returns:
        An :class:`IntegrabilityResult`; ``result.best()`` names the reading that wins.
    """
    y_all = np.stack([atoms.arrays[label] for atoms in snapshots])           # (S, n, 3, ...)
    n_snap = len(snapshots)
    readings, free, constrained = [], [], []
    designs = {c: _design(snapshots, radius, c) for c in (False, True)}
    n_params = {c: x.shape[-1] for c, x in designs.items()}
    # rows (snapshot, atom·β); Gram matrices per snapshot, so that the folds cost nothing more
    designs = {c: x.reshape(n_snap, -1, x.shape[-1]) for c, x in designs.items()}
    grams = {c: np.matmul(np.swapaxes(x, 1, 2), x) for c, x in designs.items()}  # (S, p, p)
    for axis in displacement_axes:
        y = np.moveaxis(y_all, 1 + axis, 2)                                  # (S, n, β, ...)
        y = y.reshape(n_snap, y.shape[1] * 3, -1)                            # (S, n·β, o)
        errors = {}
        for c, x in designs.items():
            rhs = np.matmul(np.swapaxes(x, 1, 2), y)                         # (S, params, o)
            fold_errors = []
            for f in range(folds):
                test = np.arange(n_snap)[f::folds]
                train = np.setdiff1d(np.arange(n_snap), test)
                gram = grams[c][train].sum(0)                                # (p, p)
                ridge = 1e-9 * np.trace(gram) / len(gram) * np.eye(len(gram))  # rank safety
                w = np.linalg.solve(gram + ridge, rhs[train].sum(0))         # (params, o)
                fold_errors.append(np.abs(x[test] @ w - y[test]).ravel())
            errors[c] = float(np.concatenate(fold_errors).mean())
        readings.append(f"axis {axis} = displacement")
        free.append(errors[False])
        constrained.append(errors[True])
    return IntegrabilityResult(tuple(readings), tuple(free), tuple(constrained),
                               n_params[False], n_params[True])


def raman_constant(snapshots, *, displacement_axis: int = 1) -> dict[str, float]:
    """Fit c in ε∞(u) = ε∞(0) + (c/2) Σ_κβ R_κ[β](u) u_κβ over snapshots with valid ε∞.

    The ideal cubic lattice is centrosymmetric, so R = 0 there and ε∞ starts quadratically in
    u; to that order the relation is exact. ε∞(0) is fitted too (one isotropic number).

    Returns:
        ``{"c": ..., "correlation": ..., "c_offdiagonal": ..., "eps_ideal": ...}``: c from all
        components, the correlation of the fitted and the true ε∞ components, c from the
        off-diagonal components alone (where ε∞(0) plays no part), and the fitted ε∞(0).
    """
    valid = [atoms for atoms in snapshots if atoms.info.get("dielectric_valid", True)]
    u, _, _ = displacements(valid)                                           # (S, n, 3)
    r = np.stack([atoms.arrays["raman_tensors"] for atoms in valid])        # (S, n, 3, 3, 3)
    r = np.moveaxis(r, 1 + displacement_axis, 2)                             # (S, n, β, i, j)
    eps = np.stack([atoms.info["dielectric"] for atoms in valid])           # (S, 3, 3)
    x = 0.5 * np.einsum("snbij,snb->sij", r, u)                              # (S, 3, 3)
    design = np.stack([np.broadcast_to(np.eye(3), x.shape).ravel(), x.ravel()], 1)
    (eps0, c), *_ = np.linalg.lstsq(design, eps.ravel(), rcond=None)
    off = ~np.eye(3, dtype=bool)
    c_off = float((eps[:, off] * x[:, off]).sum() / (x[:, off] ** 2).sum())
    # correlation of the variations (the isotropic mean removed), not of the raw values
    fitted = (design @ [eps0, c]).reshape(eps.shape)
    corr = np.corrcoef((fitted - fitted.mean(0)).ravel(), (eps - eps.mean(0)).ravel())[0, 1]
    return {"c": float(c), "correlation": float(corr), "c_offdiagonal": c_off,
            "eps_ideal": float(eps0)}


def documented_constants(volume: float, primitive_volume: float | None = None) -> dict[str, float]:
    """What the documented definitions of the Raman tensor predict for c = (∂ε∞/∂τ) / R.

    With χ = (ε∞ − 1)/4π (Gaussian units), F_κ the force on atom κ and Ω the cell volume, a
    homogeneous field ℰ gives ∂²F_κβ/∂ℰ_i∂ℰ_j = Ω ∂χ_ij/∂τ_κβ. aiida-vibroscopy stored:

    * ``dchi_per_input_cell``: R = ∂χ/∂τ in Å⁻¹, normalised by the volume of the cell the
      calculation ran on (its current documentation and code); then c = 4π;
    * ``dchi_per_primitive_cell``: the same, normalised by the 5-atom cell; c = 4π Ω₁/Ω;
    * ``force_second_derivative``: R = ∂²F/∂ℰ² = Ω ∂χ/∂τ in Å² (earlier versions, unit "Å²",
      named ``raman_susceptibility``); then c = 4π/Ω.

    Args:
        volume: Ω of the cell the labels belong to, Å³.
        primitive_volume: Ω₁ of the primitive cell, Å³ (default Ω/27, a 3x3x3 supercell).
    """
    primitive_volume = primitive_volume or volume / 27
    return {"dchi_per_input_cell": 4 * math.pi,
            "dchi_per_primitive_cell": 4 * math.pi * primitive_volume / volume,
            "force_second_derivative": 4 * math.pi / volume}
