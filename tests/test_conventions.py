"""The convention checks: they find the right index on known gradient fields, and on the data."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from teachlib import conventions


def pair_dipole_jacobian(atoms) -> np.ndarray:
    """∂P_α/∂τ_κβ as [κ, β, α] for a made-up, non-linear pair dipole (float64).

    P = Σ_{i<j, r_ij < 3 Å} q_i q_j exp(−r_ij) (r_ij·e) r_ij with minimum-image vectors and a
    fixed direction e (so that the Jacobian is not symmetric): any function of the positions
    has an integrable Jacobian, whatever its form.
    """
    q = np.array([{"Ba": 1.3, "Ti": 2.1, "O": -0.7}[s] for s in atoms.get_chemical_symbols()])
    length = atoms.cell.array[0, 0]
    with jax.enable_x64(True):
        def dipole(positions):
            r = positions[None, :, :] - positions[:, None, :]                 # (n, n, 3)
            r = r - length * jnp.round(r / length)
            d = jnp.sqrt(jnp.sum(r**2, -1) + jnp.eye(len(q)))                 # (n, n)
            w = jnp.triu(jnp.where(d < 3.0, q[:, None] * q[None, :] * jnp.exp(-d), 0.0), 1)
            along = r @ jnp.array([0.3, -0.5, 0.8])                          # (n, n)
            return jnp.einsum("ij,ij,ijc->c", w, along, r)                   # (3,)

        jac = jax.jacfwd(dipole)(jnp.asarray(atoms.positions))                # (α, κ, β)
    return np.asarray(jac).transpose(1, 2, 0)                                 # (κ, β, α)


@pytest.fixture(scope="module")
def synthetic(batio3):
    """20 real geometries labelled with a known gradient field, displacement axis first."""
    structures = []
    for atoms in batio3[:20]:
        copy = atoms.copy()
        copy.arrays["born_charges"] = pair_dipole_jacobian(atoms)
        structures.append(copy)
    return structures


def test_integrability_finds_the_displacement_axis_of_a_known_gradient_field(synthetic):
    result = conventions.integrability_test(synthetic, "born_charges", radius=2.9)
    assert result.best() == "axis 1 = displacement"
    cost = result.cost()
    assert cost["axis 2 = displacement"] > 5 * max(cost["axis 1 = displacement"], 1e-3), cost


def test_integrability_follows_a_transposed_field(synthetic):
    """The same labels stored the other way round: the test must notice (it can fail)."""
    transposed = []
    for atoms in synthetic:
        copy = atoms.copy()
        copy.arrays["born_charges"] = np.swapaxes(atoms.arrays["born_charges"], 1, 2)
        transposed.append(copy)
    assert conventions.integrability_test(transposed, "born_charges",
                                          radius=2.9).best() == "axis 2 = displacement"


def test_free_fits_do_not_depend_on_the_reading(synthetic):
    result = conventions.integrability_test(synthetic, "born_charges", radius=2.9)
    np.testing.assert_allclose(result.free_mae[0], result.free_mae[1], rtol=1e-8)
    assert result.n_constrained < result.n_free


def test_data_store_born_charges_and_raman_tensors_displacement_first(batio3):
    """The conventions pinned in chapter 5, on the BaTiO3 labels themselves."""
    born = conventions.integrability_test(batio3, "born_charges", radius=2.9)
    raman = conventions.integrability_test(batio3, "raman_tensors", radius=2.9)
    assert born.best() == "axis 1 = displacement", born
    assert raman.best() == "axis 1 = displacement", raman
    assert born.cost()["axis 1 = displacement"] < 0.01
    assert born.cost()["axis 2 = displacement"] > 0.03
    assert conventions.BORN_CHARGE_AXES == ("displacement", "field")
    assert conventions.RAMAN_AXES[0] == "displacement"


def test_raman_constant_on_the_data(batio3):
    fit = conventions.raman_constant(batio3)
    assert fit["correlation"] > 0.9
    assert 0.008 < fit["c"] < 0.013, fit
    worse = conventions.raman_constant(batio3, displacement_axis=2)
    assert worse["correlation"] < fit["correlation"]


def test_raman_constant_recovers_a_known_quadratic_relation(batio3):
    """Labels made from ε(u) = ε0 + ½ c Σ u·H·u with R = ∂ε/∂u / c: the fit returns c."""
    u, _, _ = conventions.displacements(batio3[:12])
    rng = np.random.default_rng(0)
    n = u.shape[1] * 3
    h = rng.normal(size=(3, 3, n, n)) / n
    h = h + h.transpose(1, 0, 2, 3)                       # symmetric in the field pair
    h = h + h.transpose(0, 1, 3, 2)                       # a Hessian: symmetric in (κβ, λγ)
    c = 0.0123
    structures = []
    for atoms, uk in zip(batio3[:12], u):
        flat = uk.reshape(-1)
        grad = np.einsum("ijab,b->aij", h, flat)          # ∂X_ij/∂u_a, (n, 3, 3)
        copy = atoms.copy()
        copy.arrays["raman_tensors"] = grad.reshape(len(atoms), 3, 3, 3)
        copy.info["dielectric"] = 5.0 * np.eye(3) + 0.5 * c * np.einsum("a,ijab,b->ij", flat, h, flat)
        copy.info["dielectric_valid"] = True
        structures.append(copy)
    assert math.isclose(conventions.raman_constant(structures)["c"], c, rel_tol=1e-8)


def test_documented_constants():
    values = conventions.documented_constants(1728.0)
    assert math.isclose(values["dchi_per_input_cell"], 4 * math.pi)
    assert math.isclose(values["force_second_derivative"], 4 * math.pi / 1728.0)
    assert math.isclose(values["dchi_per_primitive_cell"], 4 * math.pi / 27)
