"""Cartesian tensors of physics and their irreducible parts (irreps), met in chapter 2.

A Cartesian tensor with ``n`` indices holds ``3**n`` numbers; under a rotation or reflection
``g`` each index transforms with the 3x3 matrix of ``g`` (``R`` for a polar vector,
``det(R) R`` for a pseudovector such as a magnetic field). Any such tensor is a sum of pieces
that transform on their own, the irreps of O(3): ``1o ⊗ 1o = 0e + 1e + 2e`` (trace, the
antisymmetric part as a pseudovector, the symmetric traceless part). Index symmetries
(``ε_ij = ε_ji``) remove some of them. The change of basis comes from
:func:`e3nn_jax.reduced_tensor_product_basis`; its columns are orthonormal, so going to irreps
is a projection and coming back is its transpose, and the round trip is exact (to rounding)
for every tensor that has the symmetry.

The tensors of the book, with the index order of the data (``teachlib.data.load_batio3``):

====================  ==============================  ===============  ================
name                  indices                         symmetry         irreps
====================  ==============================  ===============  ================
``BORN_CHARGE``       Z*[α, β], two polar vectors     none             0e + 1e + 2e
``RAMAN``             R[displacement, field, field]   ``ijk=ikj``      2x1o + 2o + 3o
``DIELECTRIC``        ε∞[field, field]                ``ij=ji``        0e + 2e
``CHI2``              χ(2)[i, j, k], sym. in i, j     ``ijk=jik``      2x1o + 2o + 3o
``CHI2_KLEINMAN``     χ(2), fully symmetric           ``ijk=jik=ikj``  1o + 3o
``NMR_SHIELDING``     σ[B, μ], two pseudovectors      none             0e + 1e + 2e
====================  ==============================  ===============  ================

Arrays go through in the namespace they come in: a NumPy array stays NumPy (float64, so the
round trip is exact to ~1e-16), a JAX array stays JAX (and can be traced and differentiated).

>>> import numpy as np
>>> z = np.arange(9.0).reshape(3, 3)            # a (made-up) Born charge tensor
>>> BORN_CHARGE.irreps
1x0e+1x1e+1x2e
>>> parts = BORN_CHARGE.to_irreps(z)            # (9,) = 1 + 3 + 5 numbers
>>> np.allclose(BORN_CHARGE.from_irreps(parts), z)
True
>>> RAMAN.irreps, RAMAN.shape
(2x1o+1x2o+1x3o, (3, 3, 3))

References: M. Geiger and T. Smidt, "e3nn: Euclidean neural networks", arXiv:2207.09453
(reduced tensor products); J. F. Nye, *Physical Properties of Crystals* (index symmetries).
"""

from __future__ import annotations

import dataclasses
import functools
import string

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "CartesianTensor",
    "BORN_CHARGE",
    "RAMAN",
    "DIELECTRIC",
    "CHI2",
    "CHI2_KLEINMAN",
    "NMR_SHIELDING",
    "TENSORS",
    "rotate_cartesian",
]


def _namespace(x):
    """``jax.numpy`` for JAX arrays and tracers, ``numpy`` for everything else."""
    return jnp if isinstance(x, jax.Array) else np


@dataclasses.dataclass(frozen=True)
class CartesianTensor:
    """A kind of Cartesian tensor: its index irreps, its index symmetry, its irreps.

    Args:
        name: a short name (``"born_charge"``).
        formula: the index symmetry in e3nn's notation, e.g. ``"ij"`` (none), ``"ij=ji"``
            (symmetric), ``"ijk=ikj"`` (symmetric in the last two indices).
        index_irreps: the irrep of each index, in the order of the formula's first term:
            ``"1o"`` for a polar vector (displacement, electric field), ``"1e"`` for a
            pseudovector (magnetic field, magnetic moment).

    Example:
        >>> eps = CartesianTensor("dielectric", "ij=ji", ("1o", "1o"))
        >>> eps.irreps, eps.irreps.dim      # 6 independent numbers, not 9
        (1x0e+1x2e, 6)
    """

    name: str
    formula: str
    index_irreps: tuple[str, ...]

    def __post_init__(self):
        letters = self.formula.split("=")[0].lstrip("-")
        if len(letters) != len(self.index_irreps):
            raise ValueError(f"{self.name}: formula {self.formula!r} has {len(letters)} indices "
                             f"but {len(self.index_irreps)} index irreps were given")
        for ir in self.index_irreps:
            if e3nn.Irrep(ir).l != 1:
                raise ValueError(f"{self.name}: index irrep {ir} is not a vector (1o or 1e)")

    @property
    def rank(self) -> int:
        """Number of Cartesian indices."""
        return len(self.index_irreps)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one tensor, ``(3,) * rank``."""
        return (3,) * self.rank

    @functools.cached_property
    def _basis(self) -> tuple[e3nn.Irreps, np.ndarray]:
        letters = self.formula.split("=")[0].lstrip("-")
        q = e3nn.reduced_tensor_product_basis(
            self.formula, **{c: ir for c, ir in zip(letters, self.index_irreps)})
        # (3, ..., 3, dim) -> (3**rank, dim), orthonormal columns
        return q.irreps, np.asarray(q.array, dtype=np.float64).reshape(3**self.rank, -1)

    @property
    def irreps(self) -> e3nn.Irreps:
        """The irreps of the tensor's independent parts (``to_irreps`` output)."""
        return self._basis[0]

    @property
    def basis(self) -> np.ndarray:
        """The change of basis, shape ``(3, ..., 3, irreps.dim)``, orthonormal columns."""
        return self._basis[1].reshape(self.shape + (-1,))

    def to_irreps(self, x) -> e3nn.IrrepsArray:
        """Project Cartesian tensors ``(..., 3, ..., 3)`` onto irreps ``(..., irreps.dim)``.

        A tensor without the index symmetry loses its non-symmetric part (the projection
        keeps the closest symmetric tensor); :meth:`symmetry_error` measures how much that is.
        """
        xp = _namespace(x)
        x = xp.asarray(x)
        if x.shape[x.ndim - self.rank:] != self.shape:
            raise ValueError(f"{self.name}: expected trailing shape {self.shape}, got {x.shape}")
        q = xp.asarray(self._basis[1], dtype=x.dtype if x.dtype.kind == "f" else None)
        flat = x.reshape(x.shape[: x.ndim - self.rank] + (3**self.rank,))  # (..., 3**rank)
        return e3nn.IrrepsArray(self.irreps, flat @ q)  # (..., dim)

    def from_irreps(self, y):
        """Cartesian tensors ``(..., 3, ..., 3)`` from irreps ``(..., irreps.dim)``."""
        array = y.array if isinstance(y, e3nn.IrrepsArray) else y
        if isinstance(y, e3nn.IrrepsArray) and y.irreps != self.irreps:
            raise ValueError(f"{self.name}: expected irreps {self.irreps}, got {y.irreps}")
        xp = _namespace(array)
        array = xp.asarray(array)
        if array.shape[-1] != self.irreps.dim:
            raise ValueError(f"{self.name}: expected last axis {self.irreps.dim} "
                             f"({self.irreps}), got shape {array.shape}")
        q = xp.asarray(self._basis[1], dtype=array.dtype if array.dtype.kind == "f" else None)
        flat = array @ q.T  # (..., 3**rank)
        return flat.reshape(array.shape[:-1] + self.shape)

    def symmetrize(self, x):
        """The closest tensor with the index symmetry (to and from irreps)."""
        return self.from_irreps(self.to_irreps(x))

    def symmetry_error(self, x) -> float:
        """``max |x - symmetrize(x)| / max |x|``: how far ``x`` is from having the symmetry."""
        x = np.asarray(x, dtype=np.float64)
        return float(np.abs(x - self.symmetrize(x)).max() / np.abs(x).max())

    def rotate(self, x, matrix):
        """Transform Cartesian tensors by an O(3) matrix, index by index.

        Each polar index (``1o``) gets ``R``, each axial index (``1e``) gets ``det(R) R``.
        Agrees with ``from_irreps(to_irreps(x) @ D(R).T)`` (the point of chapter 2).
        """
        return rotate_cartesian(x, matrix, self.index_irreps)


def rotate_cartesian(x, matrix, index_irreps):
    """Apply the O(3) element ``matrix`` to every index of ``x`` (trailing axes).

    Args:
        x: Cartesian tensors, shape ``(..., 3, ..., 3)`` with ``len(index_irreps)`` trailing 3s.
        matrix: a 3x3 orthogonal matrix (a rotation, or a rotation times -1).
        index_irreps: ``"1o"`` (polar) or ``"1e"`` (axial) for each index.

    >>> import numpy as np
    >>> inversion = -np.eye(3)
    >>> v = np.array([1.0, 2.0, 3.0])
    >>> rotate_cartesian(v, inversion, ["1o"]), rotate_cartesian(v, inversion, ["1e"])
    (array([-1., -2., -3.]), array([1., 2., 3.]))
    """
    xp = _namespace(x)
    x = xp.asarray(x)
    rank = len(index_irreps)
    det = xp.linalg.det(xp.asarray(matrix))
    letters = string.ascii_letters[: 2 * rank]
    out, inp = letters[:rank], letters[rank:]
    factors = []
    for ir in index_irreps:
        p = e3nn.Irrep(ir).p  # +1: axial (1e) gets det(R) R; -1: polar (1o) gets R
        factors.append(matrix * det if p == 1 else matrix)
    spec = ",".join(f"{o}{i}" for o, i in zip(out, inp)) + f",...{inp}->...{out}"
    return xp.einsum(spec, *factors, x)


BORN_CHARGE = CartesianTensor("born_charge", "ij", ("1o", "1o"))
RAMAN = CartesianTensor("raman", "ijk=ikj", ("1o", "1o", "1o"))
DIELECTRIC = CartesianTensor("dielectric", "ij=ji", ("1o", "1o"))
CHI2 = CartesianTensor("chi2", "ijk=jik", ("1o", "1o", "1o"))
CHI2_KLEINMAN = CartesianTensor("chi2_kleinman", "ijk=jik=ikj", ("1o", "1o", "1o"))
NMR_SHIELDING = CartesianTensor("nmr_shielding", "ij", ("1e", "1e"))

#: every tensor of the book, by name
TENSORS = {t.name: t for t in (BORN_CHARGE, RAMAN, DIELECTRIC, CHI2, CHI2_KLEINMAN,
                               NMR_SHIELDING)}
