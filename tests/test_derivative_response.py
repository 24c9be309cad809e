"""The derivative model: exact sum rules, derivatives of P, equivariance, and training."""

from __future__ import annotations

import functools

import ase.build
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from teachlib import derivative_response as dr
from teachlib.symmetry import float64, random_o3
from teachlib.tensors import BORN_CHARGE, DIELECTRIC, RAMAN

CONFIG = dr.DerivativeConfig(hidden_irreps="4x0e + 2x1o + 2x1e + 2x2e + 2x2o", cutoff=3.5,
                             n_basis=4, radial_hidden=(8,), readout_mul=2,
                             avg_num_neighbours=10.0)


def perovskite(seed: int = 0, repeat: int = 2) -> ase.Atoms:
    """A 2x2x2 BaTiO3 supercell with random displacements (~0.1 Å)."""
    unit = ase.Atoms("BaTiO3", scaled_positions=[[0, 0, 0], [.5, .5, .5], [0, .5, .5],
                                                 [.5, 0, .5], [.5, .5, 0]],
                     cell=[4.0] * 3, pbc=True)
    atoms = unit.repeat(repeat)
    atoms.positions += np.random.default_rng(seed).normal(scale=0.1, size=atoms.positions.shape)
    return atoms


OFFSETS = {"born_charges": np.stack([2.7 * np.eye(3), 7.0 * np.eye(3), -3.233 * np.eye(3)]),
           "raman_tensors": np.zeros((3, 3, 3, 3))}
# Ba + Ti + 3 O = 0: a neutral cell, as the per-species means of the data are
OFFSETS["born_charges"][2] = -(OFFSETS["born_charges"][0] + OFFSETS["born_charges"][1]) / 3
SCALES = {"born_charges": 0.7, "raman_tensors": 3.0}


@functools.cache
def model(x64: bool):
    """Parameters and a jitted ``response`` for one padded graph (float64 or float32)."""
    with jax.enable_x64(x64):
        graph = jax.tree.map(lambda x: x[0], dr.graphs_for(CONFIG, [perovskite()],
                                                              labels=False))
        network = CONFIG.network()
        params = {"network": network.init(jax.random.PRNGKey(0), graph),
                  "log_c": jnp.log(0.01), "eps0": jnp.asarray(5.0)}
        offsets = {k: jnp.asarray(v) for k, v in OFFSETS.items()}
        fn = jax.jit(lambda p, g: dr.response(network, p, offsets, SCALES, g))
        cells = jax.jit(lambda p, g: network.apply(p["network"], g, cartesian=False))
        return params, fn, cells


def predict(atoms, x64=True):
    params, fn, _ = model(x64)
    graph = jax.tree.map(lambda x: x[0], dr.graphs_for(CONFIG, [atoms], labels=False))
    with jax.enable_x64(x64):
        out = fn(params, graph)
        return {k: np.asarray(v) for k, v in out.items()}, graph


def test_sum_rules_are_exact_in_float64():
    with float64():
        out, graph = predict(perovskite(1))
    n = int(graph.node_mask.sum())
    for label in ("born_charges", "raman_tensors"):
        tensors = out[label][:n]
        violation = np.abs(tensors.sum(0)).max() / np.abs(tensors).max()
        assert violation < 1e-10, (label, violation)
    # the local part alone (offsets removed) sums to zero as well: translation invariance
    local = out["born_charges"][:n] - OFFSETS["born_charges"][np.asarray(graph.species)[:n]]
    np.testing.assert_allclose(local.sum(0), 0.0, atol=1e-10 * np.abs(local).max())


def test_sum_rules_hold_in_float32_to_the_chapter_bar():
    out, graph = predict(perovskite(2), x64=False)
    n = int(graph.node_mask.sum())
    for label in ("born_charges", "raman_tensors"):
        tensors = out[label][None, :n]
        assert np.abs(tensors.sum(1)).max() / np.abs(tensors).max() < 1e-5


def test_born_charges_are_finite_differences_of_the_dipole():
    """Z*[κ, β, α] = ∂P_α/∂τ_κβ (local part, P = σ·network output), by central differences."""
    atoms = perovskite(3)
    params, _, cells = model(True)
    with float64():
        out, graph = predict(atoms)

        def dipole_and_chi(positions):
            g = graph._replace(positions=positions)
            y = cells(params, g)
            return np.asarray(y["dipole"].array[0]), np.asarray(y["chi"].array[0])

        h = 1e-5
        positions = np.asarray(graph.positions, dtype=np.float64)
        species = np.asarray(graph.species)
        for kappa, beta in [(0, 0), (1, 2), (7, 1), (20, 0)]:
            plus, minus = positions.copy(), positions.copy()
            plus[kappa, beta] += h
            minus[kappa, beta] -= h
            (p1, x1), (p0, x0) = dipole_and_chi(plus), dipole_and_chi(minus)
            z_fd = SCALES["born_charges"] * (p1 - p0) / (2 * h)                       # (α,)
            r_fd = SCALES["raman_tensors"] * DIELECTRIC.from_irreps((x1 - x0) / (2 * h))  # (i, j)
            z = out["born_charges"][kappa, beta] - OFFSETS["born_charges"][species[kappa], beta]
            np.testing.assert_allclose(z, z_fd, atol=1e-7)
            np.testing.assert_allclose(out["raman_tensors"][kappa, beta], r_fd, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1])
def test_derived_tensors_are_equivariant_under_o3(seed):
    """Rotating (or reflecting) the crystal rotates Z*, the Raman tensors and ε∞."""
    atoms = perovskite(4)
    with float64():
        matrix = np.asarray(random_o3(jax.random.PRNGKey(seed), reflection=bool(seed)))
        moved = atoms.copy()
        moved.positions = atoms.positions @ matrix.T
        moved.cell = atoms.cell.array @ matrix.T
        before, graph = predict(atoms)
        after, _ = predict(moved)
    n = int(graph.node_mask.sum())
    for label, tensor in (("born_charges", BORN_CHARGE), ("raman_tensors", RAMAN)):
        expected = tensor.rotate(before[label][:n], matrix)
        scale = np.abs(before[label][:n]).max()
        np.testing.assert_allclose(after[label][:n], expected, atol=1e-9 * scale)
    np.testing.assert_allclose(after["dielectric"][0], DIELECTRIC.rotate(before["dielectric"][0],
                                                                          matrix), atol=1e-9)


def test_training_lowers_the_error_and_learns_c(batio3):
    """Twenty steps on two real snapshots beat the per-species (isotropic) mean charge there."""
    train, val = batio3[:2], batio3[2:3]
    config = dr.DerivativeConfig(hidden_irreps="4x0e + 2x1o + 2x1e + 2x2e + 2x2o",
                                 radial_hidden=(8,), readout_mul=2)
    model_, result = dr.train_derivative(train, val, config, epochs=10, batch_size=1,
                                         learning_rate=3e-2, progress=False)
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
    errors = dr.evaluate(model_, train)
    species_mean = np.mean(np.abs(
        np.stack([a.arrays["born_charges"] for a in train])
        - model_.offsets["born_charges"][[("Ba", "Ti", "O").index(s)
                                          for s in train[0].get_chemical_symbols()]]))
    assert errors["born_charges_mae"] < species_mean
    assert errors["born_charges_sum_rule"] < 1e-5
    assert model_.c > 0
    # the cost of a step reuses fit's compiled epoch (the same cached make_epoch_fn)
    from teachlib.train import make_epoch_fn

    hits = make_epoch_fn.cache_info().hits
    t = model_.training
    seconds = dr.seconds_per_step(t.loss, t.optimizer, t.params, t.train_graphs, batch_size=1,
                                  compiled=True)
    assert make_epoch_fn.cache_info().hits == hits + 1 and 0 < seconds < 60
