"""Local atomic motifs and their Gram-matrix representation (chapter 6).

A *motif* is an atom and its ``n`` nearest neighbours, written as the (n, 3) vectors ``X`` from
the centre to the neighbours, ordered by distance.  Its Gram matrix ``G = X Xᵀ`` (n × n) holds
every squared distance ``|x_i|²`` on the diagonal and every ``x_i·x_j`` off it: it does not
change when the motif is rotated or reflected (``X R``, R ∈ O(3)), and a permutation P of the
neighbours permutes its rows and columns (``P G Pᵀ``).  The upper triangle — 36 numbers for
n = 8 — is the representation the VAE of :mod:`teachlib.vae` learns.

Going back is linear algebra: a Gram matrix of points in 3D has rank 3, so the eigenvectors of
its three largest eigenvalues give ``X = V₃ diag(√λ₃)`` up to an O(3) transformation
(:func:`coordinates_from_gram`); a noisy or generated G is first projected onto the nearest
positive semidefinite rank-3 matrix (Eckart–Young), which that same formula does.

This module holds the representation and the judging of motifs (validity, coordination,
angles, alignment); the files and views of motifs are at the end.

>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(8, 3))                       # a made-up motif
>>> g = gram_matrix(x)                                # (8, 8)
>>> gram_features(x).shape                            # its upper triangle
(36,)
>>> back = coordinates_from_gram(g)                   # X again, up to rotation/reflection
>>> round(aligned_rmsd(back, x), 8)
0.0
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from teachlib.silicon import BOND_CUTOFF, angles_between
from teachlib.symmetry import gram_matrix, upper_triangle

N_NEIGHBOURS = 8
CUTOFF = 4.0  # Å: the neighbours of a motif lie within this distance of its centre
MIN_DISTANCE = 2.0  # Å: no two atoms of a valid motif are closer
SHELLS = ((0, 1, 2, 3), (4, 5, 6, 7))  # bonded neighbours, then the nearest second-shell ones


# --------------------------------------------------------------------------------------------
# Local environments (the a-Si cells themselves: teachlib.data.load_asi)
# --------------------------------------------------------------------------------------------


def local_environments(atoms, *, n_neighbours: int = N_NEIGHBOURS, cutoff: float = CUTOFF):
    """The ``n_neighbours`` nearest neighbours of every atom within ``cutoff``, as vectors.

    Args:
        atoms: an ``ase.Atoms`` (periodic or not).
        n_neighbours: how many neighbours to keep, nearest first.
        cutoff: neighbours farther than this (Å) are never kept.

    Returns:
        ``(vectors, centres)``: (M, n, 3) vectors from each centre to its neighbours sorted by
        distance, and the (M,) indices of those centres: the atoms with at least
        ``n_neighbours`` neighbours within ``cutoff`` (in a-Si every atom, for n = 8).

    >>> from ase.build import bulk
    >>> x, centres = local_environments(bulk("Si", "diamond", a=5.431), n_neighbours=4)
    >>> x.shape, np.round(np.linalg.norm(x, axis=-1), 3).tolist()[0]
    ((2, 4, 3), [2.352, 2.352, 2.352, 2.352])
    """
    from ase.neighborlist import neighbor_list

    i, d, vectors = neighbor_list("idD", atoms, cutoff)
    order = np.lexsort((d, i))  # by centre, then by distance
    i, vectors = i[order], vectors[order]
    counts = np.bincount(i, minlength=len(atoms))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    centres = np.flatnonzero(counts >= n_neighbours)
    rows = start[centres, None] + np.arange(n_neighbours)[None, :]  # (M, n)
    return vectors[rows], centres


def sort_by_distance(x):
    """Neighbours (..., n, 3) reordered by their distance from the centre."""
    x = np.asarray(x)
    order = np.argsort(np.linalg.norm(x, axis=-1), axis=-1)
    return np.take_along_axis(x, order[..., None], axis=-2)


def permutation_copies(x, n_copies: int, rng: np.random.Generator, *, groups=SHELLS):
    """Augment motifs with copies whose neighbours are permuted inside each group.

    The four bonded neighbours of an a-Si atom are almost equally far, so their order by
    distance is decided by noise; likewise among the second-shell ones.  Permuting inside
    these groups (not across them) tells a model that this order carries no information.

    Args:
        x: (M, n, 3) motifs.
        n_copies: copies per motif; the first copy is the motif itself.
        rng: a NumPy generator.
        groups: tuples of neighbour slots permuted among themselves.

    Returns:
        (M * n_copies, n, 3), the copies of motif m at rows m*n_copies ... (m+1)*n_copies - 1.

    >>> x = np.arange(2 * 8 * 3, dtype=float).reshape(2, 8, 3)
    >>> y = permutation_copies(x, 3, np.random.default_rng(0))
    >>> y.shape, bool((y[0] == x[0]).all()), bool((y[3] == x[1]).all())
    ((6, 8, 3), True, True)
    """
    m, n, _ = x.shape
    perms = np.tile(np.arange(n), (m, n_copies, 1))  # (M, C, n)
    for group in groups:
        group = np.asarray(group)
        keys = rng.random((m, n_copies, len(group)))
        keys[:, 0, :] = np.arange(len(group))  # copy 0 keeps the original order
        perms[:, :, group] = group[np.argsort(keys, axis=-1)]
    copies = np.take_along_axis(x[:, None], perms[..., None], axis=2)  # (M, C, n, 3)
    return copies.reshape(m * n_copies, n, 3)


# --------------------------------------------------------------------------------------------
# Gram features, their normalisation and the way back to coordinates
# --------------------------------------------------------------------------------------------


def gram_features(x):
    """Upper triangle (diagonal included) of the Gram matrix of motifs (..., n, 3).

    Returns (..., n(n+1)/2), in the order of ``np.triu_indices(n)``: 36 numbers for n = 8.
    """
    return upper_triangle(gram_matrix(np.asarray(x)))


def gram_from_features(features, n: int = N_NEIGHBOURS):
    """The symmetric (..., n, n) Gram matrices whose upper triangles are ``features``."""
    features = np.asarray(features)
    rows, cols = np.triu_indices(n)
    g = np.zeros(features.shape[:-1] + (n, n), dtype=features.dtype)
    g[..., rows, cols] = features
    g[..., cols, rows] = features
    return g


def is_diagonal(n: int = N_NEIGHBOURS) -> np.ndarray:
    """(n(n+1)/2,) booleans: which features are diagonal entries |x_i|² of G."""
    rows, cols = np.triu_indices(n)
    return rows == cols


@dataclasses.dataclass(frozen=True)
class Normaliser:
    """Standardise diagonal and off-diagonal Gram entries separately.

    Diagonal entries are squared distances (5.5 Å² for a bond, 10–15 Å² for the second
    shell); off-diagonal ones are dot products of either sign.  Each kind gets one mean and
    one standard deviation, shared by all its entries, so that permuting the neighbours
    commutes with the normalisation (a per-entry scaling would not).

    >>> f = gram_features(np.random.default_rng(0).normal(size=(100, 8, 3)))
    >>> z = Normaliser.fit(f).normalise(f)
    >>> round(float(z[:, is_diagonal()].std()), 6), round(float(z[:, ~is_diagonal()].mean()), 6)
    (1.0, 0.0)
    """

    diagonal_mean: float
    diagonal_std: float
    off_mean: float
    off_std: float
    n: int = N_NEIGHBOURS

    @classmethod
    def fit(cls, features) -> Normaliser:
        """Means and standard deviations of the two kinds of entries in ``features`` (M, F)."""
        features = np.asarray(features)
        n = int(round((np.sqrt(8 * features.shape[-1] + 1) - 1) / 2))
        diagonal = is_diagonal(n)
        return cls(float(features[:, diagonal].mean()), float(features[:, diagonal].std()),
                   float(features[:, ~diagonal].mean()), float(features[:, ~diagonal].std()), n)

    def _mean_std(self):
        diagonal = is_diagonal(self.n)
        mean = np.where(diagonal, self.diagonal_mean, self.off_mean)
        std = np.where(diagonal, self.diagonal_std, self.off_std)
        return mean, std

    def normalise(self, features):
        """Gram features (Å²) → normalised features (dimensionless)."""
        mean, std = self._mean_std()
        return (np.asarray(features) - mean) / std

    def denormalise(self, z):
        """Normalised features → Gram features in Å²."""
        mean, std = self._mean_std()
        return np.asarray(z) * std + mean


def coordinates_from_gram(g, dim: int = 3):
    """Coordinates (..., n, dim) whose Gram matrix is closest to ``g`` (..., n, n).

    The nearest positive semidefinite matrix of rank ≤ ``dim`` (in the Frobenius norm) keeps
    the ``dim`` largest eigenvalues λ (negative ones set to zero) and their eigenvectors V;
    then ``X = V diag(√λ)``.  For an exact Gram matrix this returns the motif up to an O(3)
    transformation.

    >>> x = np.array([[1., 0, 0], [0, 2, 0], [0, 0, 3], [1, 1, 1]])
    >>> np.allclose(gram_matrix(coordinates_from_gram(gram_matrix(x))), gram_matrix(x))
    True
    """
    g = np.asarray(g, dtype=float)
    g = 0.5 * (g + np.swapaxes(g, -1, -2))
    eigenvalues, eigenvectors = np.linalg.eigh(g)  # ascending
    top_values = np.clip(eigenvalues[..., -dim:], 0.0, None)  # (..., dim)
    return eigenvectors[..., -dim:] * np.sqrt(top_values)[..., None, :]


def coordinates_from_features(features, normaliser: Normaliser | None = None):
    """Motifs (..., n, 3) from (normalised, if ``normaliser`` is given) Gram features."""
    if normaliser is not None:
        features = normaliser.denormalise(features)
    return coordinates_from_gram(gram_from_features(features, _n_from_features(features)))


def _n_from_features(features) -> int:
    return int(round((np.sqrt(8 * np.shape(features)[-1] + 1) - 1) / 2))


# --------------------------------------------------------------------------------------------
# Alignment: best rotation/reflection (Kabsch), then neighbour matching
# --------------------------------------------------------------------------------------------


def kabsch(x, y, *, reflection: bool = True):
    """The orthogonal matrix R minimising ``|x R - y|`` for point sets (n, 3) about the origin.

    With ``reflection=True`` R may have det −1 (the best element of O(3)), which is what a
    Gram matrix leaves open; else R is a proper rotation.

    >>> x = np.random.default_rng(1).normal(size=(5, 3))
    >>> mirror = np.diag([1.0, 1.0, -1.0])
    >>> np.allclose(x @ kabsch(x, x @ mirror), x @ mirror)
    True
    """
    u, _, vt = np.linalg.svd(np.asarray(x).T @ np.asarray(y))
    if not reflection and np.linalg.det(u @ vt) < 0:
        u[:, -1] *= -1
    return u @ vt


def aligned_rmsd(x, y, *, reflection: bool = True) -> float:
    """Root-mean-square distance (Å) between motifs (n, 3) after the best O(3) alignment."""
    r = kabsch(x, y, reflection=reflection)
    return float(np.sqrt(np.mean(np.sum((np.asarray(x) @ r - y) ** 2, axis=-1))))


def matched_rmsd(x, y, *, n_rounds: int = 3) -> float:
    """RMSD after the best O(3) alignment *and* the best assignment of neighbours.

    Aligns in the given order, then alternates Hungarian matching of the aligned neighbours
    with re-alignment, and returns the smallest RMSD met.  Use it when two motifs may list the
    same neighbours in another order (swapped nearly-equidistant neighbours).

    It is a local search (like ICP): it undoes a swap or two of neighbours that lie near each
    other after the first alignment, not an arbitrary shuffle.

    >>> from ase.build import bulk
    >>> x = local_environments(bulk("Si", "diamond", a=5.431))[0][0]    # (8, 3)
    >>> x = x + np.random.default_rng(2).normal(0, 0.1, x.shape)
    >>> q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))  # a random O(3)
    >>> y = x[[1, 0, 2, 3, 4, 5, 6, 7]] @ q                                # two bonds swapped
    >>> round(aligned_rmsd(y, x), 2), round(matched_rmsd(y, x), 8)
    (1.96, 0.0)
    """
    x, y = np.asarray(x), np.asarray(y)
    best = aligned_rmsd(x, y)
    current = x
    for _ in range(n_rounds):
        aligned = current @ kabsch(current, y)
        cost = np.sum((aligned[:, None, :] - y[None, :, :]) ** 2, axis=-1)
        _, order = linear_sum_assignment(cost.T)  # y[k] is matched with current[order[k]]
        current = current[order]
        best = min(best, aligned_rmsd(current, y))
    return best


def nearest_rmsd(x, reference, *, n_candidates: int = 5):
    """Distance (Å) from each motif in ``x`` to the most similar motif in ``reference``.

    Both sets are put in distance order; the ``n_candidates`` reference motifs closest in
    Gram features (Å², no alignment needed) are then compared by :func:`matched_rmsd`, and the
    smallest value is returned, (M,).  A generator that copies its training set gives values
    far below those of genuinely new (held-out) motifs.
    """
    x, reference = sort_by_distance(x), sort_by_distance(reference)
    f_x, f_ref = gram_features(x), gram_features(reference)  # (M, 36), (N, 36)
    distances = (np.sum(f_x**2, 1)[:, None] + np.sum(f_ref**2, 1)[None, :]
                 - 2.0 * f_x @ f_ref.T)  # (M, N) squared distances
    candidates = np.argsort(distances, axis=1)[:, :n_candidates]
    return np.array([min(matched_rmsd(m, reference[c]) for c in row)
                     for m, row in zip(x, candidates)])


# --------------------------------------------------------------------------------------------
# Judging motifs: validity, coordination, bond angles
# --------------------------------------------------------------------------------------------


def with_centre(x):
    """Motifs (..., n, 3) → (..., n + 1, 3) with the centre atom (origin) first."""
    x = np.asarray(x)
    return np.concatenate([np.zeros(x.shape[:-2] + (1, 3)), x], axis=-2)


def closest_pair(x):
    """The shortest distance (Å) between any two of the n + 1 atoms of each motif (...,)."""
    atoms = with_centre(x)
    d = np.linalg.norm(atoms[..., :, None, :] - atoms[..., None, :, :], axis=-1)
    n = d.shape[-1]
    return np.min(d + np.where(np.eye(n, dtype=bool), np.inf, 0.0), axis=(-1, -2))


def is_valid(x, *, min_distance: float = MIN_DISTANCE, cutoff: float = CUTOFF):
    """Motifs (..., n, 3) with no pair closer than ``min_distance`` and all within ``cutoff``.

    >>> from ase.build import bulk
    >>> x, _ = local_environments(bulk("Si", "diamond", a=5.431))     # 4 bonds, 4 of 12 at 3.84 Å
    >>> is_valid(x).tolist(), is_valid(0.7 * x).tolist()
    ([True, True], [False, False])
    """
    x = np.asarray(x)
    within = np.all(np.linalg.norm(x, axis=-1) < cutoff, axis=-1)
    return within & (closest_pair(x) >= min_distance)


def centre_coordination(x, cutoff: float = BOND_CUTOFF):
    """Number of neighbours bonded to the centre (closer than ``cutoff``) of each motif."""
    return np.sum(np.linalg.norm(np.asarray(x), axis=-1) < cutoff, axis=-1)


def centre_angles(x, cutoff: float = BOND_CUTOFF) -> np.ndarray:
    """All bond angles (degrees) at the centres of motifs (M, n, 3), pooled."""
    angles = [angles_between(m[np.linalg.norm(m, axis=-1) < cutoff]) for m in np.asarray(x)]
    return np.concatenate(angles) if angles else np.zeros(0)


def distribution_peak(values, *, grid=None, bandwidth: float = 5.0) -> float:
    """Position of the maximum of a Gaussian kernel density estimate of ``values``.

    ``bandwidth`` is the kernel's standard deviation in the units of ``values``; the peak is
    searched on ``grid`` (default: 0.1-wide steps over the range of the values).  The default
    5° smooths away the sampling noise of a peak measured from ~1000 bond angles
    (about ±0.8° for a 10°-wide distribution, against ±1.8° with a 2° kernel).

    >>> round(distribution_peak(np.random.default_rng(0).normal(109.5, 10.0, 5000)))
    109
    """
    values = np.asarray(values, dtype=float)
    if grid is None:
        grid = np.arange(values.min(), values.max() + 0.1, 0.1)
    density = np.zeros(len(grid))
    for chunk in np.array_split(values, max(1, len(values) // 2000)):
        density += np.exp(-0.5 * ((grid[:, None] - chunk[None, :]) / bandwidth) ** 2).sum(axis=1)
    return float(grid[np.argmax(density)])


# --------------------------------------------------------------------------------------------
# Files and views
# --------------------------------------------------------------------------------------------


def motifs_to_atoms(x, infos=None) -> list:
    """Motifs (M, n, 3) → ``ase.Atoms`` frames of n + 1 Si, centre first at the origin, no pbc."""
    from ase import Atoms

    frames = []
    for m, motif in enumerate(np.asarray(x)):
        atoms = Atoms(f"Si{len(motif) + 1}", positions=with_centre(motif), pbc=False)
        if infos is not None:
            atoms.info.update(infos[m])
        frames.append(atoms)
    return frames


def write_motifs(path, x, infos=None) -> Path:
    """Write motifs (M, n, 3) as extxyz, one frame each (see :func:`motifs_to_atoms`).

    ``infos``: optional list of per-frame dicts stored in each frame's info (comment line).
    """
    import ase.io

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(path, motifs_to_atoms(x, infos), format="extxyz")
    return path


def show_motifs(motifs, *, spacing: float = 9.0, rotation: str = "-10x,-10y"):
    """One 3D view of a few motifs (list of (n, 3)), side by side from left to right.

    The one place where chapter 6 draws structures: it lines the motifs (centre atoms
    included) up along x and hands them to :func:`teachlib.viz3d.show` — an nglview widget
    live, with a static picture that the HTML book keeps.  Make the result the last
    expression of a cell.

    >>> view = show_motifs([np.eye(3) * 2.35, -np.eye(3) * 2.35])
    >>> view.atoms.get_chemical_formula(), round(float(view.atoms.positions[4, 0]), 2)
    ('Si8', 9.0)
    """
    from ase import Atoms

    from teachlib import viz3d

    combined = Atoms(pbc=False)
    for k, atoms in enumerate(motifs_to_atoms([np.asarray(m) for m in motifs])):
        atoms.translate([k * spacing, 0.0, 0.0])
        combined += atoms
    return viz3d.show(combined, style="ball+stick", rotation=rotation)
