"""Atoms as graphs: periodic neighbour lists, padded to fixed shapes (chapter 3).

An atom is a node; an edge ``j -> i`` joins a *receiver* ``i`` to a *sender* ``j`` that sits
within the cutoff, possibly in another periodic image of the cell. The edge vector

    r_ij = x_j - x_i + S_ij · cell          (S_ij: integer lattice shift of the image)

is computed **inside** the jitted model from positions, cell and the integer shifts
(:func:`edge_vectors`), so a model is differentiable with respect to positions (chapter 5).
The neighbour list itself (which pairs, which shifts) is found once, outside JAX, by
`vesin <https://github.com/Luthaf/vesin>`_, a maintained cell-list code that handles any
cell shape and cutoffs larger than the cell (many images).

Several structures are batched into one padded :class:`Graph` with fixed numbers of nodes,
edges and graphs, so that ``jax.jit`` compiles once. Padding follows jraph: one extra node
and one extra graph absorb the padding; padding edges join the padding node to itself and
are masked out.

Besides the edge list, a graph holds the same edges as *neighbour slots*: row ``i`` of
``neighbours`` lists the senders of atom ``i`` (padded to a fixed ``n_neighbour`` with the
padding node), and ``slots`` says where each edge sits in its receiver's row. The network sums
messages over a row with dense, batched matrix products instead of scattering edge by edge,
which is several times faster on a CPU (:func:`to_slots`).

>>> import ase
>>> atoms = ase.Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]],
...                   cell=[8, 8, 8], pbc=True)
>>> g = atoms_to_graph(atoms, cutoff=1.5, species=("H", "O"))
>>> g.senders.shape, g.species.tolist()       # two O-H bonds, each both ways
((4,), [1, 0, 0])
>>> batch = batch_graphs([g, g], n_node=7, n_edge=16, n_graph=3)
>>> batch.positions.shape, int(batch.node_mask.sum()), int(batch.edge_mask.sum())
((7, 3), 6, 8)
>>> batch.neighbours.tolist()[:3]       # O sees both H; each H sees the O (6: padding)
[[2, 1], [0, 6], [0, 6]]
>>> lengths = np.linalg.norm(edge_vectors(batch), axis=1)   # O-H bonds; padding edges: 0
>>> lengths.round(2).tolist()[:4], float(lengths[~batch.edge_mask].max())
([0.96, 0.96, 0.96, 0.96], 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import ase
import ase.data
import jax
import jax.numpy as jnp
import numpy as np
import vesin

__all__ = [
    "Graph",
    "GraphError",
    "Padding",
    "species_indices",
    "neighbour_list",
    "atoms_to_graph",
    "batch_graphs",
    "padding_for",
    "batch_atoms",
    "edge_vectors",
    "mean_num_neighbours",
    "match_edges",
    "to_slots",
    "stack_graphs",
    "merge_stacked",
]

DEFAULT_MAX_NEIGHBOURS = 1000


class GraphError(ValueError):
    """Input that cannot become a graph; the message says which atom or array and why."""


class Graph(NamedTuple):
    """One or more structures as arrays (a JAX pytree; padded once batched).

    Node arrays have ``n_node`` rows, edge arrays ``n_edge``, graph arrays ``n_graph``.
    ``node_data`` / ``graph_data`` carry labels (e.g. ``"born_charges"``), padded with zeros.
    """

    positions: np.ndarray  # (n_node, 3) Cartesian, Å
    species: np.ndarray  # (n_node,) int: index into the model's species list
    cell: np.ndarray  # (n_graph, 3, 3) lattice vectors as rows, Å
    senders: np.ndarray  # (n_edge,) int: neighbour j
    receivers: np.ndarray  # (n_edge,) int: centre i
    shifts: np.ndarray  # (n_edge, 3) integer lattice shifts S_ij (stored as floats)
    node_graph: np.ndarray  # (n_node,) int: graph of each node
    node_mask: np.ndarray  # (n_node,) bool: True for real atoms
    edge_mask: np.ndarray  # (n_edge,) bool: True for real edges
    graph_mask: np.ndarray  # (n_graph,) bool: True for real structures
    n_node: np.ndarray  # (n_graph,) int: atoms per structure (0 for padding)
    neighbours: np.ndarray  # (n_node, n_neighbour) int: senders of each atom, padded
    slots: np.ndarray  # (n_edge,) int: column of each edge in ``neighbours`` (padding: beyond)
    node_data: dict  # name -> (n_node, ...) per-atom labels
    graph_data: dict  # name -> (n_graph, ...) per-structure labels

    @property
    def num_nodes(self) -> int:
        return self.positions.shape[0]

    @property
    def num_edges(self) -> int:
        return self.senders.shape[0]

    @property
    def num_graphs(self) -> int:
        return self.cell.shape[0]

    @property
    def num_neighbours(self) -> int:
        """Columns of ``neighbours``: the most neighbours an atom may have in this batch."""
        return self.neighbours.shape[1]


class Padding(NamedTuple):
    """Fixed sizes of a batch: nodes, edges, graphs (padding included), and neighbours per
    atom (``None``: the most in the batch, which may differ between batches)."""

    n_node: int
    n_edge: int
    n_graph: int
    n_neighbour: int | None = None


def _slots(receivers, edge_mask, n_node):
    """Column of each real edge within its receiver's row (edges sorted by receiver or not)."""
    receivers = np.asarray(receivers)
    order = np.argsort(receivers, kind="stable")
    sorted_receivers = receivers[order]
    starts = np.searchsorted(sorted_receivers, np.arange(n_node))
    slots = np.empty(len(receivers), dtype=np.int32)
    slots[order] = np.arange(len(receivers)) - starts[sorted_receivers]
    return np.where(edge_mask, slots, -1)


def to_slots(edge_values, graph: Graph):
    """Edge values ``(n_edge, ...)`` -> neighbour slots ``(n_node, n_neighbour, ...)``.

    Empty slots and padding edges are zero. Differentiable (a scatter whose transpose is a
    gather), so gradients flow back to the edge values and, through them, to the positions.

    >>> import ase.build
    >>> g = batch_atoms([ase.build.bulk("Si", cubic=True)], cutoff=2.5, species=("Si",))[0]
    >>> to_slots(jnp.ones(g.num_edges), g).shape, float(to_slots(jnp.ones(g.num_edges), g).sum())
    ((9, 4), 32.0)
    """
    n_node, n_neighbour = graph.neighbours.shape
    edge_values = jnp.asarray(edge_values)
    dense = jnp.zeros((n_node, n_neighbour) + edge_values.shape[1:], edge_values.dtype)
    return dense.at[jnp.asarray(graph.receivers), jnp.asarray(graph.slots)].set(
        edge_values, mode="drop")


def edge_vectors(graph: Graph):
    """Edge vectors ``x_j - x_i + S_ij · cell``, shape ``(n_edge, 3)``; differentiable.

    Call it inside the jitted function: its gradient with respect to ``graph.positions``
    (and ``graph.cell``) is what chapter 5 uses.
    """
    positions = jnp.asarray(graph.positions)  # (n_node, 3)
    cell = jnp.asarray(graph.cell, dtype=positions.dtype)  # (n_graph, 3, 3)
    edge_cell = cell[jnp.asarray(graph.node_graph)[graph.receivers]]  # (n_edge, 3, 3)
    shifts = jnp.asarray(graph.shifts, dtype=positions.dtype)  # (n_edge, 3)
    image = jnp.einsum("ea,eab->eb", shifts, edge_cell)  # (n_edge, 3)
    return positions[graph.senders] - positions[graph.receivers] + image


def species_indices(numbers, species: Sequence[int | str]) -> np.ndarray:
    """Index of each atom's element (atomic numbers ``numbers``) in ``species``.

    Raises:
        GraphError: for an element the model was not built for.

    >>> species_indices([8, 1, 1], ("H", "O")).tolist()
    [1, 0, 0]
    """
    known = [ase.data.atomic_numbers[s] if isinstance(s, str) else int(s) for s in species]
    if len(set(known)) != len(known):
        raise GraphError(f"species {tuple(species)} lists an element twice")
    lookup = {z: k for k, z in enumerate(known)}
    z = np.asarray(numbers).reshape(-1)
    unknown = sorted({int(x) for x in z if int(x) not in lookup})
    if unknown:
        first = int(np.flatnonzero(np.isin(z, unknown))[0])
        names = ", ".join(ase.data.chemical_symbols[u] for u in unknown)
        built = ", ".join(ase.data.chemical_symbols[n] for n in known)
        raise GraphError(f"element(s) {names} (first: atom {first}) not among the species the "
                         f"model was built for ({built}); build a model for them or drop "
                         "those atoms")
    return np.array([lookup[int(x)] for x in z], dtype=np.int32)


def _check_structure(positions, cell, pbc) -> None:
    if positions.ndim != 2 or positions.shape[1] != 3 or positions.shape[0] == 0:
        raise GraphError(f"positions must have shape (n_atoms, 3) with n_atoms >= 1, "
                         f"got {positions.shape}")
    if cell.shape != (3, 3):
        raise GraphError(f"cell must have shape (3, 3) (lattice vectors as rows), "
                         f"got {cell.shape}")
    if pbc.shape != (3,):
        raise GraphError(f"pbc must be one bool or three, got shape {pbc.shape}")
    bad = np.flatnonzero(~np.isfinite(positions).all(axis=1))
    if bad.size:
        raise GraphError(f"positions of atom(s) {bad[:10].tolist()} are NaN or infinite")
    if not np.isfinite(cell).all():
        raise GraphError("the cell holds NaN or infinite entries")
    if np.any(pbc):
        periodic = cell[pbc]
        if np.linalg.matrix_rank(periodic, tol=1e-6) < len(periodic) or (
                np.all(pbc) and abs(np.linalg.det(cell)) < 1e-6):
            raise GraphError(f"the cell {cell.tolist()} is degenerate (zero volume) along its "
                             "periodic directions; the neighbour list needs independent "
                             "lattice vectors there")


def _perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell (how far a cutoff reaches into images)."""
    volume = abs(np.linalg.det(cell))
    cross = np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]])
    return volume / np.linalg.norm(cross, axis=1)


def neighbour_list(positions, cell, pbc, cutoff: float, *,
                   max_neighbours: int = DEFAULT_MAX_NEIGHBOURS, symbols=None):
    """Every ordered pair ``(i, j, S)`` with ``|x_j - x_i + S·cell| < cutoff`` (vesin).

    Args:
        positions: ``(n_atoms, 3)``, Å.
        cell: ``(3, 3)``, lattice vectors as rows, Å.
        pbc: periodicity, one bool or three.
        cutoff: radius in Å.
        max_neighbours: refuse cutoffs that give more neighbours per atom than this (in a small
            cell a large cutoff reaches thousands of periodic images).
        symbols: chemical symbols, only to name atoms in error messages.

    Returns:
        ``receivers (n_edge,)``, ``senders (n_edge,)``, ``shifts (n_edge, 3)`` (ints),
        sorted by receiver.

    Raises:
        GraphError: wrong shapes, NaN, a degenerate cell, a bad cutoff, overlapping atoms, an
            atom with no neighbour within the cutoff (it names the atoms), too many neighbours.

    >>> i, j, s = neighbour_list([[0, 0, 0]], 2.0 * np.eye(3), True, 2.5)
    >>> len(i)                  # a simple cubic lattice: 6 neighbours at 2 Å, 12 at 2.83 Å
    6
    """
    positions = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    pbc = np.repeat(pbc, 3) if pbc.shape == () else pbc
    _check_structure(positions, cell, pbc)
    if not (isinstance(cutoff, (int, float, np.floating)) and math.isfinite(cutoff)
            and cutoff > 0):
        raise GraphError(f"cutoff must be a positive finite number of Å, got {cutoff!r}")
    if np.all(pbc):
        widths = _perpendicular_widths(cell)
        images = np.prod(2 * np.ceil(cutoff / widths) + 1)
        expected = len(positions) / abs(np.linalg.det(cell)) * 4 / 3 * np.pi * cutoff**3
        if expected > max_neighbours:
            raise GraphError(
                f"cutoff {cutoff} Å reaches about {expected:.0f} neighbours per atom in this "
                f"cell (thinnest width {widths.min():.2f} Å, {images:.0f} periodic images); "
                f"more than max_neighbours={max_neighbours}. Use a smaller cutoff or a "
                "bigger cell (a supercell).")
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True, sorted=True)
    i, j, shifts, d = calculator.compute(positions, cell, pbc.tolist(), quantities="ijSd")
    i, j, shifts, d = (np.asarray(a) for a in (i, j, shifts, d))
    if np.any(d < 1e-3):
        k = int(np.argmin(d))
        raise GraphError(f"atoms {int(i[k])} and {int(j[k])} overlap (distance {d[k]:.2e} Å)")
    lonely = np.setdiff1d(np.arange(len(positions)), i)
    if lonely.size:
        names = [f"{k} ({symbols[k]})" if symbols is not None else str(k) for k in lonely[:10]]
        raise GraphError(f"atom(s) {', '.join(names)}{' ...' if lonely.size > 10 else ''} have "
                         f"no neighbour within the cutoff {cutoff} Å: a message-passing network "
                         "cannot see them. Increase the cutoff or check the structure.")
    counts = np.bincount(i, minlength=len(positions))
    if counts.max() > max_neighbours:
        raise GraphError(f"atom {int(np.argmax(counts))} has {counts.max()} neighbours within "
                         f"{cutoff} Å, more than max_neighbours={max_neighbours}")
    return i.astype(np.int32), j.astype(np.int32), shifts.astype(np.int32)


def atoms_to_graph(atoms: ase.Atoms, *, cutoff: float, species: Sequence[int | str],
                   node_data: Sequence[str] = (), graph_data: Sequence[str] = (),
                   max_neighbours: int = DEFAULT_MAX_NEIGHBOURS) -> Graph:
    """One structure as an unpadded :class:`Graph` (``n_graph = 1``, NumPy arrays).

    Args:
        atoms: the structure (``atoms.pbc`` says which directions are periodic).
        cutoff: neighbour cutoff in Å.
        species: the elements the model is built for (symbols or atomic numbers).
        node_data: names in ``atoms.arrays`` to carry along (e.g. ``"born_charges"``).
        graph_data: names in ``atoms.info`` to carry along (e.g. ``"dielectric"``).
        max_neighbours: see :func:`neighbour_list`.
    """
    species_idx = species_indices(atoms.numbers, species)
    receivers, senders, shifts = neighbour_list(
        atoms.positions, atoms.cell.array, atoms.pbc, cutoff, max_neighbours=max_neighbours,
        symbols=atoms.get_chemical_symbols())
    n = len(atoms)
    slots = _slots(receivers, np.ones(len(receivers), bool), n)
    neighbours = np.full((n, int(slots.max()) + 1), -1, dtype=np.int32)  # -1: empty slot
    neighbours[receivers, slots] = senders
    nodes = {}
    for name in node_data:
        if name not in atoms.arrays:
            raise GraphError(f"atoms.arrays has no {name!r}; it has {sorted(atoms.arrays)}")
        nodes[name] = np.asarray(atoms.arrays[name])
    graphs = {}
    for name in graph_data:
        if name not in atoms.info:
            raise GraphError(f"atoms.info has no {name!r}; it has {sorted(atoms.info)}")
        graphs[name] = np.asarray(atoms.info[name])[None]
    return Graph(
        positions=np.asarray(atoms.positions, dtype=np.float64),
        species=species_idx,
        cell=np.asarray(atoms.cell.array, dtype=np.float64)[None],
        senders=senders,
        receivers=receivers,
        shifts=shifts.astype(np.float64),
        node_graph=np.zeros(n, dtype=np.int32),
        node_mask=np.ones(n, dtype=bool),
        edge_mask=np.ones(len(senders), dtype=bool),
        graph_mask=np.ones(1, dtype=bool),
        n_node=np.array([n], dtype=np.int32),
        neighbours=neighbours,
        slots=slots,
        node_data=nodes,
        graph_data=graphs,
    )


def batch_graphs(graphs: Sequence[Graph], *, n_node: int, n_edge: int, n_graph: int,
                 n_neighbour: int | None = None) -> Graph:
    """Concatenate graphs and pad them to exactly ``n_node`` nodes, ``n_edge`` edges and
    ``n_graph`` graphs (at least one node and one graph of the sizes are padding), with
    ``n_neighbour`` neighbour slots per atom (default: the most any atom has).

    Raises:
        GraphError: if the graphs do not fit.
    """
    real_nodes = sum(g.num_nodes for g in graphs)
    real_edges = sum(g.num_edges for g in graphs)
    real_graphs = sum(g.num_graphs for g in graphs)
    most = max(g.num_neighbours for g in graphs)
    n_neighbour = most if n_neighbour is None else n_neighbour
    if (real_nodes + 1 > n_node or real_edges > n_edge or real_graphs + 1 > n_graph
            or most > n_neighbour):
        raise GraphError(f"{real_nodes} nodes, {real_edges} edges, {real_graphs} graphs, up to "
                         f"{most} neighbours per atom do not fit the padding n_node={n_node}, "
                         f"n_edge={n_edge}, n_graph={n_graph}, n_neighbour={n_neighbour} "
                         "(one node and one graph are reserved for padding)")
    node_offsets = np.cumsum([0] + [g.num_nodes for g in graphs])
    graph_offsets = np.cumsum([0] + [g.num_graphs for g in graphs])
    pad_nodes, pad_edges = n_node - real_nodes, n_edge - real_edges
    pad_graphs = n_graph - real_graphs
    pad_node = n_node - 1  # the padding node, in the padding graph n_graph - 1

    def cat(arrays, pad_rows, fill=0):
        arrays = list(arrays)
        pad = np.full((pad_rows,) + arrays[0].shape[1:], fill, dtype=arrays[0].dtype)
        return np.concatenate(arrays + [pad])

    def data(name, get, pad_rows):
        keys = [set(get(g)) for g in graphs]
        if any(k != keys[0] for k in keys):
            raise GraphError(f"graphs carry different {name}: {keys}")
        return {key: cat([get(g)[key] for g in graphs], pad_rows) for key in keys[0]}

    cell_pad = np.broadcast_to(np.eye(3), (pad_graphs, 3, 3))
    neighbours = np.full((n_node, n_neighbour), pad_node, dtype=np.int32)
    for g, o in zip(graphs, node_offsets):
        rows = g.neighbours[:g.num_nodes]
        neighbours[o:o + g.num_nodes, :rows.shape[1]] = np.where(rows >= 0, rows + o, pad_node)
    slots = cat((np.where(g.edge_mask, g.slots, n_neighbour) for g in graphs), pad_edges,
                n_neighbour)
    return Graph(
        positions=cat((g.positions for g in graphs), pad_nodes),
        species=cat((g.species for g in graphs), pad_nodes),
        cell=np.concatenate([g.cell for g in graphs] + [cell_pad]),
        senders=cat((g.senders + o for g, o in zip(graphs, node_offsets)), pad_edges, pad_node),
        receivers=cat((g.receivers + o for g, o in zip(graphs, node_offsets)), pad_edges,
                      pad_node),
        shifts=cat((g.shifts for g in graphs), pad_edges),
        node_graph=cat((g.node_graph + o for g, o in zip(graphs, graph_offsets)), pad_nodes,
                       n_graph - 1),
        node_mask=cat((g.node_mask for g in graphs), pad_nodes, False),
        edge_mask=cat((g.edge_mask for g in graphs), pad_edges, False),
        graph_mask=cat((g.graph_mask for g in graphs), pad_graphs, False),
        n_node=cat((g.n_node for g in graphs), pad_graphs),
        neighbours=neighbours,
        slots=slots.astype(np.int32),
        node_data=data("node_data", lambda g: g.node_data, pad_nodes),
        graph_data=data("graph_data", lambda g: g.graph_data, pad_graphs),
    )


def padding_for(graphs: Sequence[Graph], batch_size: int, *, multiple: int = 64) -> Padding:
    """A padding that fits any ``batch_size`` of these graphs (the largest ones together).

    Edges are rounded up to a multiple of ``multiple``, neighbour slots to a multiple of 4, so
    that a slightly different data set (or the same one rotated, whose neighbour lists may
    differ at the cutoff by rounding) reuses the same compiled function.
    """
    if not graphs:
        raise GraphError("no graphs to pad")
    batch_size = min(batch_size, len(graphs))
    nodes = sorted((g.num_nodes for g in graphs), reverse=True)[:batch_size]
    edges = sorted((g.num_edges for g in graphs), reverse=True)[:batch_size]
    n_edge = int(math.ceil(sum(edges) / multiple) * multiple)
    n_neighbour = 4 * math.ceil(max(g.num_neighbours for g in graphs) / 4)
    return Padding(n_node=sum(nodes) + 1, n_edge=max(n_edge, multiple),
                   n_graph=batch_size + 1, n_neighbour=n_neighbour)


def batch_atoms(structures: Sequence[ase.Atoms], *, cutoff: float,
                species: Sequence[int | str], batch_size: int = 1,
                padding: Padding | None = None, node_data: Sequence[str] = (),
                graph_data: Sequence[str] = (),
                max_neighbours: int = DEFAULT_MAX_NEIGHBOURS) -> list[Graph]:
    """Structures -> padded batches of ``batch_size`` (in order), all of one shape.

    Args:
        structures: a list of :class:`ase.Atoms`.
        cutoff, species, node_data, graph_data, max_neighbours: as in :func:`atoms_to_graph`.
        batch_size: structures per batch (the last batch may hold fewer; same shape).
        padding: fixed sizes; default :func:`padding_for` these structures. Pass the padding
            of the training set to the test set to reuse the compiled function.

    >>> import ase.build
    >>> cells = [ase.build.bulk("Si", cubic=True) for _ in range(3)]
    >>> batches = batch_atoms(cells, cutoff=3.0, species=("Si",), batch_size=2)
    >>> len(batches), batches[0].positions.shape, batches[1].positions.shape
    (2, (17, 3), (17, 3))
    """
    graphs = [atoms_to_graph(a, cutoff=cutoff, species=species, node_data=node_data,
                             graph_data=graph_data, max_neighbours=max_neighbours)
              for a in structures]
    padding = padding or padding_for(graphs, batch_size)
    return [batch_graphs(graphs[k:k + batch_size], **padding._asdict())
            for k in range(0, len(graphs), batch_size)]


def stack_graphs(graphs: Sequence[Graph]) -> Graph:
    """Graphs of one padding stacked along a new leading axis: a data set for
    :func:`teachlib.train.fit`, whose mini-batches the model reads with ``jax.vmap``.

    >>> import ase.build
    >>> batches = batch_atoms([ase.build.bulk("Si", cubic=True)] * 3, cutoff=2.5,
    ...                       species=("Si",))
    >>> stack_graphs(batches).positions.shape        # (examples, n_node, 3)
    (3, 9, 3)
    """
    shapes = {tuple(np.shape(leaf) for leaf in jax.tree_util.tree_leaves(g)) for g in graphs}
    if len(shapes) != 1:
        raise GraphError("graphs of different paddings cannot be stacked; batch them with one "
                         "Padding (padding_for(...))")
    return jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *graphs)


def merge_stacked(batch: Graph) -> Graph:
    """A stack of graphs ``(B, ...)`` (a mini-batch of :func:`stack_graphs`) as one graph.

    Works inside ``jax.jit``: node and graph indices are offset, arrays reshaped. A model fed
    the merged graph does the work of ``jax.vmap`` over the stack without its overhead (a vmap
    over a single graph costs almost twice a plain call on a CPU).

    >>> import ase.build
    >>> batches = batch_atoms([ase.build.bulk("Si", cubic=True)] * 3, cutoff=2.5,
    ...                       species=("Si",))
    >>> merged = merge_stacked(stack_graphs(batches))
    >>> merged.positions.shape, merged.cell.shape, int(merged.senders.max())
    ((27, 3), (6, 3, 3), 26)
    """
    n_batch, n_node = batch.positions.shape[:2]
    n_graph = batch.cell.shape[1]
    xp = jnp if any(isinstance(leaf, jax.Array) for leaf in jax.tree_util.tree_leaves(batch)) \
        else np
    node_offset = xp.arange(n_batch)[:, None] * n_node  # (B, 1)
    graph_offset = xp.arange(n_batch)[:, None] * n_graph

    def flat(x):
        return x.reshape((-1,) + tuple(x.shape[2:]))

    return Graph(
        positions=flat(batch.positions),
        species=flat(batch.species),
        cell=flat(batch.cell),
        senders=flat(batch.senders + node_offset),
        receivers=flat(batch.receivers + node_offset),
        shifts=flat(batch.shifts),
        node_graph=flat(batch.node_graph + graph_offset),
        node_mask=flat(batch.node_mask),
        edge_mask=flat(batch.edge_mask),
        graph_mask=flat(batch.graph_mask),
        n_node=flat(batch.n_node),
        neighbours=flat(batch.neighbours + node_offset[:, :, None]),
        slots=flat(batch.slots),
        node_data={k: flat(v) for k, v in batch.node_data.items()},
        graph_data={k: flat(v) for k, v in batch.graph_data.items()},
    )


def mean_num_neighbours(graphs: Sequence[Graph]) -> float:
    """Mean number of neighbours per real atom: the model's aggregation normaliser.

    >>> import ase.build
    >>> g = atoms_to_graph(ase.build.bulk("Si", cubic=True), cutoff=2.5, species=("Si",))
    >>> mean_num_neighbours([g])            # diamond: 4 nearest neighbours
    4.0
    """
    edges = sum(int(np.asarray(g.edge_mask).sum()) for g in graphs)
    nodes = sum(int(np.asarray(g.node_mask).sum()) for g in graphs)
    return edges / nodes


def match_edges(graph: Graph, other: Graph, *, permutation=None, lattice_shifts=None,
                strict: bool = True):
    """For each real edge of ``other``, the index of the same physical edge in ``graph``.

    ``other`` is the graph of the same structure after a symmetry operation: its atom ``a`` is
    atom ``permutation[a]`` of ``graph``, moved by the lattice vector ``lattice_shifts[a]``
    (integers, in units of the cell vectors) and rotated or translated in any way (which
    changes no edge label). An edge ``(i, j, S)`` of ``other`` is then the edge
    ``(permutation[i], permutation[j], S + n_j - n_i)`` of ``graph``. Used to compare
    per-edge outputs before and after the operation.

    With ``strict=False`` an edge without counterpart gets index -1 instead of an error: a
    pair at the cutoff to within rounding may be an edge in one graph and not in the other
    (its messages are zero either way, thanks to the smooth cutoff).

    Raises:
        GraphError: if an edge of ``other`` has no counterpart (different cutoffs?).

    >>> import ase.build
    >>> si = ase.build.bulk("Si", cubic=True)
    >>> g = atoms_to_graph(si, cutoff=2.5, species=("Si",))
    >>> perm = np.roll(np.arange(8), 3)
    >>> h = atoms_to_graph(si[perm], cutoff=2.5, species=("Si",))
    >>> k = match_edges(g, h, permutation=perm)
    >>> bool(np.all(g.receivers[k] == perm[h.receivers]))
    True
    """
    n_real = int(np.asarray(other.edge_mask).sum())
    n_atoms = int(np.asarray(other.node_mask).sum())
    perm = np.arange(n_atoms) if permutation is None else np.asarray(permutation)
    shifts_n = (np.zeros((n_atoms, 3), dtype=int) if lattice_shifts is None
                else np.asarray(lattice_shifts, dtype=int))
    real = np.asarray(graph.edge_mask)
    lookup = {(int(r), int(s), *np.rint(t).astype(int).tolist()): k for k, (r, s, t) in
              enumerate(zip(graph.receivers, graph.senders, graph.shifts)) if real[k]}
    index = np.empty(n_real, dtype=np.int64)
    for k in range(n_real):
        r, s = int(other.receivers[k]), int(other.senders[k])
        t = np.rint(other.shifts[k]).astype(int) + shifts_n[s] - shifts_n[r]
        key = (int(perm[r]), int(perm[s]), *t.tolist())
        if key not in lookup and not strict:
            index[k] = -1
        elif key not in lookup:
            raise GraphError(f"edge {k} of the second graph ({r} <- {s}, shift "
                             f"{np.rint(other.shifts[k]).astype(int).tolist()}) has no "
                             "counterpart in the first")
        else:
            index[k] = lookup[key]
    return index
