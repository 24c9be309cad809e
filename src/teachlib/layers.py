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
  3. sum the messages arriving at each atom and divide by the data's mean neighbour count;
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

__all__ = ["radial_basis", "edge_harmonics", "Interaction", "gate_irreps", "tp_paths",
           "convolve"]


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


def convolve(x: e3nn.IrrepsArray, sh: e3nn.IrrepsArray, weights, senders, receivers,
             paths, *, return_messages: bool = False):
    """Sum over neighbours of weighted tensor products, path by path.

    For each path ``p = (a, b, c)``, with ``C`` the Clebsch-Gordan coefficients,

        out_p[i, u, k] = Σ_{j -> i} w_p[ij, u] Σ_{m, n} x_a[j, u, m] Y_b(r̂_ij)[n] C[m, n, k]

    Each path's edge array is formed, weighted and summed into the nodes on its own (never
    concatenated over edges), which keeps memory traffic low on CPUs.

    Args:
        x: node features ``(n_node, irreps_in)``.
        sh: edge harmonics ``(n_edge, sh_irreps)``.
        weights: ``(n_edge, Σ_p mul_a)``, the per-path, per-channel weights (radial MLP).
        senders, receivers: ``(n_edge,)``.
        paths: from :func:`tp_paths`.
        return_messages: also return the per-edge messages (for edge readouts).

    Returns:
        ``(n_node, irreps_out)`` with one chunk ``mul_a x ir_c`` per path (unsorted), and the
        messages ``(n_edge, irreps_out)`` if asked.
    """
    n_node = x.shape[0]
    x_chunks, sh_chunks = x.chunks, sh.chunks
    gathered, coupled = {}, {}
    irreps_out, node_chunks, edge_chunks = [], [], []
    offset = 0
    for a, b, ir_c in paths:
        mul, ir_a = x.irreps[a]
        ir_b = sh.irreps[b].ir
        w = weights[:, offset:offset + mul]  # (n_edge, mul)
        offset += mul
        if x_chunks[a] is None or sh_chunks[b] is None:  # a zero input: the path is zero
            irreps_out.append((mul, ir_c))
            node_chunks.append(None)
            edge_chunks.append(None)
            continue
        if a not in gathered:
            gathered[a] = x_chunks[a][senders]  # (n_edge, mul, d_a)
        if (ir_a.l, b, ir_c.l) not in coupled:
            cg = e3nn.clebsch_gordan(ir_a.l, ir_b.l, ir_c.l) * jnp.sqrt(ir_c.dim)
            y = sh_chunks[b][:, 0, :]  # (n_edge, d_b)
            coupled[ir_a.l, b, ir_c.l] = jnp.einsum("en,mnk->emk", y, cg.astype(y.dtype))
        m = jnp.einsum("eum,emk->euk", gathered[a], coupled[ir_a.l, b, ir_c.l])  # (n_edge, mul, d_c)
        m = m * w[:, :, None]
        irreps_out.append((mul, ir_c))
        node_chunks.append(jax.ops.segment_sum(m, receivers, n_node))  # (n_node, mul, d_c)
        edge_chunks.append(m if return_messages else None)
    if offset != weights.shape[-1]:
        raise ValueError(f"convolve: {weights.shape[-1]} weights for {offset} path channels")
    out = e3nn.from_chunks(irreps_out, node_chunks, (n_node,), x.dtype)
    if not return_messages:
        return out
    return out, e3nn.from_chunks(irreps_out, edge_chunks, (senders.shape[0],), x.dtype)


class Interaction(nn.Module):
    """One NequIP interaction block; see the module docstring for the five steps.

    Attributes:
        irreps_out: irreps of the block's output (after the gate, if any).
        avg_num_neighbours: the data's mean number of neighbours per atom; the summed
            messages are divided by it so that activations stay O(1) whatever the cutoff.
        n_species: number of species (for the species-dependent self-connection).
        radial_hidden: hidden widths of the radial MLP.
        gate: apply the gate non-linearity (False in the output block).
    """

    irreps_out: str
    avg_num_neighbours: float
    n_species: int
    radial_hidden: tuple[int, ...] = (64,)
    gate: bool = True
    return_messages: bool = False

    @nn.compact
    def __call__(self, x: e3nn.IrrepsArray, species, sh: e3nn.IrrepsArray, radial,
                 senders, receivers, edge_mask):
        """
        Args:
            x: node features, ``(n_node, irreps_in)``.
            species: ``(n_node,)`` species indices.
            sh: edge harmonics, ``(n_edge, sh_irreps)``.
            radial: radial basis, ``(n_edge, n_basis)``.
            senders, receivers: ``(n_edge,)`` node indices (message ``senders -> receivers``).
            edge_mask: ``(n_edge,)``, False for padding edges (their messages are dropped).

        Returns:
            ``(node features (n_node, irreps_out), messages)``; the messages
            ``(n_edge, irreps_paths)`` only with ``return_messages``, else None.
        """
        target = e3nn.Irreps(self.irreps_out)
        before_gate = gate_irreps(target) if self.gate else target
        wanted = {ir for _, ir in before_gate}

        h = e3nn.flax.Linear(x.irreps, name="linear_in")(x)  # (n_node, irreps_in)
        # only the paths ir_in x ir_sh -> ir_out with ir_out used below are computed
        paths = tp_paths(h.irreps, sh.irreps, wanted)
        n_weights = sum(h.irreps[a].mul for a, _, _ in paths)
        weights = e3nn.flax.MultiLayerPerceptron(
            self.radial_hidden + (n_weights,), act=jax.nn.silu,
            output_activation=False, name="radial_mlp")(radial)  # (n_edge, n_weights)
        weights = weights * edge_mask[:, None]
        summed = convolve(h, sh, weights, senders, receivers, paths,
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
        return out, messages  # (n_node, irreps_out), (n_edge, irreps_paths) or None
