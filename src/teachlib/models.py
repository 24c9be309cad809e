"""An equivariant graph network (NequIP-style) with readouts to any irreps (chapters 3-4).

:class:`EquivariantGNN` maps a :class:`~teachlib.graphs.Graph` to one output per
:class:`Head`: per atom (``"node"``, e.g. Born charges), per edge (``"edge"``) or per
structure (``"graph"``, the sum over its atoms, e.g. a dipole). A head asks for irreps, or
for a Cartesian tensor (:mod:`teachlib.tensors`), which the network predicts as irreps and
decodes. The network, in one picture::

    species ──embed──► x⁰ (scalars)
    positions, cell, shifts ──► r_ij ──► |r_ij| ──► radial basis ─┐
                                   └──► Y(r̂_ij) ──────────────────┤
    x⁰ ──Interaction (gated)──► x¹ ── ... ──► x^(L-1) ──Interaction (no gate)──► features
    features ──species-wise linear──► each head's irreps ──► Cartesian tensor (optional)

Speed by construction: the last block forms only the irreps the heads read, every block
forms only the tensor-product paths that feed its outputs, messages are summed over each
atom's neighbour slots by batched matrix products (never stored per edge), shapes are padded
and fixed (``jax.jit`` compiles once per padding), and everything runs in float32 unless x64
is on. ``per_channel=False`` (radial weights per path rather than per path and channel) is
about twice as fast again; ``benchmarks/bench_model.py`` measures both.

Before building, :func:`plan_irreps` follows the irreps through the blocks and refuses
a head whose irreps the network cannot produce: equivariant layers map ``l`` to ``l`` only,
so an output irrep needs a path from the features through the tensor products with the
spherical harmonics. (A network whose hidden features stop at l = 1, with harmonics up to
l = 1, predicts an l = 2 part of the Born charges that is exactly zero.)

>>> import jax, ase.build
>>> model = EquivariantGNN(species=("Si",), heads=(Head("dipole", "1o", level="graph"),),
...                        hidden_irreps="8x0e + 4x1o", n_layers=2, cutoff=3.0,
...                        avg_num_neighbours=4.0)
>>> [graph] = model.batch([ase.build.bulk("Si", cubic=True)])
>>> params = init_params(model, graph, 0)
>>> out = jax.jit(model.apply)(params, graph)
>>> out["dipole"].shape           # (n_graph incl. padding, 3)
(2, 3)
>>> EquivariantGNN(species=("Si",), heads=(Head("q", "2e"),), hidden_irreps="8x0e",
...                lmax=1, avg_num_neighbours=4.0).plan()
Traceback (most recent call last):
...
teachlib.models.IrrepsError: head 'q' asks for 2e, which this network cannot produce...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from teachlib import graphs as graphs_module
from teachlib.graphs import (Graph, Padding, batch_atoms, edge_vectors, mean_num_neighbours,
                             to_slots)
from teachlib.layers import Interaction, edge_harmonics, radial_basis
from teachlib.tensors import BORN_CHARGE, RAMAN, CartesianTensor

__all__ = [
    "Head",
    "IrrepsError",
    "IrrepsPlan",
    "plan_irreps",
    "EquivariantGNN",
    "response_model",
    "count_parameters",
    "init_params",
    "compile_once",
    "DEFAULT_HIDDEN_IRREPS",
    "batch_atoms",
    "mean_num_neighbours",
    "Graph",
    "Padding",
]

DEFAULT_HIDDEN_IRREPS = "32x0e + 16x1o + 16x1e + 8x2e + 8x2o"
LEVELS = ("node", "edge", "graph")


class IrrepsError(ValueError):
    """A configuration whose hidden irreps cannot produce a requested output irrep."""


class Head(NamedTuple):
    """One output of the network.

    Attributes:
        name: key of the output (use the data's name, e.g. ``"born_charges"``).
        what: irreps (``"0e + 1e + 2e"``) or a :class:`~teachlib.tensors.CartesianTensor`,
            which the network predicts as its irreps and decodes to Cartesian components.
        level: ``"node"`` (per atom), ``"edge"`` (per edge, from the last block's messages)
            or ``"graph"`` (per structure: the sum over its atoms).
    """

    name: str
    what: str | CartesianTensor
    level: str = "node"

    @property
    def irreps(self) -> e3nn.Irreps:
        if isinstance(self.what, CartesianTensor):
            return self.what.irreps
        return e3nn.Irreps(self.what)

    @property
    def tensor(self) -> CartesianTensor | None:
        return self.what if isinstance(self.what, CartesianTensor) else None


class IrrepsPlan(NamedTuple):
    """What each block of the network holds (computed before any parameter exists)."""

    hidden: tuple[e3nn.Irreps, ...]  # output of each gated block, l = 0 first
    output: e3nn.Irreps  # the last block's node features: what the heads read
    messages: e3nn.Irreps  # irreps of the last block's messages: what edge heads read


def _products(irs, sh: e3nn.Irreps) -> set:
    return {ir for ir1 in irs for _, ir2 in sh for ir in ir1 * ir2}


def plan_irreps(*, hidden_irreps, lmax: int, n_layers: int, heads: Sequence[Head],
                readout_mul: int) -> IrrepsPlan:
    """Follow the irreps through the blocks; refuse heads the network cannot produce.

    Block k forms ``features ⊗ Y`` and keeps what it is asked for; an irrep of
    ``hidden_irreps`` that no path reaches yet is left out of that block (it may appear in a
    later one). The last block forms only the irreps the heads read, ``readout_mul`` copies
    of each.

    Raises:
        IrrepsError: naming the head and irrep, what the last block sees, and what would help.

    >>> plan = plan_irreps(hidden_irreps="8x0e + 4x1o + 4x2e", lmax=1, n_layers=3,
    ...                    heads=[Head("z", "0e + 1e + 2e")], readout_mul=4)
    >>> [str(h) for h in plan.hidden]          # 2e needs two steps from scalars with l <= 1
    ['8x0e+4x1o', '8x0e+4x1o+4x2e']
    >>> plan.output
    4x0e+4x1e+4x2e
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    if not heads:
        raise ValueError("the network needs at least one head")
    names = [h.name for h in heads]
    if len(set(names)) != len(names):
        raise ValueError(f"head names must be unique, got {names}")
    for head in heads:
        if head.level not in LEVELS:
            raise ValueError(f"head {head.name!r}: level {head.level!r} is not one of {LEVELS}")
    hidden_irreps = e3nn.Irreps(hidden_irreps).simplify()
    if not any(ir == e3nn.Irrep("0e") for _, ir in hidden_irreps) and n_layers > 1:
        raise IrrepsError(f"hidden irreps {hidden_irreps} have no 0e scalars; the gates need them")
    sh = e3nn.Irreps.spherical_harmonics(lmax)

    available = {e3nn.Irrep("0e")}  # the species embedding
    hidden = []
    for _ in range(n_layers - 1):
        reachable = _products(available, sh) | available  # messages, or the self-connection
        block = e3nn.Irreps([(mul, ir) for mul, ir in hidden_irreps if ir in reachable])
        hidden.append(block)
        available = {ir for _, ir in block}

    from_messages = _products(available, sh)
    wanted = sorted({ir for head in heads for _, ir in head.irreps})
    for head in heads:
        reachable = from_messages if head.level == "edge" else from_messages | available
        for _, ir in head.irreps:
            if ir not in reachable:
                have = e3nn.Irreps([(1, ir) for ir in sorted(available)])
                raise IrrepsError(
                    f"head {head.name!r} asks for {ir}, which this network cannot produce: "
                    f"the last block sees features {have} and spherical harmonics {sh} "
                    f"(lmax={lmax}), and equivariant layers only map l to l, so no path "
                    f"reaches {ir}. Add an irrep to hidden_irreps (with the harmonics it "
                    f"must combine to {ir}), raise lmax, or add a layer.")
    output = e3nn.Irreps([(readout_mul, ir) for ir in wanted])
    messages = e3nn.Irreps([(1, ir) for ir in sorted(from_messages & set(wanted))])
    return IrrepsPlan(hidden=tuple(hidden), output=output, messages=messages)


class EquivariantGNN(nn.Module):
    """NequIP-style equivariant graph network with node, edge and graph heads.

    Attributes:
        species: the elements the model is built for (symbols or atomic numbers), in the
            order of the species indices of its graphs (:meth:`batch` builds those).
        heads: the outputs, a tuple of :class:`Head`.
        hidden_irreps: irreps of the hidden features, e.g. ``"32x0e + 16x1o + 8x2e"``.
        n_layers: number of interaction blocks (message-passing steps); the receptive
            field is ``n_layers * cutoff``.
        lmax: highest l of the edge spherical harmonics.
        cutoff: neighbour cutoff, Å.
        n_basis: number of Bessel functions.
        radial_hidden: hidden widths of the radial MLPs.
        avg_num_neighbours: mean number of neighbours per atom in the data
            (:func:`~teachlib.graphs.mean_num_neighbours`); normalises the aggregation.
        readout_mul: copies of each output irrep in the last block.
        per_channel: radial weights per tensor-product path *and channel*, as in NequIP
            (True), or per path only (False): several times faster, a little less flexible.
    """

    species: tuple
    heads: tuple
    hidden_irreps: str = DEFAULT_HIDDEN_IRREPS
    n_layers: int = 3
    lmax: int = 2
    cutoff: float = 5.0
    n_basis: int = 8
    radial_hidden: tuple = (32,)
    avg_num_neighbours: float = 1.0
    readout_mul: int = 8
    per_channel: bool = True

    def plan(self) -> IrrepsPlan:
        """The irreps of every block; raises :class:`IrrepsError` for impossible heads."""
        return plan_irreps(hidden_irreps=self.hidden_irreps, lmax=self.lmax,
                           n_layers=self.n_layers, heads=self.heads,
                           readout_mul=self.readout_mul)

    def batch(self, structures, *, batch_size: int = 1, padding: Padding | None = None,
              node_data: Sequence[str] = (), graph_data: Sequence[str] = ()) -> list[Graph]:
        """Padded graphs of ``structures`` for this model (its cutoff and species order);
        see :func:`teachlib.graphs.batch_atoms`."""
        return batch_atoms(structures, cutoff=self.cutoff, species=self.species,
                           batch_size=batch_size, padding=padding, node_data=node_data,
                           graph_data=graph_data)

    @nn.compact
    def __call__(self, graph: Graph, *, cartesian: bool = True) -> dict:
        """Predict every head for a (padded) graph.

        Args:
            graph: from :meth:`batch` (or :func:`teachlib.graphs.batch_atoms` with this
                model's cutoff and species).
            cartesian: decode heads that name a Cartesian tensor (else all are irreps).

        Returns:
            ``{head name: output}``; node heads ``(n_node, ...)``, edge heads
            ``(n_edge, ...)``, graph heads ``(n_graph, ...)``; padding rows are zero.
            An output is an :class:`e3nn.IrrepsArray`, or a Cartesian array
            ``(..., 3, ..., 3)`` for a tensor head when ``cartesian``.
        """
        plan = self.plan()
        n_species = len(self.species)
        species = graph.species
        if not isinstance(species, jax.core.Tracer) and np.asarray(species).max() >= n_species:
            raise graphs_module.GraphError(
                f"the graph has species index {int(np.max(species))} but the model was built "
                f"for {n_species} species {tuple(self.species)}; build graphs with "
                "model.batch(...)")
        node_mask = jnp.asarray(graph.node_mask)
        edge_mask = jnp.asarray(graph.edge_mask)

        vectors = edge_vectors(graph)  # (n_edge, 3), differentiable in positions and cell
        # padding edges have zero length: give them a harmless direction (masked anyway)
        safe = jnp.where(edge_mask[:, None], vectors, jnp.array([0.0, 0.0, 1.0], vectors.dtype))
        lengths = jnp.linalg.norm(safe, axis=-1)  # (n_edge,)
        radial = radial_basis(lengths, n_basis=self.n_basis, cutoff=self.cutoff)  # (n_edge, nb)
        sh = edge_harmonics(safe, lmax=self.lmax)  # (n_edge, (lmax+1)^2)
        # the same, arranged as each atom's neighbour slots: (n_node, n_neighbour, ...)
        slot_mask = to_slots(edge_mask, graph)
        radial = to_slots(radial, graph)
        sh = e3nn.IrrepsArray(sh.irreps, to_slots(sh.array, graph))
        neighbours = jnp.asarray(graph.neighbours)

        n_scalars = max(sum(mul for mul, ir in e3nn.Irreps(self.hidden_irreps) if ir.l == 0), 1)
        x = nn.Embed(n_species, n_scalars, name="embedding")(species)  # (n_node, n_scalars)
        x = e3nn.IrrepsArray(f"{n_scalars}x0e", x.astype(vectors.dtype))

        blocks = [(irreps, True) for irreps in plan.hidden] + [(plan.output, False)]
        for k, (irreps, gated) in enumerate(blocks):
            x, messages = Interaction(
                irreps_out=str(irreps), avg_num_neighbours=self.avg_num_neighbours,
                n_species=n_species, radial_hidden=tuple(self.radial_hidden),
                per_channel=self.per_channel, gate=gated,
                return_messages=not gated and any(h.level == "edge" for h in self.heads),
                name=f"interaction_{k}")(x, species, sh, radial, neighbours, slot_mask)
            x = x * node_mask[:, None]  # (n_node, irreps)

        outputs = {}
        for head in self.heads:
            if head.level == "edge":
                per_edge = messages.array.at[jnp.asarray(graph.receivers),
                                             jnp.asarray(graph.slots)].get(mode="fill",
                                                                            fill_value=0)
                per_edge = e3nn.IrrepsArray(messages.irreps, per_edge)  # (n_edge, paths)
                y = e3nn.flax.Linear(head.irreps, force_irreps_out=True,
                                     name=f"head_{head.name}")(per_edge)
                y = y * edge_mask[:, None]  # (n_edge, head irreps)
            else:
                y = e3nn.flax.Linear(head.irreps, num_indexed_weights=n_species, biases=True,
                                     force_irreps_out=True,
                                     name=f"head_{head.name}")(species, x)
                y = y * node_mask[:, None]  # (n_node, head irreps)
                if head.level == "graph":
                    y = e3nn.scatter_sum(y, dst=jnp.asarray(graph.node_graph),
                                         output_size=graph.cell.shape[0])  # (n_graph, irreps)
            if cartesian and head.tensor is not None:
                y = head.tensor.from_irreps(y.array)  # (rows, 3, ..., 3)
            outputs[head.name] = y
        return outputs


def response_model(*, avg_num_neighbours: float, species=("Ba", "Ti", "O"),
                   hidden_irreps: str = DEFAULT_HIDDEN_IRREPS, n_layers: int = 3,
                   lmax: int = 2, cutoff: float = 5.0, n_basis: int = 8,
                   radial_hidden: tuple = (32,), readout_mul: int = 8,
                   per_channel: bool = True) -> EquivariantGNN:
    """The double-headed model of chapter 4: Born charges and Raman tensors per atom.

    Heads ``"born_charges"`` (``BORN_CHARGE``: 0e + 1e + 2e, decoded to ``(n_node, 3, 3)``)
    and ``"raman_tensors"`` (``RAMAN``: 2x1o + 2o + 3o, ``(n_node, 3, 3, 3)``), named like
    the arrays of :func:`teachlib.data.load_batio3`.

    >>> model = response_model(avg_num_neighbours=40.0)
    >>> [str(h) for h in model.plan().hidden]
    ['32x0e+16x1o+8x2e', '32x0e+16x1o+16x1e+8x2e+8x2o']
    >>> model.plan().output
    8x0e+8x1o+8x1e+8x2e+8x2o+8x3o
    """
    heads = (Head("born_charges", BORN_CHARGE), Head("raman_tensors", RAMAN))
    return EquivariantGNN(species=tuple(species), heads=heads, hidden_irreps=hidden_irreps,
                          n_layers=n_layers, lmax=lmax, cutoff=cutoff, n_basis=n_basis,
                          radial_hidden=tuple(radial_hidden),
                          avg_num_neighbours=float(avg_num_neighbours), readout_mul=readout_mul,
                          per_channel=per_channel)


# XLA options that skip the expensive optimisation passes: about 3x faster to compile, about
# 2.5x slower to run a training step (measured on 2 CPU cores), same results.
CHEAP_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def compile_once(fn, *args, optimize: bool = True):
    """``jax.jit(fn)`` compiled ahead of time for the shapes of ``args``.

    With ``optimize=False`` XLA skips its expensive passes: right for code that runs a few
    times (initialisation, a handful of checks), wrong for a training step. The result
    accepts only arguments of the same shapes and dtypes (padded graphs make that easy).

    >>> square = compile_once(lambda x: x**2, jnp.ones(3), optimize=False)
    >>> square(jnp.arange(3.0)).tolist()
    [0.0, 1.0, 4.0]
    """
    lowered = jax.jit(fn).lower(*args)
    if optimize:
        return lowered.compile()
    try:
        return lowered.compile(compiler_options=CHEAP_COMPILE)
    except Exception:  # pragma: no cover - a backend without these options (GPU, TPU)
        return lowered.compile()


def init_params(model: nn.Module, graph: Graph, key):
    """``model.init(key, graph)``, compiled cheaply (it runs once; on 2 CPU cores this takes
    seconds instead of tens of seconds: random initialisers are slow to compile).

    Args:
        model: an :class:`EquivariantGNN` (any flax module taking a graph).
        graph: a padded graph of the shape the model will see.
        key: a PRNG key, or an int seed.
    """
    key = jax.random.PRNGKey(key) if isinstance(key, int) else key
    return compile_once(model.init, key, graph, optimize=False)(key, graph)


def count_parameters(params) -> int:
    """Number of trainable numbers in a parameter pytree.

    >>> count_parameters({"a": np.zeros((3, 4)), "b": {"c": np.zeros(5)}})
    17
    """
    return int(sum(np.size(p) for p in jax.tree_util.tree_leaves(params)))
