"""Five baselines for per-atom response tensors of BaTiO3 snapshots (chapter 4).

A network is only worth its cost if it beats these, measured on the same split:

==================  ===========================================================================
``Zero``            predicts 0 (the Raman tensors of ideal cubic BaTiO3 *are* 0: every site is
                    centrosymmetric)
``NominalCharges``  isotropic formal charges, Z* = q·1 with q(Ba, Ti, O) = (+2, +4, −2); no
                    Raman
``SpeciesMean``     the mean training tensor of each species
``SiteMean``        the mean training tensor of each *site* of the supercell (it exploits the
                    fixed atom order of the data and transfers to no other structure)
``LinearNeighbours`` per site type (Ba, Ti, O_x, O_y, O_z), a ridge regression of each tensor
                    on the displacements of the atom's neighbours relative to its own, from the
                    ideal perovskite lattice; shell radius and ridge strength chosen on the
                    validation set. The honest bar for a network.
==================  ===========================================================================

Every baseline, like the trained network, has ``.predict(atoms)`` returning
``{"born_charges": (n, 3, 3), "raman_tensors": (n, 3, 3, 3)}``:

>>> import ase
>>> atoms = ase.Atoms("BaTiO3", scaled_positions=[[0, 0, 0], [.5, .5, .5], [0, .5, .5],
...                   [.5, 0, .5], [.5, .5, 0]], cell=[4.0] * 3, pbc=True)
>>> NominalCharges().predict(atoms)["born_charges"][1]
array([[4., 0., 0.],
       [0., 4., 0.],
       [0., 0., 4.]])
>>> sites = perovskite_sites(atoms)
>>> sites.site_types.tolist()
['Ba', 'Ti', 'O_x', 'O_y', 'O_z']

(O_x is the oxygen whose Ti–O–Ti bond runs along x: its Born charge is large along x.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import ase
import numpy as np

LABELS = ("born_charges", "raman_tensors")
SHAPES = {"born_charges": (3, 3), "raman_tensors": (3, 3, 3)}
NOMINAL_CHARGES = {"Ba": 2.0, "Ti": 4.0, "O": -2.0}
SITE_TYPES = ("Ba", "Ti", "O_x", "O_y", "O_z")


def stack_labels(snapshots, label: str) -> np.ndarray:
    """The labels of ``snapshots`` as one array, (n_snapshots, n_atoms, *tensor shape)."""
    return np.stack([atoms.arrays[label] for atoms in snapshots])


def predict_all(model, snapshots) -> dict[str, np.ndarray]:
    """``model.predict`` over ``snapshots``, stacked: ``{label: (n_snapshots, n_atoms, ...)}``."""
    predictions = [model.predict(atoms) for atoms in snapshots]
    return {label: np.stack([p[label] for p in predictions]) for label in predictions[0]}


def _zeros(atoms: ase.Atoms) -> dict[str, np.ndarray]:
    return {label: np.zeros((len(atoms), *shape)) for label, shape in SHAPES.items()}


class Zero:
    """Predicts zero for every tensor."""

    def predict(self, atoms: ase.Atoms) -> dict[str, np.ndarray]:
        return _zeros(atoms)


class NominalCharges:
    """Isotropic formal charges q·1 for Z*; zero Raman tensors."""

    def predict(self, atoms: ase.Atoms) -> dict[str, np.ndarray]:
        out = _zeros(atoms)
        q = np.array([NOMINAL_CHARGES[s] for s in atoms.get_chemical_symbols()])  # (n,)
        out["born_charges"] = q[:, None, None] * np.eye(3)                          # (n, 3, 3)
        return out


@dataclass
class SpeciesMean:
    """The mean training tensor of each species.

    >>> import numpy as np
    >>> means = {"born_charges": {"Ba": 2.7 * np.eye(3)},
    ...          "raman_tensors": {"Ba": np.zeros((3, 3, 3))}}
    >>> float(SpeciesMean(means).predict(ase.Atoms("Ba"))["born_charges"][0, 0, 0])
    2.7
    """

    means: dict[str, dict[str, np.ndarray]]  # label -> species -> tensor

    @classmethod
    def fit(cls, snapshots) -> SpeciesMean:
        symbols = np.concatenate([a.get_chemical_symbols() for a in snapshots])       # (N,)
        means = {}
        for label in LABELS:
            values = np.concatenate([a.arrays[label] for a in snapshots])            # (N, ...)
            means[label] = {s: values[symbols == s].mean(0) for s in np.unique(symbols)}
        return cls(means)

    def predict(self, atoms: ase.Atoms) -> dict[str, np.ndarray]:
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(symbols) - set(self.means["born_charges"]))
        if unknown:
            raise ValueError(f"no training data for species {unknown}")
        return {label: np.stack([m[s] for s in symbols]) for label, m in self.means.items()}


@dataclass
class SiteMean:
    """The mean training tensor of each atom index of the supercell.

    Works only for structures with the training data's atom order; it cannot transfer.
    """

    symbols: list[str]
    means: dict[str, np.ndarray]  # label -> (n_atoms, ...)

    @classmethod
    def fit(cls, snapshots) -> SiteMean:
        symbols = snapshots[0].get_chemical_symbols()
        if any(a.get_chemical_symbols() != symbols for a in snapshots):
            raise ValueError("a per-site mean needs snapshots with one and the same atom order")
        return cls(symbols, {label: stack_labels(snapshots, label).mean(0) for label in LABELS})

    def predict(self, atoms: ase.Atoms) -> dict[str, np.ndarray]:
        if atoms.get_chemical_symbols() != self.symbols:
            raise ValueError("a per-site mean predicts only for the training supercell's atom order")
        return {label: mean.copy() for label, mean in self.means.items()}


class Sites(NamedTuple):
    """An ABO3 perovskite supercell mapped onto its ideal lattice."""

    grid: np.ndarray          # (n, 3) int: ideal positions in units of a/2, modulo 2·n_cells
    displacements: np.ndarray  # (n, 3) Å: positions minus ideal positions
    site_types: np.ndarray    # (n,) str: Ba, Ti, O_x, O_y or O_z
    n_cells: int              # the supercell is n_cells × n_cells × n_cells


def perovskite_sites(atoms: ase.Atoms, lattice_constant: float | None = None) -> Sites:
    """Map a cubic BaTiO3 supercell onto its ideal lattice (Ba at the cube corners).

    Args:
        atoms: a cubic supercell of n×n×n perovskite cells, atoms displaced by less than a/8
            (0.5 Å; at 400 K the data's largest displacement is 0.37 Å).
        lattice_constant: a in Å; by default the cell length over the number of Ba atoms^(1/3).

    Raises:
        ValueError: for a non-cubic cell, other species, or atoms too far from an ideal site.
    """
    cell = atoms.cell.array
    length = cell[0, 0]
    if not np.allclose(cell, length * np.eye(3), atol=1e-6 * length):
        raise ValueError("the linear baseline needs a cubic cell aligned with x, y, z")
    symbols = np.array(atoms.get_chemical_symbols())
    if not set(symbols) <= {"Ba", "Ti", "O"}:
        raise ValueError(f"expected only Ba, Ti, O; got {sorted(set(symbols))}")
    n_ba = int((symbols == "Ba").sum())
    a = lattice_constant or length / round(n_ba ** (1 / 3))
    n_cells = round(length / a)
    if not np.isclose(n_cells * a, length, rtol=1e-3):
        raise ValueError(f"cell length {length:.4f} Å is not a multiple of a = {a:.4f} Å")
    half = length / (2 * n_cells)
    # the ideal lattice is placed with a Ba site at the first Ba atom; the displacements are
    # then relative to that atom's, which no feature notices (they use only u_j − u_i)
    origin = atoms.positions[symbols == "Ba"][0]
    rel = atoms.positions - origin                                         # (n, 3)
    grid = np.round(rel / half).astype(int)                                # (n, 3)
    displacements = rel - grid * half                                      # (n, 3)
    if np.abs(displacements).max() > half / 4:
        worst = int(np.abs(displacements).max(1).argmax())
        raise ValueError(f"atom {worst} is more than a/8 from its ideal site; "
                         "not a thermal perovskite snapshot")
    grid = grid % (2 * n_cells)
    parity = grid % 2                                                      # (n, 3) in {0, 1}
    types = np.empty(len(atoms), dtype=object)
    expected = {"Ba": [(0, 0, 0)], "Ti": [(1, 1, 1)], "O": [(0, 1, 1), (1, 0, 1), (1, 1, 0)]}
    for i, (s, p) in enumerate(zip(symbols, map(tuple, parity))):
        if p not in expected[s]:
            raise ValueError(f"atom {i} ({s}) is not on a {s} site of the perovskite lattice")
        types[i] = s if s != "O" else "O_" + "xyz"[p.index(0)]
    return Sites(grid, displacements, types.astype(str), n_cells)


def neighbour_offsets(site_type: str, radius: float, lattice_constant: float) -> np.ndarray:
    """Grid offsets (units of a/2) from a site of ``site_type`` to its ideal neighbours.

    All neighbours within ``radius`` Å, the site itself excluded, in a fixed (sorted) order so
    that feature *k* means the same neighbour at every site of this type.
    """
    parity = {"Ba": (0, 0, 0), "Ti": (1, 1, 1), "O_x": (0, 1, 1), "O_y": (1, 0, 1),
              "O_z": (1, 1, 0)}[site_type]
    half = lattice_constant / 2
    reach = int(np.floor(radius / half))
    r = np.arange(-reach, reach + 1)
    offsets = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)  # (m, 3)
    occupied = {(0, 0, 0), (1, 1, 1), (0, 1, 1), (1, 0, 1), (1, 1, 0)}
    keep = [o for o in offsets
            if 0 < np.linalg.norm(o) * half < radius
            and tuple((np.array(parity) + o) % 2) in occupied]
    return np.array(sorted(map(tuple, keep)), dtype=int).reshape(-1, 3)


def neighbour_features(sites: Sites, offsets: np.ndarray, atom_indices) -> np.ndarray:
    """Relative displacements u_j − u_i of each atom's neighbours, (len(atom_indices), 3·m)."""
    size = 2 * sites.n_cells
    lookup = np.full((size,) * 3, -1)                       # grid point -> atom index
    lookup[tuple(sites.grid.T)] = np.arange(len(sites.grid))
    atom_indices = np.asarray(atom_indices, dtype=int)
    neighbours = (sites.grid[atom_indices, None, :] + offsets[None]) % size    # (n, m, 3)
    js = lookup[tuple(np.moveaxis(neighbours, -1, 0))]                           # (n, m)
    if (js < 0).any():
        raise ValueError("a neighbour site is empty: not a complete perovskite supercell")
    relative = sites.displacements[js] - sites.displacements[atom_indices, None]  # (n, m, 3)
    return relative.reshape(len(atom_indices), 3 * len(offsets))


@dataclass
class LinearNeighbours:
    """Per site type, each tensor as a linear function of the neighbours' relative displacements.

    The model is T_i = T̄_type + W_type · [u_j − u_i]_{j ∈ shell(i)}, fitted by ridge regression
    (closed form) per site type and label; the shell radius and the ridge strength are chosen,
    per label, as those with the smallest validation MAE.
    """

    lattice_constant: float
    radius: dict[str, float] = field(default_factory=dict)   # label -> Å
    alpha: dict[str, float] = field(default_factory=dict)    # label -> ridge strength (Å²)
    weights: dict = field(default_factory=dict)               # (label, site type) -> (mean, W)

    @classmethod
    def fit(cls, train, val, *, radii=(2.1, 3.0, 3.6, 4.1, 4.6, 5.0, 5.7),
            alphas=tuple(10.0 ** np.arange(-7, 2))) -> LinearNeighbours:
        """Fit on ``train``, choose radius and ridge strength on ``val`` (lists of ase.Atoms).

        The radii are shells of the ideal lattice (a ≈ 4 Å: Ti–O at a/2, Ba–O and O–O at
        a/√2, Ba–Ti at a√3/2, ...); keep them below half the cell length, or a neighbour and
        its periodic image would enter twice. ``alphas`` multiply the number of samples (the
        penalty is α·N·|W|², displacements in Å).
        """
        symbols = np.array(train[0].get_chemical_symbols())
        length = train[0].cell.array[0, 0]
        a = length / round((symbols == "Ba").sum() ** (1 / 3))
        if max(radii) >= length / 2:
            raise ValueError(f"radius {max(radii)} Å reaches half the cell ({length / 2:.2f} Å)")
        model = cls(lattice_constant=a)
        sites_train = [perovskite_sites(x, a) for x in train]
        sites_val = [perovskite_sites(x, a) for x in val]
        for label in LABELS:
            y_train = stack_labels(train, label)
            y_val = stack_labels(val, label)
            best = (np.inf, None, None, None)
            for radius in radii:
                design = {t: _design(sites_train, t, radius, a) for t in SITE_TYPES}
                design_val = {t: _design(sites_val, t, radius, a) for t in SITE_TYPES}
                for alpha in alphas:
                    weights = {t: _ridge(design[t][0], y_train[design[t][1]], alpha)
                               for t in SITE_TYPES}
                    error = np.mean(np.concatenate([
                        np.abs(_apply(weights[t], design_val[t][0]) - y_val[design_val[t][1]])
                        .ravel() for t in SITE_TYPES]))
                    if error < best[0]:
                        best = (error, radius, alpha, weights)
            _, model.radius[label], model.alpha[label], weights = best
            for t in SITE_TYPES:
                model.weights[label, t] = weights[t]
        return model

    def predict(self, atoms: ase.Atoms) -> dict[str, np.ndarray]:
        sites = perovskite_sites(atoms, self.lattice_constant)
        out = _zeros(atoms)
        for label in LABELS:
            for t in SITE_TYPES:
                atoms_of_type = np.flatnonzero(sites.site_types == t)
                if len(atoms_of_type) == 0:
                    continue
                offsets = neighbour_offsets(t, self.radius[label], self.lattice_constant)
                x = neighbour_features(sites, offsets, atoms_of_type)
                out[label][atoms_of_type] = _apply(self.weights[label, t], x)
        return out


def _design(sites_list, site_type, radius, a):
    """Stacked features of every site of one type over snapshots, and where their labels are."""
    offsets = neighbour_offsets(site_type, radius, a)
    xs, where = [], ([], [])
    for k, sites in enumerate(sites_list):
        idx = np.flatnonzero(sites.site_types == site_type)
        xs.append(neighbour_features(sites, offsets, idx))
        where[0].extend([k] * len(idx))
        where[1].extend(idx)
    return np.concatenate(xs), (np.array(where[0]), np.array(where[1]))


def _ridge(x, y, alpha):
    """Ridge regression with an unpenalised intercept; returns (x mean, y mean, W)."""
    y = y.reshape(len(y), -1)                                               # (N, d_out)
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    w = np.linalg.solve(xc.T @ xc + alpha * len(x) * np.eye(x.shape[1]), xc.T @ yc)
    return x_mean, y_mean, w


def _apply(weights, x):
    x_mean, y_mean, w = weights
    n_out = w.shape[1]
    shape = (3, 3) if n_out == 9 else (3, 3, 3)
    return ((x - x_mean) @ w + y_mean).reshape(len(x), *shape)
