"""The equivariant network: symmetry (property tests), derivatives, padding, and refusals."""

from __future__ import annotations

import functools

import ase
import ase.geometry
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from teachlib.graphs import (GraphError, Padding, atoms_to_graph, batch_atoms, edge_vectors,
                             match_edges, merge_stacked, stack_graphs)
from teachlib.models import (EquivariantGNN, Head, IrrepsError, count_parameters, init_params,
                             response_model)
from teachlib.tensors import BORN_CHARGE, RAMAN

CUTOFF = 3.0
PADDING = Padding(n_node=7, n_edge=384, n_graph=2, n_neighbour=96)
MODEL = EquivariantGNN(
    species=("H", "O"),
    heads=(Head("bec", BORN_CHARGE), Head("raman", RAMAN),
           Head("bond", "0e + 1o + 2e", level="edge"), Head("dipole", "1o + 1e", level="graph")),
    hidden_irreps="4x0e + 2x1o + 2x1e + 2x2e + 2x2o", n_layers=2, lmax=2, cutoff=CUTOFF,
    n_basis=4, radial_hidden=(8,), avg_num_neighbours=8.0, readout_mul=2)


@functools.cache
def compiled(x64: bool):
    """Parameters and the jitted model (irreps outputs), once per precision."""
    with jax.enable_x64(x64):
        [graph] = batch_atoms([ase.Atoms("OH", positions=[[0, 0, 0], [1, 0, 0]])],
                              cutoff=CUTOFF, species=MODEL.species, padding=PADDING)
        params = init_params(MODEL, graph, 0)
        apply = jax.jit(lambda p, g: {k: v.array for k, v in MODEL.apply(p, g,
                                                                         cartesian=False).items()})
        return params, apply


def predict(atoms, x64=True):
    """The model's outputs (irreps) for one structure, padding removed, and its graph."""
    params, apply = compiled(x64)
    graph = MODEL.batch([atoms], padding=PADDING)[0]
    with jax.enable_x64(x64):
        out = {k: np.asarray(v) for k, v in apply(params, graph).items()}
    n, e = len(atoms), int(graph.edge_mask.sum())
    return {"bec": out["bec"][:n], "raman": out["raman"][:n], "dipole": out["dipole"][0],
            "bond": out["bond"][:e], "graph": graph}


IRREPS = {head.name: head.irreps for head in MODEL.heads}


@functools.cache
def _wigner(name):
    return jax.jit(IRREPS[name].D_from_matrix)


def wigner(name, g):
    """D(g) of a head's irreps, float64."""
    with jax.enable_x64(True):
        return np.asarray(_wigner(name)(jnp.asarray(g)))


def relative_error(actual, expected, scale):
    """max |f(g·x) - D(g) f(x)| / max |f(x)| (the book's relative error; ``scale`` is the
    largest output of the model, so that an output that is zero by symmetry, like the dipole
    of a centrosymmetric cell, is measured against the others)."""
    return np.abs(actual - expected).max() / scale


@st.composite
def structures(draw):
    """Random triclinic cells with 2-6 atoms of H and O, each with a neighbour within 3 Å."""
    lengths = [draw(st.floats(3.0, 5.0)) for _ in range(3)]
    angles = [draw(st.floats(65.0, 115.0)) for _ in range(3)]
    cell = ase.geometry.cellpar_to_cell(lengths + angles)
    assume(abs(np.linalg.det(cell)) > 0.4 * np.prod(lengths))
    n = draw(st.integers(2, 6))
    fractional = [[draw(st.floats(0.0, 1.0)) for _ in range(3)] for _ in range(n)]
    symbols = [draw(st.sampled_from(["H", "O"])) for _ in range(n)]
    atoms = ase.Atoms(symbols, scaled_positions=fractional, cell=cell, pbc=True)
    assume((atoms.get_all_distances(mic=True) + 10 * np.eye(n)).min() > 0.8)
    try:
        graph = atoms_to_graph(atoms, cutoff=CUTOFF, species=("H", "O"))
    except GraphError:
        assume(False)
    assume(graph.num_edges <= PADDING.n_edge and graph.num_neighbours <= PADDING.n_neighbour)
    return atoms


def matched(before, after, **operation):
    """Edges of ``after`` found in ``before`` and their indices there. A pair at the cutoff to
    rounding may be an edge in one graph only (its messages vanish either way): skip it."""
    same = match_edges(before["graph"], after["graph"], strict=False, **operation)
    with jax.enable_x64(True):
        lengths = np.linalg.norm(edge_vectors(after["graph"]), axis=1)[:len(same)]
    assert np.all(np.abs(lengths[same < 0] - CUTOFF) < 1e-9), lengths[same < 0]
    return same >= 0, same[same >= 0]


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(atoms=structures(), seed=st.integers(0, 2**16))
def test_equivariance_float64(atoms, seed):
    rng = np.random.default_rng(seed)
    before = predict(atoms)
    scale = max(np.abs(before[k]).max() for k in ("bec", "raman", "dipole", "bond"))
    rel = functools.partial(relative_error, scale=scale)
    errors = {}

    # rotation or reflection, and a translation: outputs transform with D(g)
    for g in (Rotation.random(random_state=rng).as_matrix(),
              -Rotation.random(random_state=rng).as_matrix()):
        moved = atoms.copy()
        moved.set_cell(atoms.cell.array @ g.T)
        moved.positions = atoms.positions @ g.T + rng.normal(size=3) * 5
        after = predict(moved)
        for name in ("bec", "raman", "dipole"):
            errors[f"{name} O(3)"] = rel(after[name], before[name] @ wigner(name, g).T)
        found, same = matched(before, after)
        errors["bond O(3)"] = rel(after["bond"][found], before["bond"][same] @ wigner("bond", g).T)

    # permutation of the atoms: node outputs permute, graph outputs stay
    perm = rng.permutation(len(atoms))
    after = predict(atoms[perm])
    for name in ("bec", "raman"):
        errors[f"{name} permutation"] = rel(after[name], before[name][perm])
    errors["dipole permutation"] = rel(after["dipole"], before["dipole"])
    same = match_edges(before["graph"], after["graph"], permutation=perm)
    errors["bond permutation"] = rel(after["bond"], before["bond"][same])

    # each atom moved by its own lattice vector: nothing changes (edges relabel their shifts)
    n = rng.integers(-2, 3, size=(len(atoms), 3))
    shifted = atoms.copy()
    shifted.positions = atoms.positions + n @ atoms.cell.array
    after = predict(shifted)
    for name in ("bec", "raman", "dipole"):
        errors[f"{name} lattice shift"] = rel(after[name], before[name])
    found, same = matched(before, after, lattice_shifts=n)
    errors["bond lattice shift"] = rel(after["bond"][found], before["bond"][same])

    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-9, (worst, errors[worst])


def test_batio3_equivariance_float32(batio3):
    from teachlib.graphs import mean_num_neighbours
    atoms = batio3[0]
    model = response_model(avg_num_neighbours=1.0, hidden_irreps="8x0e + 4x1o + 4x1e + 2x2e",
                           n_layers=2, cutoff=4.0, radial_hidden=(8,), readout_mul=2)
    graphs = model.batch([atoms])
    model = model.clone(avg_num_neighbours=mean_num_neighbours(graphs))
    params = init_params(model, graphs[0], 0)
    apply = jax.jit(model.apply)
    g = -Rotation.random(random_state=0).as_matrix()
    moved = atoms.copy()
    moved.set_cell(atoms.cell.array @ g.T)
    moved.positions = atoms.positions @ g.T + 3.0
    padding = Padding(graphs[0].num_nodes, graphs[0].num_edges + 64, 2,
                      graphs[0].num_neighbours + 4)
    before = apply(params, model.batch([atoms], padding=padding)[0])
    after = apply(params, model.batch([moved], padding=padding)[0])
    np.testing.assert_allclose(
        np.asarray(after["born_charges"]),
        np.einsum("ab,nbc,dc->nad", g, np.asarray(before["born_charges"]), g),
        atol=1e-4 * np.abs(before["born_charges"]).max())
    np.testing.assert_allclose(
        np.asarray(after["raman_tensors"]),
        np.einsum("ab,ce,df,nbef->nacd", g, g, g, np.asarray(before["raman_tensors"])),
        atol=1e-4 * np.abs(before["raman_tensors"]).max())


def test_per_path_weights_are_equivariant_too(x64):
    model = MODEL.clone(per_channel=False)
    atoms = ase.Atoms("OH2O", positions=[[0, 0, 0], [0.97, 0.1, 0], [-0.3, 0.9, 0.2],
                                         [1.6, 1.7, 1.1]], cell=[[4.5, 0, 0], [0.5, 4.2, 0],
                                                                 [0.3, -0.4, 4.8]], pbc=True)
    graph = model.batch([atoms], padding=PADDING)[0]
    params = init_params(model, graph, 1)
    apply = jax.jit(lambda p, g: {k: v.array
                                  for k, v in model.apply(p, g, cartesian=False).items()})
    before = apply(params, graph)
    g = -Rotation.random(random_state=3).as_matrix()
    perm = np.array([2, 0, 3, 1])
    moved = atoms[perm]
    moved.set_cell(atoms.cell.array @ g.T)
    moved.positions = atoms.positions[perm] @ g.T + 1.0
    after = apply(params, model.batch([moved], padding=PADDING)[0])
    for name in ("bec", "raman"):
        expected = np.asarray(before[name][:4][perm]) @ wigner(name, g).T
        np.testing.assert_allclose(after[name][:4], expected, atol=1e-10 * np.abs(expected).max())


def test_derivatives_match_finite_differences(x64):
    atoms = ase.Atoms("OH2O", positions=[[0, 0, 0], [0.97, 0.1, 0], [-0.3, 0.9, 0.2],
                                         [1.6, 1.7, 1.1]], cell=[4.5, 4.2, 4.8], pbc=True)
    params, _ = compiled(True)
    graph = MODEL.batch([atoms], padding=PADDING)[0]
    weights = np.random.default_rng(0).normal(size=(PADDING.n_node, 9))

    @jax.jit
    def scalar(positions):
        out = MODEL.apply(params, graph._replace(positions=positions), cartesian=False)
        return jnp.sum(out["bec"].array * weights) + jnp.sum(out["dipole"].array[0] ** 2)

    x0 = jnp.asarray(graph.positions)
    grad = np.asarray(jax.grad(scalar)(x0))
    h = 1e-5
    numeric = np.zeros_like(grad)
    for a in range(len(atoms)):
        for c in range(3):
            step = np.zeros_like(grad)
            step[a, c] = h
            numeric[a, c] = (scalar(x0 + step) - scalar(x0 - step)) / (2 * h)
    assert np.abs(grad[:len(atoms)]).max() > 1e-3
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_outputs_are_smooth_as_an_atom_crosses_the_cutoff():
    def pair_of_pairs(d):  # the two pairs see each other only within the cutoff
        return ase.Atoms("OHOH", positions=[[0, 0, 0], [1, 0, 0], [1 + d, 0, 0], [2 + d, 0, 0]])
    inside, outside = predict(pair_of_pairs(CUTOFF - 1e-3)), predict(pair_of_pairs(CUTOFF + 1e-3))
    far = predict(pair_of_pairs(CUTOFF + 0.5))
    np.testing.assert_allclose(outside["bec"], far["bec"], atol=1e-12)
    np.testing.assert_allclose(inside["bec"], outside["bec"],
                               atol=1e-6 * np.abs(far["bec"]).max())


def test_padding_and_batch_mates_do_not_change_outputs(x64):
    a = ase.Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], cell=[5] * 3,
                  pbc=True)
    b = ase.Atoms("O2", positions=[[0, 0, 0], [1.2, 0, 0]], cell=[4] * 3, pbc=True)
    params, apply = compiled(True)
    alone = apply(params, MODEL.batch([a], padding=PADDING)[0])
    [together] = MODEL.batch([b, a], batch_size=2,
                             padding=Padding(n_node=9, n_edge=512, n_graph=4, n_neighbour=96))
    both = apply(params, together)
    np.testing.assert_allclose(both["bec"][2:5], alone["bec"][:3], atol=1e-12)
    np.testing.assert_allclose(both["dipole"][1], alone["dipole"][0], atol=1e-12)
    np.testing.assert_array_equal(both["bec"][5:], 0.0)  # padding rows are zero
    np.testing.assert_array_equal(both["dipole"][2:], 0.0)


def test_merged_stack_equals_vmap(x64):
    structures = [ase.Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]],
                            cell=[5] * 3, pbc=True),
                  ase.Atoms("O2H", positions=[[0, 0, 0], [1.2, 0, 0], [0.3, 1.0, 0.2]],
                            cell=[4.2] * 3, pbc=True)]
    params, _ = compiled(True)
    stacked = stack_graphs(MODEL.batch(structures, padding=PADDING))
    with_vmap = jax.jit(jax.vmap(lambda g: MODEL.apply(params, g)))(stacked)
    merged = jax.jit(lambda b: MODEL.apply(params, merge_stacked(b)))(stacked)
    np.testing.assert_allclose(merged["bec"].reshape(with_vmap["bec"].shape), with_vmap["bec"],
                               atol=1e-12)
    np.testing.assert_allclose(merged["dipole"].array.reshape(with_vmap["dipole"].shape),
                               with_vmap["dipole"].array, atol=1e-12)


def test_response_model_heads_shapes_and_determinism(batio3):
    model = response_model(avg_num_neighbours=40.0, hidden_irreps="8x0e + 4x1o + 2x2e",
                           n_layers=2, cutoff=4.0, radial_hidden=(8,), readout_mul=2)
    graphs = model.batch(batio3[:2], batch_size=2, node_data=["born_charges", "raman_tensors"])
    params, again = init_params(model, graphs[0], 7), init_params(model, graphs[0], 7)
    assert count_parameters(params) == count_parameters(again) > 1000
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, again)
    out = jax.jit(model.apply)(params, graphs[0])
    assert out["born_charges"].shape == (271, 3, 3) == graphs[0].node_data["born_charges"].shape
    assert out["raman_tensors"].shape == (271, 3, 3, 3)
    raman = np.asarray(out["raman_tensors"])
    np.testing.assert_array_equal(raman, raman.transpose(0, 1, 3, 2))  # field pair symmetric
    assert np.abs(out["born_charges"][:270]).max() > 0
    assert [str(h) for h in model.plan().hidden] == ["8x0e+4x1o+2x2e"]


def test_impossible_outputs_and_bad_configurations_are_refused():
    # hidden features stop at l = 1 and harmonics at l = 1: no l = 2 or 3 anywhere
    peer_like = response_model(avg_num_neighbours=10.0, hidden_irreps="16x0e + 16x1o + 16x1e",
                               lmax=1)
    with pytest.raises(IrrepsError, match=r"head 'raman_tensors' asks for 3o"):
        peer_like.plan()
    with pytest.raises(IrrepsError, match=r"asks for 2e"):
        EquivariantGNN(species=("H",), heads=(Head("q", "2e"),), hidden_irreps="8x0e",
                       lmax=1, n_layers=2).plan()
    # an edge head reads only messages: 0e features with l <= 1 harmonics give no 2e
    with pytest.raises(IrrepsError, match=r"head 'e' asks for 2e"):
        EquivariantGNN(species=("H",), heads=(Head("e", "2e", level="edge"),),
                       hidden_irreps="8x0e", lmax=1, n_layers=1).plan()
    assert EquivariantGNN(species=("H",), heads=(Head("q", "2e"),), hidden_irreps="8x0e + 4x1o",
                          lmax=1, n_layers=2).plan().output == "8x2e"
    with pytest.raises(ValueError, match="level"):
        EquivariantGNN(species=("H",), heads=(Head("q", "0e", level="atom"),)).plan()
    with pytest.raises(ValueError, match="unique"):
        EquivariantGNN(species=("H",), heads=(Head("q", "0e"), Head("q", "1o"))).plan()
    with pytest.raises(ValueError, match="n_layers"):
        EquivariantGNN(species=("H",), heads=(Head("q", "0e"),), n_layers=0).plan()


def test_graph_with_species_the_model_was_not_built_for():
    params, _ = compiled(False)
    water = ase.Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    graph = atoms_to_graph(water, cutoff=CUTOFF, species=("H", "O", "N"))
    graph = graph._replace(species=np.array([2, 0, 0], dtype=np.int32))
    with pytest.raises(GraphError, match="built for 2 species"):
        MODEL.apply(params, graph)
    with pytest.raises(GraphError, match=r"element\(s\) C"):
        MODEL.batch([ase.Atoms("CO", positions=[[0, 0, 0], [1.1, 0, 0]])])
