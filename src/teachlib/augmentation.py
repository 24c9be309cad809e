"""Chapter 1's experiment: what does it cost to learn rotations from data?

A rotation-invariant target (the Morse energy of a small cluster) is learned by two MLPs that
see the atoms in the same fixed order, so both face the same permutation problem and only the
cost of rotations is measured:

* on raw (centred) coordinates, trained with ``k`` randomly rotated copies of each example;
* on the upper triangle of the Gram matrix G = X Xᵀ, which no rotation or reflection changes.

>>> rng = np.random.default_rng(0)
>>> x = random_clusters(rng, 3, n_atoms=5)
>>> x.shape, morse_energy(x).shape
((3, 5, 3), (3,))
>>> gram_features(x).shape, raw_features(x).shape
((3, 15), (3, 15))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from teachlib import symmetry, train


def random_clusters(rng: np.random.Generator, n_clusters: int, *, n_atoms: int = 6,
                    radius: float = 1.3, min_distance: float = 0.85) -> np.ndarray:
    """Random compact clusters: points in a ball, no two closer than ``min_distance``.

    Atoms are added one at a time from uniform candidates in the ball of ``radius`` (units of
    the Morse equilibrium distance r₀) and kept if far enough from those already placed.
    Returns (n_clusters, n_atoms, 3); each cluster comes in a random orientation.
    """
    clusters = np.empty((n_clusters, n_atoms, 3))
    for c in range(n_clusters):
        placed = []
        while len(placed) < n_atoms:
            candidate = rng.uniform(-radius, radius, size=3)
            if candidate @ candidate > radius**2:
                continue
            if all(np.sum((candidate - p) ** 2) >= min_distance**2 for p in placed):
                placed.append(candidate)
        clusters[c] = placed
    return clusters


def morse_energy(x: np.ndarray, *, a: float = 2.0, r0: float = 1.0, depth: float = 1.0) -> np.ndarray:
    """Σ_{i<j} D[(1 − e^{−a(r_ij − r₀)})² − 1] for clusters ``x`` (..., n_atoms, 3) -> (...,).

    It depends on distances only, so it is invariant to rotations, reflections, translations
    and permutations of the atoms.

    >>> float(morse_energy(np.array([[0.0, 0, 0], [1.0, 0, 0]])))   # one pair at r₀
    -1.0
    """
    distances = np.linalg.norm(x[..., :, None, :] - x[..., None, :, :], axis=-1)
    i, j = np.triu_indices(x.shape[-2], k=1)
    r = distances[..., i, j]
    return depth * ((1 - np.exp(-a * (r - r0))) ** 2 - 1).sum(-1)


def raw_features(x: np.ndarray) -> np.ndarray:
    """Centred coordinates, flattened: (n, n_atoms, 3) -> (n, 3·n_atoms). Not rotation invariant."""
    return np.asarray(symmetry.center(x)).reshape(len(x), -1)


def gram_features(x: np.ndarray) -> np.ndarray:
    """Upper triangle of G = X Xᵀ of centred coordinates: (n, n_atoms, 3) -> (n, n(n+1)/2)."""
    centred = np.asarray(symmetry.center(x))
    return np.asarray(symmetry.upper_triangle(symmetry.gram_matrix(centred)))


def rotated_copies(key, x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` randomly rotated copies of every cluster (proper rotations), with repeated targets.

    Returns (n·k, n_atoms, 3) and (n·k,). Copy 0 is rotated too: the originals carry no special
    orientation, since the clusters are generated in random orientations anyway.
    """
    rotations = np.asarray(symmetry.random_o3_batch(key, len(x) * k, reflection=False))  # (n·k, 3, 3)
    copies = np.repeat(x, k, axis=0)  # (n·k, n_atoms, 3)
    return np.einsum("nij,naj->nai", rotations, copies), np.repeat(y, k, axis=0)


class MLP(nn.Module):
    """A plain multilayer perceptron with SiLU activations and a scalar output."""

    hidden: tuple[int, ...] = (128, 128)

    @nn.compact
    def __call__(self, x):  # (batch, features) -> (batch,)
        for width in self.hidden:
            x = nn.silu(nn.Dense(width)(x))
        return nn.Dense(1)(x)[..., 0]


@dataclass
class Regressor:
    """A trained MLP with the input and output scaling it was trained with."""

    model: MLP
    params: dict
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    history: dict

    def __call__(self, features: np.ndarray) -> np.ndarray:
        scaled = ((features - self.x_mean) / self.x_std).astype(np.float32)
        return np.asarray(self.model.apply(self.params, scaled)) * self.y_std + self.y_mean


def fit_regressor(features, targets, val_features, val_targets, *, hidden=(128, 128), steps: int = 3000,
                  batch_size: int = 128, learning_rate: float = 2e-3, seed: int = 0) -> Regressor:
    """Train an :class:`MLP` for a fixed number of optimiser ``steps`` (same compute for all).

    Inputs and targets are standardised with the training statistics; the learning rate follows
    a cosine decay; the parameters with the best validation loss are kept.
    """
    features = np.asarray(features, dtype=np.float64)
    x_mean, x_std = features.mean(0), features.std(0) + 1e-8
    y_mean, y_std = float(np.mean(targets)), float(np.std(targets))
    scale_x = lambda f: ((np.asarray(f) - x_mean) / x_std).astype(np.float32)  # noqa: E731
    scale_y = lambda t: ((np.asarray(t) - y_mean) / y_std).astype(np.float32)  # noqa: E731
    model = MLP(tuple(hidden))
    params = model.init(jax.random.PRNGKey(seed), scale_x(features[:1]))
    batch_size = min(batch_size, len(features))
    steps_per_epoch = max(1, steps // 20)  # validate 20 times, whatever the data size
    epochs = max(1, steps // steps_per_epoch)
    optimizer = _cosine_adam(learning_rate, epochs * steps_per_epoch)
    result = train.fit(
        _squared_error(model), params, {"x": scale_x(features), "y": scale_y(targets)},
        val_data={"x": scale_x(val_features), "y": scale_y(val_targets)},
        epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch, optimizer=optimizer,
        seed=seed, progress=False)
    return Regressor(model, result.params, x_mean, x_std, y_mean, y_std, result.history)


@functools.lru_cache(maxsize=8)
def _squared_error(model: MLP):
    """The loss of ``model`` (one function object per model, so compiled steps are reused)."""

    def loss(params, batch):
        return jnp.mean((model.apply(params, batch["x"]) - batch["y"]) ** 2)

    return loss


@functools.lru_cache(maxsize=8)
def _cosine_adam(learning_rate: float, total_steps: int) -> optax.GradientTransformation:
    return optax.adam(optax.cosine_decay_schedule(learning_rate, total_steps))


def mean_absolute_error(prediction, target) -> float:
    """Mean of |prediction − target|."""
    return float(np.mean(np.abs(np.asarray(prediction) - np.asarray(target))))


def factor_needed(factors, augmented_errors, invariant_error: float) -> float:
    """The smallest augmentation factor whose error is at most the invariant model's; ``inf`` if none.

    >>> factor_needed([1, 4, 16], [0.9, 0.3, 0.2], 0.25)
    16
    >>> factor_needed([1, 4, 16], [0.9, 0.3, 0.2], 0.1)
    inf
    """
    for factor, error in zip(factors, augmented_errors):
        if error <= invariant_error:
            return factor
    return float("inf")


def log_log_slope(x, y) -> float:
    """Slope of a straight-line fit of log y against log x (negative: y falls as x grows).

    >>> round(log_log_slope([1, 10, 100], [1.0, 0.1, 0.01]), 6)
    -1.0
    """
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])
