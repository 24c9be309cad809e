"""Radial basis, edge harmonics, and the path-by-path convolution against e3nn's reference."""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from teachlib.layers import (convolve, edge_harmonics, gate_irreps, n_weights, radial_basis,
                             tp_paths)


def test_radial_basis_vanishes_smoothly_at_the_cutoff(x64):
    r = jnp.linspace(0.5, 6.0, 1101)
    basis = jax.jit(lambda x: radial_basis(x, n_basis=6, cutoff=5.0))(r)
    assert basis.shape == (1101, 6)
    np.testing.assert_array_equal(basis[r >= 5.0], 0.0)
    assert np.abs(basis[r < 4.0]).max() > 0.1
    # value, slope and curvature go to zero at the cutoff
    for order in (1, 2):
        f = lambda x: radial_basis(x, n_basis=6, cutoff=5.0)  # noqa: E731
        for _ in range(order):
            f = jax.jacfwd(f)
        np.testing.assert_allclose(jax.jit(f)(jnp.asarray(5.0 - 1e-6)), 0.0, atol=1e-8)


def test_edge_harmonics_are_equivariant(x64):
    from scipy.spatial.transform import Rotation
    vectors = jnp.asarray(np.random.default_rng(0).normal(size=(10, 3)))
    harmonics = jax.jit(lambda v: edge_harmonics(v, lmax=3).array)
    wigner_d = jax.jit(e3nn.Irreps.spherical_harmonics(3).D_from_matrix)
    for g in (Rotation.random(random_state=1).as_matrix(),
              -Rotation.random(random_state=2).as_matrix()):
        np.testing.assert_allclose(harmonics(vectors @ g.T), harmonics(vectors) @ wigner_d(g).T,
                                   atol=1e-12)


def test_gate_irreps_adds_one_gate_per_non_scalar():
    assert gate_irreps("8x0e + 4x1o + 2x2e") == e3nn.Irreps("8x0e + 6x0e + 4x1o + 2x2e")
    assert gate_irreps("8x0e") == e3nn.Irreps("8x0e")


def test_tp_paths_keep_only_wanted_outputs():
    paths = tp_paths("2x0e + 2x1o", "0e + 1o + 2e", {e3nn.Irrep("2e")})
    assert [(a, b, str(ir)) for a, b, ir in paths] == [(0, 2, "2e"), (1, 1, "2e")]


@pytest.mark.parametrize("per_channel", [True, False])
def test_convolve_matches_e3nn_tensor_product(x64, per_channel):
    rng = np.random.default_rng(3)
    n_node, n_neighbour = 5, 4
    x = e3nn.normal("3x0e + 2x1o + 2x2e", jax.random.PRNGKey(0), (n_node,))
    neighbours = jnp.asarray(rng.integers(0, n_node, (n_node, n_neighbour)))
    mask = jnp.asarray(rng.random((n_node, n_neighbour)) < 0.8)  # some empty slots
    sh = edge_harmonics(jnp.asarray(rng.normal(size=(n_node, n_neighbour, 3))), lmax=2)
    sh = e3nn.IrrepsArray(sh.irreps, sh.array * mask[..., None])
    wanted = {e3nn.Irrep(ir) for ir in ("0e", "1o", "1e", "2e", "3o")}
    paths = tp_paths(x.irreps, sh.irreps, wanted)
    weights = rng.normal(size=(n_node, n_neighbour, n_weights(x.irreps, paths, per_channel)))
    weights = jnp.asarray(weights) * mask[..., None]
    out, messages = jax.jit(lambda *a: convolve(*a, paths, per_channel=per_channel,
                                                return_messages=True))(x, sh, weights, neighbours)
    assert out.shape == (n_node, out.irreps.dim)
    assert messages.shape == (n_node, n_neighbour, out.irreps.dim)

    @jax.jit
    def reference(x, sh, weights):  # e3nn's tensor product, one path at a time, summed by hand
        offset, result = 0, []
        for k, (a, b, ir_c) in enumerate(paths):
            mul = x.irreps[a].mul
            xa = e3nn.IrrepsArray(e3nn.Irreps([x.irreps[a]]), x.chunks[a].reshape(n_node, -1))
            yb = e3nn.IrrepsArray(e3nn.Irreps([sh.irreps[b]]),
                                  sh.chunks[b].reshape(n_node, n_neighbour, -1))
            m = e3nn.tensor_product(xa[neighbours], yb, filter_ir_out=[ir_c])  # (n, s, mul x c)
            m = m.array.reshape(n_node, n_neighbour, mul, -1)
            if per_channel:
                m = m * weights[:, :, offset:offset + mul, None]
                offset += mul
            else:
                m = m * weights[:, :, k, None, None]
            result.append((m, m.sum(axis=1)))
        return result

    for k, (slot_ref, node_ref) in enumerate(reference(x, sh, weights)):
        np.testing.assert_allclose(messages.chunks[k], slot_ref, atol=1e-12)
        np.testing.assert_allclose(out.chunks[k], node_ref, atol=1e-12)
