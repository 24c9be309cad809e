"""Periodic graphs: the neighbour list against ase's, edge vectors, padding, and bad input."""

from __future__ import annotations

import ase
import ase.build
import ase.geometry
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase.neighborlist import neighbor_list as ase_neighbor_list
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from teachlib.graphs import (GraphError, Padding, atoms_to_graph, batch_atoms, batch_graphs,
                             edge_vectors, mean_num_neighbours, neighbour_list, padding_for,
                             stack_graphs, to_slots)


@st.composite
def periodic_structures(draw, max_atoms=6):
    """Random triclinic cells (lengths 3-6 Å, angles 60-120°) with 1-6 atoms of H or O."""
    lengths = [draw(st.floats(3.0, 6.0)) for _ in range(3)]
    angles = [draw(st.floats(60.0, 120.0)) for _ in range(3)]
    cell = ase.geometry.cellpar_to_cell(lengths + angles)
    assume(np.all(np.isfinite(cell)) and abs(np.linalg.det(cell)) > 0.3 * np.prod(lengths))
    n = draw(st.integers(1, max_atoms))
    fractional = np.array([[draw(st.floats(-0.5, 1.5)) for _ in range(3)] for _ in range(n)])
    symbols = [draw(st.sampled_from(["H", "O"])) for _ in range(n)]
    atoms = ase.Atoms(symbols, scaled_positions=fractional, cell=cell, pbc=True)
    distances = atoms.get_all_distances(mic=True) + 10 * np.eye(n)
    assume(distances.min() > 0.7)
    return atoms


def as_set(i, j, shifts):
    return {(int(a), int(b), *map(int, s)) for a, b, s in zip(i, j, shifts)}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(atoms=periodic_structures(), cutoff=st.floats(1.0, 7.0))
def test_neighbour_list_matches_ase(atoms, cutoff):
    i_ase, j_ase, s_ase = ase_neighbor_list("ijS", atoms, cutoff)
    assume(len(np.unique(i_ase)) == len(atoms))  # else the lonely-atom error (tested below)
    i, j, s = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    ours, theirs = as_set(i, j, s), as_set(i_ase, j_ase, s_ase)
    for a, b, *shift in ours ^ theirs:  # pairs at the cutoff to rounding may go either way
        d = atoms.positions[b] - atoms.positions[a] + np.array(shift) @ atoms.cell.array
        assert abs(np.linalg.norm(d) - cutoff) < 1e-9, (a, b, shift)


def sorted_edges(i, j, vectors):
    keys = np.column_stack([i, j, np.round(vectors, 4)])
    order = np.lexsort(keys.T[::-1])
    return keys[order][:, :2], np.asarray(vectors)[order]


@settings(max_examples=15, deadline=None)
@given(atoms=periodic_structures())
def test_edge_vectors_are_the_image_vectors(atoms):
    try:
        graph = atoms_to_graph(atoms, cutoff=4.0, species=("H", "O"))
    except GraphError as error:
        assume("no neighbour" not in str(error))
        raise
    with jax.enable_x64(True):  # a context, not the x64 fixture: hypothesis reruns the body
        pairs, vectors = sorted_edges(graph.receivers, graph.senders, edge_vectors(graph))
    pairs_ase, vectors_ase = sorted_edges(*ase_neighbor_list("ijD", atoms, 4.0))
    np.testing.assert_array_equal(pairs, pairs_ase)
    np.testing.assert_allclose(vectors, vectors_ase, atol=1e-10)


def test_cutoff_larger_than_the_cell_reaches_many_images():
    atoms = ase.Atoms("H", positions=[[0, 0, 0]], cell=np.eye(3) * 1.5, pbc=True)
    i, j, s = neighbour_list(atoms.positions, atoms.cell.array, True, 4.0)
    i_ase, _, _ = ase_neighbor_list("ijS", atoms, 4.0)
    assert len(i) == len(i_ase) > 50


def test_mixed_and_no_periodicity():
    atoms = ase.Atoms("H2O", positions=[[0, 0, 0], [1.2, 0, 0], [0, 1.1, 0.3]],
                      cell=[[3, 0, 0], [0, 3, 0], [0, 0, 0]], pbc=[True, True, False])
    i, j, s = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, 2.5)
    assert as_set(i, j, s) == as_set(*ase_neighbor_list("ijS", atoms, 2.5))
    assert np.all(s[:, 2] == 0)
    molecule = ase.Atoms("H2O", positions=[[0, 0, 0], [1.2, 0, 0], [0, 1.1, 0.3]])
    i, j, s = neighbour_list(molecule.positions, molecule.cell.array, False, 1.5)
    assert as_set(i, j, s) == {(0, 1, 0, 0, 0), (1, 0, 0, 0, 0), (0, 2, 0, 0, 0),
                               (2, 0, 0, 0, 0)}


def test_edge_vectors_are_differentiable_in_positions():
    atoms = ase.build.bulk("Si", cubic=True)
    graph = atoms_to_graph(atoms, cutoff=2.5, species=("Si",))

    def total_length(positions):
        return jnp.sum(jnp.linalg.norm(edge_vectors(graph._replace(positions=positions)), axis=1))

    grad = jax.grad(total_length)(jnp.asarray(graph.positions))
    np.testing.assert_allclose(grad, 0.0, atol=1e-5)  # perfect diamond: forces balance
    moved = graph.positions.copy()
    moved[0] += [0.05, 0.0, 0.0]
    assert np.abs(jax.grad(total_length)(jnp.asarray(moved))).max() > 0.1


def test_batching_offsets_masks_and_padding():
    si = ase.build.bulk("Si", cubic=True)  # 8 atoms
    si.arrays["charge"] = np.arange(8.0)
    si.info["label"] = np.array([1.0, 2.0])
    small = ase.Atoms("Si2", positions=[[0, 0, 0], [1.2, 1.2, 1.2]], cell=np.eye(3) * 5.43,
                      pbc=True)
    small.arrays["charge"] = np.array([10.0, 11.0])
    small.info["label"] = np.array([3.0, 4.0])
    graphs = [atoms_to_graph(a, cutoff=2.5, species=(14,), node_data=["charge"],
                             graph_data=["label"]) for a in (si, small)]
    batch = batch_graphs(graphs, n_node=12, n_edge=64, n_graph=4)
    n_edges = graphs[0].num_edges + graphs[1].num_edges
    assert batch.positions.shape == (12, 3) and batch.senders.shape == (64,)
    assert batch.node_mask.sum() == 10 and batch.edge_mask.sum() == n_edges
    assert batch.graph_mask.tolist() == [True, True, False, False]
    assert batch.node_graph.tolist() == [0] * 8 + [1] * 2 + [3] * 2
    assert batch.n_node.tolist() == [8, 2, 0, 0]
    # edges of the second graph point at its own atoms; padding edges at the padding node
    second = slice(graphs[0].num_edges, n_edges)
    assert set(batch.senders[second]) <= {8, 9} and set(batch.receivers[second]) <= {8, 9}
    assert np.all(batch.senders[n_edges:] == 11) and np.all(batch.receivers[n_edges:] == 11)
    np.testing.assert_allclose(batch.node_data["charge"], list(range(8)) + [10, 11, 0, 0])
    np.testing.assert_allclose(batch.graph_data["label"], [[1, 2], [3, 4], [0, 0], [0, 0]])
    # neighbour slots: every real edge has one, empty slots point at the padding node
    real = batch.edge_mask
    np.testing.assert_array_equal(batch.neighbours[batch.receivers[real], batch.slots[real]],
                                  batch.senders[real])
    assert np.all(batch.slots[~real] == batch.num_neighbours)
    filled = np.zeros(batch.neighbours.shape, bool)
    filled[batch.receivers[real], batch.slots[real]] = True
    assert np.all(batch.neighbours[~filled] == 11)
    np.testing.assert_array_equal(np.asarray(to_slots(np.ones(64), batch)), filled)
    vectors = np.asarray(edge_vectors(batch))
    np.testing.assert_allclose(vectors[n_edges:], 0.0)
    lengths = np.linalg.norm(vectors[:n_edges], axis=1)
    assert lengths.min() > 2.0 and lengths.max() < 2.5


def test_batch_atoms_gives_one_shape():
    cells = [ase.build.bulk("Si", cubic=True), ase.build.bulk("Si", cubic=True) * (1, 1, 2),
             ase.build.bulk("Si", cubic=True)]
    batches = batch_atoms(cells, cutoff=2.5, species=("Si",), batch_size=2)
    padding = padding_for([atoms_to_graph(a, cutoff=2.5, species=("Si",)) for a in cells], 2)
    assert padding == Padding(n_node=25, n_edge=128, n_graph=3, n_neighbour=4)
    assert [b.positions.shape for b in batches] == [(25, 3), (25, 3)]
    assert [b.senders.shape for b in batches] == [(128,), (128,)]
    assert mean_num_neighbours(batches) == 4.0
    with pytest.raises(GraphError, match="do not fit"):
        batch_atoms(cells, cutoff=2.5, species=("Si",), batch_size=2,
                    padding=Padding(n_node=17, n_edge=64, n_graph=3, n_neighbour=4))
    with pytest.raises(GraphError, match="n_neighbour=3"):
        batch_atoms(cells, cutoff=2.5, species=("Si",), batch_size=2,
                    padding=Padding(n_node=25, n_edge=128, n_graph=3, n_neighbour=3))


def test_stacking_needs_one_padding():
    cells = [ase.build.bulk("Si", cubic=True), ase.build.bulk("Si", cubic=True) * (1, 1, 2)]
    unequal = [batch_atoms([c], cutoff=2.5, species=("Si",))[0] for c in cells]
    with pytest.raises(GraphError, match="different paddings"):
        stack_graphs(unequal)
    same = batch_atoms(cells, cutoff=2.5, species=("Si",))
    assert stack_graphs(same).senders.shape == (2, same[0].num_edges)


def test_bad_input_is_refused_with_a_clear_message():
    cell = np.eye(3) * 4.0
    with pytest.raises(GraphError, match=r"positions must have shape \(n_atoms, 3\)"):
        neighbour_list(np.zeros((4, 2)), cell, True, 3.0)
    with pytest.raises(GraphError, match=r"cell must have shape \(3, 3\)"):
        neighbour_list(np.zeros((4, 3)), np.eye(2), True, 3.0)
    with pytest.raises(GraphError, match=r"atom\(s\) \[1\] are NaN"):
        neighbour_list([[0, 0, 0], [np.nan, 0, 0]], cell, True, 3.0)
    with pytest.raises(GraphError, match="degenerate"):
        neighbour_list([[0, 0, 0]], [[1, 0, 0], [2, 0, 0], [0, 0, 1]], True, 3.0)
    for cutoff in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(GraphError, match="cutoff must be a positive finite"):
            neighbour_list([[0, 0, 0]], cell, True, cutoff)
    with pytest.raises(GraphError, match="max_neighbours"):
        neighbour_list([[0, 0, 0]], np.eye(3) * 0.5, True, 10.0)
    with pytest.raises(GraphError, match="overlap"):
        neighbour_list([[0, 0, 0], [0, 0, 1e-5]], cell, True, 3.0)
    lonely = ase.Atoms("H3", positions=[[0, 0, 0], [0.8, 0, 0], [5, 5, 5]], cell=[12] * 3,
                       pbc=True)
    with pytest.raises(GraphError, match=r"atom\(s\) 2 \(H\) have no neighbour within the "
                                         r"cutoff 2.0"):
        atoms_to_graph(lonely, cutoff=2.0, species=("H",))
    with pytest.raises(GraphError, match=r"element\(s\) Cl \(first: atom 1\) not among"):
        atoms_to_graph(ase.Atoms("NaCl", positions=[[0, 0, 0], [2.8, 0, 0]]), cutoff=3.0,
                       species=("Na",))
    with pytest.raises(GraphError, match="no 'born_charges'"):
        atoms_to_graph(ase.build.bulk("Si"), cutoff=3.0, species=("Si",),
                       node_data=["born_charges"])
