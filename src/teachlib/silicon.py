"""Amorphous silicon: a Stillinger-Weber potential in JAX, melt-quench MD, structure analysis.

The project makes its own a-Si cells (``scripts/make_asi.py``) with the Stillinger-Weber (SW)
potential [SW85]_ in the parameterisation of Vink et al. [Vink01]_ (three-body strength
λ = 1.5 × 21 = 31.5, energy scale ε = 1.64833 eV), which gives far better amorphous
structures than the original one.  Chapter 6 reuses the structure analysis below
(coordination, fourfold fraction, bond angles, radial distribution) to judge generated motifs.

The energy of a configuration is

.. math::

    E = \\sum_{i<j} \\phi_2(r_{ij}) + \\sum_i \\sum_{j<k} \\lambda\\varepsilon\\,
        g(r_{ij})\\, g(r_{ik}) \\left(\\cos\\theta_{jik} + \\tfrac13\\right)^2,

    \\phi_2(r) = A\\varepsilon \\left[B (\\sigma/r)^p - 1\\right] e^{\\sigma/(r - a\\sigma)},
    \\qquad g(r) = e^{\\gamma\\sigma/(r - a\\sigma)},

both terms vanishing smoothly at the cut-off ``r_c = aσ = 3.77 Å``.

**The three-body term in O(K) per atom.**  Summing over all neighbour pairs ``j<k`` of atom
``i`` costs O(K²).  Expanding the square, with unit vectors ``u_j`` and weights ``g_j``,

.. math::

    \\sum_{j \\ne k} g_j g_k (u_j\\!\\cdot u_k + \\tfrac13)^2
    = \\lVert T \\rVert_F^2 + \\tfrac23 \\lVert v \\rVert^2 + \\tfrac19 S^2
      - \\tfrac{16}{9} \\sum_j g_j^2,

where ``T = Σ_j g_j u_j u_jᵀ`` (3×3), ``v = Σ_j g_j u_j`` and ``S = Σ_j g_j`` (the last term
removes the ``j = k`` terms, for which ``(1 + 1/3)² = 16/9``).  That is exactly the sum over
neighbour pairs, at the cost of a sum over neighbours: :func:`energy` uses it, and
:func:`energy_pairs` is the plain double loop it is tested against (as is jax-md's SW in
``tests/test_silicon.py``).

References:
    .. [SW85] F. H. Stillinger and T. A. Weber, Phys. Rev. B 31, 5262 (1985).
    .. [Vink01] R. L. C. Vink, G. T. Barkema, W. F. van der Weg and N. Mousseau,
       J. Non-Cryst. Solids 282, 248 (2001).

Example: the energy per atom of diamond Si (a = 5.431 Å) with the original SW parameters is
-2.1683 eV × 2 = -4.3366 eV, because every bond angle is tetrahedral (three-body term zero)::

    >>> import numpy as np
    >>> from ase.build import bulk
    >>> atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)     # 64 atoms
    >>> pos, box = np.asarray(atoms.positions), np.diag(atoms.cell)
    >>> idx = neighbour_list(pos, box, cutoff=4.0, capacity=32)
    >>> e = float(energy(pos, box, idx, ORIGINAL)) / len(atoms)
    >>> round(e, 3)
    -4.337
    >>> round(float(energy(pos, box, idx, VINK)) / len(atoms), 3)        # ε = 1.64833 eV
    -3.297
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

# Physical constants in the units of this module: Å, eV, ps, atomic mass units.
KB = 8.617333262e-5  # Boltzmann constant, eV/K
AMU = 1.0364269e-4  # 1 u in eV ps^2 / Å^2
MASS_SI = 28.0855  # u
BOND_CUTOFF = 2.85  # Å: the first minimum of a-Si's radial distribution, used to count bonds


@dataclasses.dataclass(frozen=True)
class SWParams:
    """Stillinger-Weber parameters (energies in eV, lengths in Å).

    The defaults are Vink et al.'s a-Si set; :data:`ORIGINAL` is the 1985 one.
    """

    epsilon: float = 1.64833
    sigma: float = 2.0951
    A: float = 7.049556277
    B: float = 0.6022245584
    p: float = 4.0
    a: float = 1.80
    lam: float = 31.5
    gamma: float = 1.2

    @property
    def cutoff(self) -> float:
        """The cut-off ``aσ`` (3.77118 Å) beyond which both terms vanish."""
        return self.a * self.sigma


VINK = SWParams()
ORIGINAL = SWParams(epsilon=2.1683, lam=21.0)


# --------------------------------------------------------------------------------------------
# Neighbours in an orthorhombic periodic box
# --------------------------------------------------------------------------------------------


def minimum_image(dr, box):
    """Wrap difference vectors ``dr`` (..., 3) into the box (3,) by the minimum-image rule."""
    return dr - box * jnp.round(dr / box)


def neighbour_list(positions, box, *, cutoff: float, capacity: int):
    """Indices of every atom's neighbours within ``cutoff``, padded to ``capacity``.

    Args:
        positions: (N, 3) positions in Å.
        box: (3,) side lengths of an orthorhombic periodic box; each must exceed 2 × cutoff.
        cutoff: neighbour distance in Å (the potential's cut-off plus a skin, for MD).
        capacity: the number of neighbour slots per atom, K.

    Returns:
        (N, K) int array: neighbour indices, padded with N (an index past the last atom).
        Raises ``OverflowError`` (outside jit) when an atom has more than K neighbours.

    >>> pos = np.array([[0., 0, 0], [2.3, 0, 0], [18.5, 0, 0]])   # 0-2: 1.5 Å across the edge
    >>> neighbour_list(pos, np.full(3, 20.0), cutoff=3.0, capacity=3).tolist()
    [[1, 2, 3], [0, 3, 3], [0, 3, 3]]
    """
    idx, count = _neighbour_list(jnp.asarray(positions), jnp.asarray(box), cutoff, capacity)
    if not isinstance(count, jax.core.Tracer) and int(count) > capacity:
        raise OverflowError(f"an atom has {int(count)} neighbours > capacity {capacity}")
    return idx


@partial(jax.jit, static_argnums=(2, 3))
def _neighbour_list(positions, box, cutoff, capacity):
    n = positions.shape[0]
    dr = minimum_image(positions[None, :, :] - positions[:, None, :], box)  # (N, N, 3)
    d2 = jnp.sum(dr**2, axis=-1)  # (N, N)
    is_neighbour = (d2 < cutoff**2) & ~jnp.eye(n, dtype=bool)  # (N, N)
    # The m-th neighbour of atom i (in index order) goes to slot m of row i: a scatter, much
    # cheaper than sorting each row.  Non-neighbours (and overflow) go to a spare column K.
    slot = jnp.cumsum(is_neighbour, axis=1) - 1  # (N, N)
    slot = jnp.where(is_neighbour & (slot < capacity), slot, capacity)
    rows = jnp.broadcast_to(jnp.arange(n)[:, None], (n, n))
    cols = jnp.broadcast_to(jnp.arange(n)[None, :], (n, n))
    idx = jnp.full((n, capacity + 1), n).at[rows, slot].set(cols)[:, :capacity]  # (N, K)
    return idx, jnp.max(jnp.sum(is_neighbour, axis=1))


def _neighbour_vectors(positions, box, idx):
    """Vectors (N, K, 3) from each atom to its listed neighbours, their lengths and a mask."""
    n = positions.shape[0]
    mask = idx < n  # (N, K)
    rij = minimum_image(positions[jnp.minimum(idx, n - 1)] - positions[:, None, :], box)
    r = jnp.sqrt(jnp.sum(rij**2, axis=-1) + ~mask)  # (N, K); padded slots get r = 1
    return rij, r, mask


def _radial_terms(r, mask, params: SWParams):
    """φ2(r) and g(r) (both (N, K)), zero beyond the cut-off and in padded slots."""
    inside = mask & (r < params.cutoff)
    r = jnp.where(inside, r, 0.5 * params.cutoff)  # a safe value: no inf in the gradients
    inv = params.sigma / (r - params.cutoff)  # σ / (r - aσ), negative inside
    phi2 = params.A * params.epsilon * (params.B * (params.sigma / r) ** params.p - 1.0)
    phi2 = phi2 * jnp.exp(inv)
    g = jnp.exp(params.gamma * inv)
    return jnp.where(inside, phi2, 0.0), jnp.where(inside, g, 0.0)


def energy(positions, box, idx, params: SWParams = VINK):
    """Total SW energy (eV) from a neighbour list; the three-body sum in O(K) per atom.

    Args:
        positions: (N, 3) in Å.
        box: (3,) orthorhombic box lengths in Å.
        idx: (N, K) neighbour indices from :func:`neighbour_list` with cutoff ≥ ``params.cutoff``.
        params: the SW parameters (default: Vink's a-Si set).
    """
    rij, r, mask = _neighbour_vectors(positions, box, idx)
    phi2, g = _radial_terms(r, mask, params)  # (N, K) each
    u = rij / r[..., None]  # (N, K, 3) unit vectors
    t = jnp.einsum("nk,nka,nkb->nab", g, u, u)  # (N, 3, 3)
    v = jnp.einsum("nk,nka->na", g, u)  # (N, 3)
    s = jnp.sum(g, axis=1)  # (N,)
    pairs = (
        jnp.sum(t**2, axis=(1, 2))
        + (2.0 / 3.0) * jnp.sum(v**2, axis=1)
        + s**2 / 9.0
        - (16.0 / 9.0) * jnp.sum(g**2, axis=1)
    )  # (N,) = Σ_{j≠k} g_j g_k (cos θ_jik + 1/3)²
    three_body = 0.5 * params.lam * params.epsilon * jnp.sum(pairs)
    return 0.5 * jnp.sum(phi2) + three_body


def energy_pairs(positions, box, idx, params: SWParams = VINK):
    """The same energy as :func:`energy`, with the three-body term as a plain O(K²) double sum.

    Slower; kept as the readable definition that :func:`energy` is tested against.
    """
    rij, r, mask = _neighbour_vectors(positions, box, idx)
    phi2, g = _radial_terms(r, mask, params)  # (N, K)
    u = rij / r[..., None]  # (N, K, 3)
    cos = jnp.einsum("nja,nka->njk", u, u)  # (N, K, K)
    k = idx.shape[1]
    off_diagonal = ~jnp.eye(k, dtype=bool)  # j ≠ k
    terms = g[:, :, None] * g[:, None, :] * (cos + 1.0 / 3.0) ** 2  # (N, K, K)
    three_body = 0.5 * params.lam * params.epsilon * jnp.sum(jnp.where(off_diagonal, terms, 0))
    return 0.5 * jnp.sum(phi2) + three_body


def forces(positions, box, idx, params: SWParams = VINK):
    """Forces (N, 3) in eV/Å: minus the gradient of :func:`energy`."""
    return -jax.grad(energy)(positions, box, idx, params)


# --------------------------------------------------------------------------------------------
# Molecular dynamics: Langevin (BAOAB) with a temperature schedule, and a FIRE minimiser
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MDConfig:
    """Settings of :func:`langevin`: time step (ps), friction (1/ps), neighbour list."""

    dt: float = 0.001
    friction: float = 2.0
    skin: float = 0.6
    capacity: int = 32
    params: SWParams = VINK


def random_positions(n: int, box, *, min_distance: float, rng: np.random.Generator):
    """``n`` random positions in the box, no two closer than ``min_distance`` (Å).

    Random sequential addition: each trial point is drawn uniformly and kept only if it is far
    enough from all accepted ones.  A diamond start does not melt with Vink's SW at 3000 K
    within 5 ps, so the melt-quench starts from these.

    >>> p = random_positions(20, np.full(3, 8.0), min_distance=2.0, rng=np.random.default_rng(0))
    >>> p.shape
    (20, 3)
    """
    box = np.asarray(box, dtype=float)
    accepted = np.zeros((n, 3))
    count = 0
    for _ in range(10000 * n):
        trial = rng.uniform(0.0, 1.0, 3) * box
        dr = accepted[:count] - trial
        dr -= box * np.round(dr / box)
        if count == 0 or np.min(np.sum(dr**2, axis=1)) >= min_distance**2:
            accepted[count] = trial
            count += 1
            if count == n:
                return accepted
    raise RuntimeError(f"could not place {n} atoms {min_distance} Å apart")


@partial(jax.jit, static_argnames=("n_steps", "config"))
def langevin(state, key, temperatures, *, n_steps: int, config: MDConfig):
    """Run ``n_steps`` of Langevin dynamics (BAOAB splitting) at the given temperatures.

    The neighbour list (cut-off + skin) is rebuilt whenever an atom has moved more than half
    the skin since the last build, so the forces are exact at every step.

    Args:
        state: dict with ``positions`` (N, 3) Å, ``velocities`` (N, 3) Å/ps, ``box`` (3,),
            ``idx`` (N, K) neighbour list and ``reference`` (N, 3) positions at its build.
        key: a PRNG key.
        temperatures: (n_steps,) target temperature (K) at each step: a schedule.
        n_steps: number of steps (static).
        config: an :class:`MDConfig`.

    Returns:
        The new state and a dict of per-step ``potential`` (eV), ``temperature`` (K),
        ``rebuilt`` (bool) and ``max_neighbours`` (an overflow check: must stay ≤ capacity).
    """
    dt, gamma = config.dt, config.friction
    mass = MASS_SI * AMU  # eV ps² / Å²
    n = state["positions"].shape[0]
    c1 = jnp.exp(-gamma * dt)
    energy_and_grad = jax.value_and_grad(energy)
    cutoff = config.params.cutoff + config.skin

    def maybe_rebuild(pos, idx, reference, box):
        moved = jnp.max(jnp.sum(minimum_image(pos - reference, box) ** 2, axis=1))
        rebuild = moved > (0.5 * config.skin) ** 2

        def build(_):
            new_idx, count = _neighbour_list(pos, box, cutoff, config.capacity)
            return new_idx, pos, count

        def keep(_):
            return idx, reference, jnp.asarray(-1, dtype=jnp.int32)

        idx, reference, count = jax.lax.cond(rebuild, build, keep, None)
        return idx, reference, count, rebuild

    def step(carry, inputs):
        pos, vel, idx, reference, grad = carry
        temperature, key = inputs
        box = state["box"]
        vel = vel - 0.5 * dt * grad / mass  # B
        pos = pos + 0.5 * dt * vel  # A
        noise = jax.random.normal(key, vel.shape, vel.dtype)
        sigma_v = jnp.sqrt(KB * temperature / mass * (1.0 - c1**2))
        vel = c1 * vel + sigma_v * noise  # O
        pos = pos + 0.5 * dt * vel  # A
        pos = jnp.mod(pos, box)
        idx, reference, count, rebuilt = maybe_rebuild(pos, idx, reference, box)
        potential, grad = energy_and_grad(pos, box, idx, config.params)
        vel = vel - 0.5 * dt * grad / mass  # B
        kinetic_t = mass * jnp.sum(vel**2) / (3 * (n - 1) * KB)
        log = dict(potential=potential, temperature=kinetic_t, rebuilt=rebuilt,
                   max_neighbours=count)
        return (pos, vel, idx, reference, grad), log

    pos, vel, idx, reference = (state[k] for k in ("positions", "velocities", "idx", "reference"))
    grad = jax.grad(energy)(pos, state["box"], idx, config.params)
    keys = jax.random.split(key, n_steps)
    (pos, vel, idx, reference, _), log = jax.lax.scan(
        step, (pos, vel, idx, reference, grad), (temperatures, keys))
    new_state = dict(state, positions=pos, velocities=vel, idx=idx, reference=reference)
    return new_state, log


def fire_minimise(positions, box, *, params: SWParams = VINK, fmax: float = 1e-4,
                  max_steps: int = 20000, dt: float = 0.002, capacity: int = 40):
    """Relax positions to a local energy minimum with FIRE (Bitzek et al., PRL 97, 170201).

    Runs in the dtype of ``positions`` (use float64 for a tight ``fmax``), rebuilding the
    neighbour list (cut-off + 1 Å) every 100 steps.

    Returns:
        (positions, energy, max force) after convergence (max |F| < fmax eV/Å) or max_steps.
    """
    box = jnp.asarray(box, dtype=positions.dtype)
    mass = MASS_SI * AMU
    force_fn = jax.jit(lambda p, idx: -jax.grad(energy)(p, box, idx, params))

    @jax.jit
    def run(pos, vel, dt_, alpha, n_pos, idx):
        def body(carry, _):
            pos, vel, dt_, alpha, n_pos = carry
            f = force_fn(pos, idx)
            power = jnp.sum(f * vel)
            fhat = f / (jnp.linalg.norm(f) + 1e-30)
            vel = (1 - alpha) * vel + alpha * jnp.linalg.norm(vel) * fhat
            uphill = power < 0
            vel = jnp.where(uphill, 0.0, vel)
            n_pos = jnp.where(uphill, 0, n_pos + 1)
            grow = (~uphill) & (n_pos > 5)
            dt_ = jnp.where(uphill, 0.5 * dt_, jnp.where(grow, jnp.minimum(1.1 * dt_, 10 * dt),
                                                          dt_))
            alpha = jnp.where(uphill, 0.1, jnp.where(grow, 0.99 * alpha, alpha))
            vel = vel + dt_ * f / mass
            pos = pos + dt_ * vel
            return (pos, vel, dt_, alpha, n_pos), None

        (pos, vel, dt_, alpha, n_pos), _ = jax.lax.scan(
            body, (pos, vel, dt_, alpha, n_pos), None, length=100)
        return pos, vel, dt_, alpha, n_pos

    pos = jnp.asarray(positions)
    vel = jnp.zeros_like(pos)
    state = (jnp.asarray(dt, pos.dtype), jnp.asarray(0.1, pos.dtype), jnp.asarray(0))
    for _ in range(max_steps // 100):
        idx = neighbour_list(pos, box, cutoff=params.cutoff + 1.0, capacity=capacity)
        fmax_now = float(jnp.max(jnp.linalg.norm(force_fn(pos, idx), axis=1)))
        if fmax_now < fmax:
            break
        pos, vel, *state = run(pos, vel, *state, idx)
    idx = neighbour_list(pos, box, cutoff=params.cutoff + 1.0, capacity=capacity)
    fmax_now = float(jnp.max(jnp.linalg.norm(force_fn(pos, idx), axis=1)))
    return jnp.mod(pos, box), float(energy(pos, box, idx, params)), fmax_now


# --------------------------------------------------------------------------------------------
# Structure analysis (NumPy; works on periodic cells and on isolated motifs alike)
# --------------------------------------------------------------------------------------------


def bonds(atoms, cutoff: float = BOND_CUTOFF):
    """Bonds of an ``ase.Atoms`` (periodic or not): pairs closer than ``cutoff``.

    Returns:
        ``i`` (n_bonds,), ``vectors`` (n_bonds, 3): the bond from atom ``i`` to its partner;
        every bond appears twice, once from each end.
    """
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    i, vectors = ase_neighbor_list("iD", atoms, cutoff)
    return i, vectors


def coordination(atoms, cutoff: float = BOND_CUTOFF) -> np.ndarray:
    """Number of neighbours closer than ``cutoff`` (Å) of each atom, (N,) ints.

    >>> from ase.build import bulk
    >>> coordination(bulk("Si", "diamond", a=5.431)).tolist()
    [4, 4]
    """
    i, _ = bonds(atoms, cutoff)
    return np.bincount(i, minlength=len(atoms))


def bond_angles(atoms, cutoff: float = BOND_CUTOFF) -> np.ndarray:
    """Every bond angle j-i-k (degrees) at every atom i, with j, k bonded to i (j < k).

    >>> from ase.build import bulk
    >>> np.round(bond_angles(bulk("Si", "diamond", a=5.431))[:3], 2).tolist()
    [109.47, 109.47, 109.47]
    """
    i, vectors = bonds(atoms, cutoff)
    angles = []
    for atom in np.unique(i):
        angles.append(angles_between(vectors[i == atom]))
    return np.concatenate(angles) if angles else np.zeros(0)


def angles_between(vectors) -> np.ndarray:
    """All angles (degrees) between pairs of the given vectors (m, 3): m(m-1)/2 values.

    >>> angles_between(np.array([[1., 0, 0], [0, 1, 0], [-1, 0, 0]])).tolist()
    [90.0, 180.0, 90.0]
    """
    vectors = np.asarray(vectors, dtype=float)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    j, k = np.triu_indices(len(vectors), k=1)
    cos = np.clip(np.sum(unit[j] * unit[k], axis=1), -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def radial_distribution(atoms, *, r_max: float = 8.0, n_bins: int = 160):
    """Radial distribution function g(r) of a periodic cell.

    Returns:
        (r, g): bin centres (n_bins,) in Å and g(r) (n_bins,), normalised so that g → 1 at
        large r.
    """
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    d = ase_neighbor_list("d", atoms, r_max)
    counts, edges = np.histogram(d, bins=n_bins, range=(0.0, r_max))
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    density = len(atoms) / atoms.get_volume()
    return 0.5 * (edges[1:] + edges[:-1]), counts / (len(atoms) * density * shell)


def structure_summary(atoms, cutoff: float = BOND_CUTOFF) -> dict:
    """Mean coordination, fourfold fraction and bond-angle mean/std of a cell.

    >>> from ase.build import bulk
    >>> s = structure_summary(bulk("Si", "diamond", a=5.431, cubic=True))
    >>> s["coordination"], s["fourfold_fraction"], round(s["angle_mean_deg"], 2)
    (4.0, 1.0, 109.47)
    """
    z = coordination(atoms, cutoff)
    angles = bond_angles(atoms, cutoff)
    return dict(
        coordination=float(np.mean(z)),
        fourfold_fraction=float(np.mean(z == 4)),
        angle_mean_deg=float(np.mean(angles)),
        angle_std_deg=float(np.std(angles)),
    )
