"""The pieces of an equivariant message-passing network (chapter 3), in flax + e3nn-jax.

- :func:`radial_basis`: Bessel functions of the edge length times a smooth polynomial cutoff
  (Klicpera et al. 2020; NequIP), so every quantity goes to zero with its derivatives at the
  cutoff and the model is smooth when atoms cross it.
- :func:`edge_harmonics`: spherical harmonics ``Y^l(r̂)`` of the edge directions, l <= lmax.
- :class:`Interaction`: one NequIP interaction block (Batzner et al. 2022):

  1. mix the channels of the node features (an equivariant linear layer);
  2. on every edge ``j -> i``, the tensor product of the neighbour's features with
     ``Y(r̂_ij)``, computed only for the output irreps the block produces (the paths nothing
     uses are never formed); each path and channel is weighted by a small MLP of the edge
     length (the radial basis);
  3. sum the messages arriving at each atom and divide by the data's mean neighbour count
     (the sum runs over each atom's row of neighbour *slots* as one batched matrix product,
     :func:`convolve`, so per-edge messages are never stored);
  4. an equivariant linear layer, plus a self-connection that depends on the species;
  5. a gate non-linearity (scalars through SiLU; each non-scalar irrep multiplied by
     ``sigmoid`` of its own scalar), except in the output block.

References: S. Batzner et al., "E(3)-equivariant graph neural networks for data-efficient
and accurate interatomic potentials", Nat. Commun. 13, 2453 (2022); M. Geiger and T. Smidt,
"e3nn: Euclidean neural networks", arXiv:2207.09453; J. Klicpera, J. Groß, S. Günnemann,
"Directional message passing for molecular graphs", ICLR 2020.

>>> import jax.numpy as jnp
>>> basis = radial_basis(jnp.array([1.0, 4.999, 5.0, 6.0]), n_basis=4, cutoff=5.0)
>>> basis.shape, bool(jnp.all(basis[2:] == 0.0))
((4, 4), True)
>>> edge_harmonics(jnp.array([[0.0, 0.0, 2.0]]), lmax=2).irreps
1x0e+1x1o+1x2e
"""

from __future__ import annotations

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["radial_basis", "edge_harmonics", "Interaction", "gate_irreps", "tp_paths",
           "n_weights", "convolve"]


def radial_basis(lengths, *, n_basis: int, cutoff: float, p: int = 6):
    """Bessel basis times the polynomial envelope ``u_p(r / cutoff)``.

    Args:
        lengths: edge lengths, shape ``(n_edge,)``, Å.
        n_basis: number of Bessel functions ``sin(n π r / c) / r``, n = 1 .. n_basis.
        cutoff: c, Å; the basis is exactly zero for ``r >= c``.
        p: the envelope's polynomial order (NequIP: 6); its first ``p - 1`` derivatives vanish
            at r = 0 and value, slope and curvature vanish at the cutoff.

    Returns:
        ``(n_edge, n_basis)``.
    """
    envelope = e3nn.poly_envelope(p - 1, 2, cutoff)(lengths)  # (n_edge,)
    return e3nn.bessel(lengths, n_basis, cutoff) * envelope[..., None]  # (n_edge, n_basis)


def edge_harmonics(vectors, *, lmax: int) -> e3nn.IrrepsArray:
    """Spherical harmonics of edge directions, ``(n_edge, (lmax + 1)**2)``, irreps
    ``0e + 1o + 2e + ...`` (component normalisation: each ``Y^l`` has norm ``sqrt(2l + 1)``).
    """
    irreps = e3nn.Irreps.spherical_harmonics(lmax)
    return e3nn.spherical_harmonics(irreps, vectors, normalize=True, normalization="component")


def gate_irreps(irreps: e3nn.Irreps) -> e3nn.Irreps:
    """Irreps to produce before a gate so that the gate returns ``irreps``: the scalars, one
    extra ``0e`` gate per non-scalar irrep, then the non-scalars.

    >>> gate_irreps(e3nn.Irreps("16x0e + 8x1o + 4x2e"))
    16x0e+12x0e+8x1o+4x2e
    """
    irreps = e3nn.Irreps(irreps)
    scalars = e3nn.Irreps([(mul, ir) for mul, ir in irreps if ir.l == 0])
    others = e3nn.Irreps([(mul, ir) for mul, ir in irreps if ir.l > 0])
    if others.num_irreps == 0:
        return scalars
    return scalars + e3nn.Irreps(f"{others.num_irreps}x0e") + others


def tp_paths(irreps_in, sh_irreps, wanted) -> list[tuple[int, int, e3nn.Irrep]]:
    """The tensor-product paths ``(i_in, i_sh, ir_out)`` with ``ir_out`` in ``wanted``.

    Only these are ever computed: a path whose output nothing reads costs nothing.

    >>> tp_paths(e3nn.Irreps("4x0e + 2x1o"), e3nn.Irreps("0e + 1o"), {e3nn.Irrep("1o")})
    [(0, 1, 1o), (1, 0, 1o)]
    """
    irreps_in, sh_irreps = e3nn.Irreps(irreps_in), e3nn.Irreps(sh_irreps)
    return [(i, j, ir_out)
            for i, (_, ir_in) in enumerate(irreps_in)
            for j, (_, ir_sh) in enumerate(sh_irreps)
            for ir_out in ir_in * ir_sh if ir_out in wanted]


def n_weights(irreps_in, paths, per_channel: bool) -> int:
    """Number of radial weights per edge: one per path, or one per path and input channel."""
    irreps_in = e3nn.Irreps(irreps_in)
    return sum(irreps_in[a].mul for a, _, _ in paths) if per_channel else len(paths)


def convolve(x: e3nn.IrrepsArray, sh: e3nn.IrrepsArray, weights, neighbours, paths, *,
             per_channel: bool = True, return_messages: bool = False):
    """Sum over neighbours of weighted tensor products, path by path.

    For each path ``p = (a, b, c)`` (input irrep ``a``, harmonic ``b``, output ``c``), with
    ``C`` the Clebsch-Gordan coefficients and ``j`` running over the neighbours of ``i``,

        out_p[i, u, k] = Σ_j w_p[ij, u] Σ_{m, n} x_a[j, u, m] Y_b(r̂_ij)[n] C[m, n, k]

    The edges come as neighbour *slots* (:func:`teachlib.graphs.to_slots`): then the sum over
    ``j`` and ``m`` together is one batched matrix product per path, ``(u, j·m) @ (j·m, k)``
    for every atom, and no per-edge message is ever stored. With ``per_channel=False`` the
    weight does not depend on the channel ``u``: it is folded into ``Y·C`` and all paths of an
    input irrep share one product, several times cheaper again.

    Args:
        x: node features ``(n_node, irreps_in)``.
        sh: edge harmonics in slots, ``(n_node, n_neighbour, sh_irreps)``, zero in empty slots.
        weights: radial weights in slots, ``(n_node, n_neighbour, n_weights)``, zero in empty
            slots; per path and channel (``Σ_p mul_a``) or per path (``len(paths)``).
        neighbours: ``(n_node, n_neighbour)`` senders of each slot.
        paths: from :func:`tp_paths`.
        per_channel: weights per path and channel (NequIP) or per path only.
        return_messages: also return every slot's message (for edge readouts; costly).

    Returns:
        ``(n_node, irreps_out)`` with one chunk ``mul_a x ir_c`` per path (unsorted), and the
        messages ``(n_node, n_neighbour, irreps_out)`` if asked.
    """
    n_node, n_neighbour = neighbours.shape
    if weights.shape[-1] != n_weights(x.irreps, paths, per_channel):
        raise ValueError(f"convolve: {weights.shape[-1]} weights for "
                         f"{n_weights(x.irreps, paths, per_channel)} path channels")
    x_chunks, sh_chunks = x.chunks, sh.chunks
    gathered, coupled = {}, {}

    def gather(a):  # neighbour features, (n_node, n_neighbour, mul, d_a)
        if a not in gathered:
            gathered[a] = x_chunks[a][neighbours]
        return gathered[a]

    def couple(a, b, ir_c):  # Y_b C for every slot, (n_node, n_neighbour, d_a, d_c)
        l_a, l_b = x.irreps[a].ir.l, sh.irreps[b].ir.l
        if (l_a, b, ir_c.l) not in coupled:
            cg = e3nn.clebsch_gordan(l_a, l_b, ir_c.l) * jnp.sqrt(ir_c.dim)
            y = sh_chunks[b][:, :, 0, :]  # (n_node, n_neighbour, d_b)
            coupled[l_a, b, ir_c.l] = jnp.einsum("nsj,mjk->nsmk", y, cg.astype(y.dtype))
        return coupled[l_a, b, ir_c.l]

    irreps_out = [(x.irreps[a].mul, ir_c) for a, _, ir_c in paths]
    node_chunks, slot_chunks = [None] * len(paths), [None] * len(paths)
    live = [k for k, (a, b, _) in enumerate(paths)
            if x_chunks[a] is not None and sh_chunks[b] is not None]  # zero inputs: zero paths
    if per_channel:
        offsets = np.cumsum([0] + [x.irreps[a].mul for a, _, _ in paths])
        for k in live:
            a, b, ir_c = paths[k]
            w = weights[:, :, offsets[k]:offsets[k + 1]]  # (n_node, n_neighbour, mul)
            z = gather(a) * w[..., None]  # (n_node, n_neighbour, mul, d_a)
            node_chunks[k] = jnp.einsum("nsum,nsmk->nuk", z, couple(a, b, ir_c))
            if return_messages:
                slot_chunks[k] = jnp.einsum("nsum,nsmk->nsuk", z, couple(a, b, ir_c))
    else:
        for a in sorted({paths[k][0] for k in live}):
            mine = [k for k in live if paths[k][0] == a]
            # the weight of each path folded into Y C, all paths of input a side by side
            wyc = jnp.concatenate([couple(*paths[k]) * weights[:, :, k, None, None]
                                   for k in mine], axis=-1)  # (n_node, n_neighbour, d_a, Σ d_c)
            summed = jnp.einsum("nsum,nsmk->nuk", gather(a), wyc)  # (n_node, mul, Σ d_c)
            messages = (jnp.einsum("nsum,nsmk->nsuk", gather(a), wyc) if return_messages
                        else None)
            ends = np.cumsum([paths[k][2].dim for k in mine])
            starts = np.concatenate([[0], ends[:-1]])
            for k, start, stop in zip(mine, starts, ends):
                node_chunks[k] = summed[..., start:stop]
                if return_messages:
                    slot_chunks[k] = messages[..., start:stop]
    out = e3nn.from_chunks(irreps_out, node_chunks, (n_node,), x.dtype)
    if not return_messages:
        return out
    return out, e3nn.from_chunks(irreps_out, slot_chunks, (n_node, n_neighbour), x.dtype)


class Interaction(nn.Module):
    """One NequIP interaction block; see the module docstring for the five steps.

    Attributes:
        irreps_out: irreps of the block's output (after the gate, if any).
        avg_num_neighbours: the data's mean number of neighbours per atom; the summed
            messages are divided by it so that activations stay O(1) whatever the cutoff.
        n_species: number of species (for the species-dependent self-connection).
        radial_hidden: hidden widths of the radial MLP.
        per_channel: radial weights per path and channel (NequIP), or per path only.
        gate: apply the gate non-linearity (False in the output block).
        return_messages: also return each neighbour slot's message (for edge readouts).
    """

    irreps_out: str
    avg_num_neighbours: float
    n_species: int
    radial_hidden: tuple[int, ...] = (32,)
    per_channel: bool = True
    gate: bool = True
    return_messages: bool = False

    @nn.compact
    def __call__(self, x: e3nn.IrrepsArray, species, sh: e3nn.IrrepsArray, radial, neighbours,
                 slot_mask):
        """
        Args:
            x: node features, ``(n_node, irreps_in)``.
            species: ``(n_node,)`` species indices.
            sh: edge harmonics in neighbour slots, ``(n_node, n_neighbour, sh_irreps)``.
            radial: radial basis in slots, ``(n_node, n_neighbour, n_basis)``.
            neighbours: ``(n_node, n_neighbour)`` senders of each slot.
            slot_mask: ``(n_node, n_neighbour)``, False for empty slots (their messages are
                dropped).

        Returns:
            ``(node features (n_node, irreps_out), messages)``; the messages
            ``(n_node, n_neighbour, irreps_paths)`` only with ``return_messages``, else None.
        """
        target = e3nn.Irreps(self.irreps_out)
        before_gate = gate_irreps(target) if self.gate else target
        wanted = {ir for _, ir in before_gate}

        h = e3nn.flax.Linear(x.irreps, name="linear_in")(x)  # (n_node, irreps_in)
        # only the paths ir_in x ir_sh -> ir_out with ir_out used below are computed
        paths = tp_paths(h.irreps, sh.irreps, wanted)
        weights = e3nn.flax.MultiLayerPerceptron(
            self.radial_hidden + (n_weights(h.irreps, paths, self.per_channel),),
            act=jax.nn.silu, output_activation=False, name="radial_mlp")(radial)
        weights = weights * slot_mask[..., None]  # (n_node, n_neighbour, n_weights)
        summed = convolve(h, sh, weights, neighbours, paths, per_channel=self.per_channel,
                          return_messages=self.return_messages)
        summed, messages = summed if self.return_messages else (summed, None)
        summed = summed / self.avg_num_neighbours  # (n_node, irreps_paths)

        out = e3nn.flax.Linear(before_gate, force_irreps_out=True, name="linear_out")(summed)
        out = out + e3nn.flax.Linear(before_gate, num_indexed_weights=self.n_species,
                                     force_irreps_out=True,
                                     name="self_connection")(species, x)
        if self.gate:
            out = e3nn.gate(out, even_act=jax.nn.silu, odd_act=jax.nn.tanh,
                            even_gate_act=jax.nn.sigmoid)
        return out, messages  # (n_node, irreps_out), (n_node, n_neighbour, paths) or None
