"""Symmetry operations and the checks that a function respects them.

The three symmetries of an isolated group of atoms: permutations of identical atoms,
translations, and rotations and reflections (the group O(3)). A function ``f`` is *invariant*
when ``f(g·x) = f(x)`` and *equivariant* when ``f(g·x) = D(g) f(x)`` for a representation D.

>>> import jax
>>> R = random_o3(jax.random.PRNGKey(0), reflection=True)
>>> bool(abs(abs(np.linalg.det(R)) - 1) < 1e-6), float(np.linalg.det(R)) < 0
(True, True)
>>> x = np.random.default_rng(0).normal(size=(5, 3))
>>> float(np.abs(gram_matrix(x @ R.T) - gram_matrix(x)).max()) < 1e-5
True
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np


@contextlib.contextmanager
def float64():
    """Run JAX in double precision inside a ``with`` block (for checks to 1e-10 and beyond).

    >>> with float64():
    ...     print(random_o3(jax.random.PRNGKey(0)).dtype)
    float64
    """
    if hasattr(jax, "enable_x64"):
        with jax.enable_x64(True):
            yield
    else:  # older jax, e.g. in Colab
        from jax.experimental import enable_x64

        with enable_x64():
            yield


def random_rotation(key) -> jnp.ndarray:
    """A rotation matrix drawn uniformly (Haar measure) from SO(3); shape (3, 3).

    Uses the QR decomposition of a Gaussian matrix with the sign convention that makes the
    distribution uniform (Mezzadri 2007).
    """
    a = jax.random.normal(key, (3, 3))  # float64 inside float64()
    q, r = jnp.linalg.qr(a)
    q = q * jnp.sign(jnp.diag(r))[None, :]
    return q * jnp.linalg.det(q)  # flip the sign of the whole matrix if det = -1


def random_o3(key, reflection: bool | None = None) -> jnp.ndarray:
    """A random element of O(3), shape (3, 3).

    Args:
        key: a JAX PRNG key.
        reflection: True for an improper element (det −1: a rotation times the inversion),
            False for a proper rotation, None to pick either with probability ½.
    """
    key_rotation, key_sign = jax.random.split(key)
    rotation = random_rotation(key_rotation)
    if reflection is None:  # written with jnp.where so that jax.vmap works over keys
        return jnp.where(jax.random.bernoulli(key_sign), -rotation, rotation)
    return -rotation if reflection else rotation


def random_o3_batch(key, n: int, reflection: bool | None = None) -> jnp.ndarray:
    """``n`` independent random elements of O(3), shape (n, 3, 3); see :func:`random_o3`."""
    return jax.vmap(lambda k: random_o3(k, reflection))(jax.random.split(key, n))


def random_permutation(key, n: int) -> np.ndarray:
    """A random permutation of ``range(n)`` as a NumPy int array."""
    return np.asarray(jax.random.permutation(key, n))


def center(x):
    """Positions relative to their centroid: removes translations. ``x``: (..., n, 3)."""
    return x - x.mean(axis=-2, keepdims=True)


def gram_matrix(x):
    """G = X Xᵀ of (centred or relative) position vectors: invariant under O(3).

    ``x``: (..., n, 3) -> (..., n, n). Rotations and reflections leave it unchanged
    (``(XRᵀ)(XRᵀ)ᵀ = X Rᵀ R Xᵀ = X Xᵀ``); a permutation P of the atoms permutes its rows and
    columns (P G Pᵀ), so it is *not* permutation invariant.
    """
    return x @ jnp.swapaxes(x, -1, -2) if isinstance(x, jax.Array) else x @ np.swapaxes(x, -1, -2)


def upper_triangle(matrix, *, diagonal: bool = True):
    """The upper triangle of (..., n, n) as (..., n(n+1)/2) (or n(n−1)/2 without diagonal)."""
    n = matrix.shape[-1]
    rows, cols = np.triu_indices(n, k=0 if diagonal else 1)
    return matrix[..., rows, cols]


def relative_error(actual, expected) -> float:
    """max |actual − expected| / max |expected|: the book's measure of a broken symmetry."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = np.abs(expected).max()
    if scale == 0:
        raise ValueError("the expected values are all zero; a relative error is undefined")
    return float(np.abs(actual - expected).max() / scale)


def invariance_error(f, x, transform) -> float:
    """Relative change of ``f(x)`` when its input is transformed: 0 for an invariant ``f``.

    >>> x = np.random.default_rng(1).normal(size=(4, 3))
    >>> R = np.asarray(random_o3(jax.random.PRNGKey(3)))
    >>> invariance_error(lambda y: gram_matrix(center(y)), x, lambda y: y @ R.T + 1.0) < 1e-6  # float32 R
    True
    """
    return relative_error(f(transform(x)), f(x))


def equivariance_error(f, x, transform_input, transform_output) -> float:
    """Relative error max |f(g·x) − D(g) f(x)| / max |f(x)| of an equivariant ``f``.

    ``transform_input`` applies g to the input, ``transform_output`` applies D(g) to an output.

    >>> x = np.random.default_rng(2).normal(size=(4, 3))
    >>> R = np.asarray(random_o3(jax.random.PRNGKey(4), reflection=True))
    >>> equivariance_error(center, x, lambda y: y @ R.T, lambda y: y @ R.T) < 1e-6
    True
    """
    return relative_error(f(transform_input(x)), transform_output(f(x)))
