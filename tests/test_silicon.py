"""Tests of teachlib.silicon: SW energies and forces against jax-md and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from teachlib import silicon as si


def _disordered_cell(seed=0, n=64, density=2.30):
    """A random 64-atom cell at a-Si density: liquid-like, with many three-body terms."""
    side = (n * si.MASS_SI * 1.66053907e-24 / density) ** (1 / 3) * 1e8
    box = np.full(3, side)
    pos = si.random_positions(n, box, min_distance=2.1, rng=np.random.default_rng(seed))
    return pos, box


@pytest.mark.parametrize("params", [si.VINK, si.ORIGINAL])
def test_energy_and_forces_match_jax_md(params):
    jax_md = pytest.importorskip("jax_md")
    with jax.enable_x64(True):
        pos, box = _disordered_cell()
        pos, box = jnp.asarray(pos), jnp.asarray(box)
        displacement, _ = jax_md.space.periodic(box)
        reference = jax_md.energy.stillinger_weber(
            displacement, lam=21.0, three_body_strength=params.lam / 21.0,
            epsilon=params.epsilon, sigma=params.sigma, A=params.A, B=params.B,
            gamma=params.gamma, cutoff=params.cutoff)
        idx = si.neighbour_list(pos, box, cutoff=params.cutoff + 0.3, capacity=32)
        e_ref, f_ref = float(reference(pos)), -np.asarray(jax.grad(reference)(pos))
        e, f = float(si.energy(pos, box, idx, params)), np.asarray(si.forces(pos, box, idx, params))
        assert abs(e_ref) > 1.0 and np.abs(f_ref).max() > 0.5  # a non-trivial configuration
        # jax-md adds 1e-7 Å to both lengths in its bond-angle cosine, hence rtol 1e-6 here;
        # the brute-force test below checks the energy to machine precision.
        np.testing.assert_allclose(e, e_ref, rtol=1e-6)
        np.testing.assert_allclose(f, f_ref, atol=1e-5)


def _brute_force_energy(pos, box, p):
    """SW straight from its definition: loops over pairs i<j and triplets j<k around i."""
    dr = pos[None, :, :] - pos[:, None, :]
    dr -= box * np.round(dr / box)
    d = np.linalg.norm(dr, axis=-1)
    rc, total = p.cutoff, 0.0
    for i in range(len(pos)):
        nb = [j for j in range(len(pos)) if j != i and d[i, j] < rc]
        for j in nb:
            if j > i:
                r = d[i, j]
                total += p.A * p.epsilon * (p.B * (p.sigma / r) ** p.p - 1) * np.exp(p.sigma / (r - rc))
        for a, j in enumerate(nb):
            for k in nb[a + 1:]:
                cos = dr[i, j] @ dr[i, k] / (d[i, j] * d[i, k])
                g = np.exp(p.gamma * p.sigma / (d[i, j] - rc) + p.gamma * p.sigma / (d[i, k] - rc))
                total += p.lam * p.epsilon * g * (cos + 1 / 3) ** 2
    return total


def test_energy_matches_brute_force_definition():
    pos, box = _disordered_cell(seed=2)
    with jax.enable_x64(True):
        idx = si.neighbour_list(pos, box, cutoff=si.VINK.cutoff + 0.6, capacity=32)
        e = float(si.energy(jnp.asarray(pos), jnp.asarray(box), idx))
    np.testing.assert_allclose(e, _brute_force_energy(pos, box, si.VINK), rtol=1e-12)


def test_fast_three_body_equals_pair_sum():
    with jax.enable_x64(True):
        pos, box = _disordered_cell(seed=3)
        idx = si.neighbour_list(pos, box, cutoff=4.5, capacity=32)  # padded slots included
        np.testing.assert_allclose(si.energy(pos, box, idx), si.energy_pairs(pos, box, idx),
                                   rtol=1e-12)


def test_forces_match_finite_differences():
    with jax.enable_x64(True):
        pos, box = _disordered_cell(seed=1)
        pos = jnp.asarray(pos)
        idx = si.neighbour_list(pos, box, cutoff=si.VINK.cutoff + 1.0, capacity=40)
        f = np.asarray(si.forces(pos, box, idx))
        h = 1e-5
        rng = np.random.default_rng(0)
        numeric, analytic = [], []
        for atom in rng.choice(len(pos), 8, replace=False):
            for axis in range(3):
                step = jnp.zeros_like(pos).at[atom, axis].set(h)
                e_plus = si.energy(pos + step, box, idx)
                e_minus = si.energy(pos - step, box, idx)
                numeric.append(-(e_plus - e_minus) / (2 * h))
                analytic.append(f[atom, axis])
        np.testing.assert_allclose(analytic, numeric, atol=1e-6)


def test_diamond_energy_is_minus_two_epsilon_per_atom_and_forces_vanish():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    with jax.enable_x64(True):
        pos, box = jnp.asarray(atoms.positions), jnp.asarray(np.diag(atoms.cell))
        idx = si.neighbour_list(pos, box, cutoff=4.0, capacity=32)
        e = si.energy(pos, box, idx, si.VINK) / len(atoms)
        f = si.forces(pos, box, idx, si.VINK)
    # f2 has its minimum -ε at r = 2^(1/6) σ = 2.3517 Å, the diamond bond at a = 5.431 Å.
    np.testing.assert_allclose(e, -2 * si.VINK.epsilon, rtol=1e-5)
    np.testing.assert_allclose(f, 0.0, atol=1e-6)


def test_neighbour_list_overflow_is_reported():
    pos, box = _disordered_cell()
    with pytest.raises(OverflowError):
        si.neighbour_list(pos, box, cutoff=5.0, capacity=4)


def test_structure_summary_of_a_perturbed_diamond():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    atoms.positions += np.random.default_rng(0).normal(0, 0.05, atoms.positions.shape)
    summary = si.structure_summary(atoms)
    np.testing.assert_allclose(
        [summary["coordination"], summary["fourfold_fraction"], summary["angle_mean_deg"]],
        [4.0, 1.0, 109.47], atol=0.5)
    assert 0.5 < summary["angle_std_deg"] < 5.0


def test_radial_distribution_first_peak_of_diamond():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(3)
    r, g = si.radial_distribution(atoms, r_max=5.0, n_bins=100)
    np.testing.assert_allclose(r[np.argmax(g > 0)], 2.35, atol=0.05)  # the first shell
    # 4 neighbours in the first shell: ∫ 4π r² ρ g dr over the first peak.
    rho = len(atoms) / atoms.get_volume()
    first = r < 2.8
    np.testing.assert_allclose(np.sum(4 * np.pi * r[first] ** 2 * rho * g[first]) * 0.05, 4.0,
                               rtol=0.05)


def test_isolated_motif_coordination():
    atoms = Atoms("Si3", positions=[[0, 0, 0], [2.35, 0, 0], [0, 2.35, 0]], pbc=False)
    np.testing.assert_allclose(si.coordination(atoms), [2, 1, 1])
    np.testing.assert_allclose(si.bond_angles(atoms), [90.0])
