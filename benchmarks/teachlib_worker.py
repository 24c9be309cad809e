"""One timed training run of teachlib on the benchmark's data and split.

Run by ``bench_peer.py`` with the book's virtual environment (``.venv``). The network is
:class:`teachlib.models.EquivariantGNN` (graphs from :mod:`teachlib.graphs`), the training
step is the book's one loop, :func:`teachlib.train.make_epoch_fn` (one jitted ``lax.scan``
over the epoch's mini-batches, as :func:`teachlib.train.fit` runs it), with Adam.

The recipe is the book's chapter-4 one: targets shifted by the per-species mean of the
training set, each label's squared error divided by its scale (the mean square of the shifted
training targets) so that both terms start near 1. Each snapshot is its own padded graph; a
batch of them is stacked and the network is ``vmap``-ed over it.

Timing: the clock is read around every epoch call, after ``jax.block_until_ready``. The first
call traces and compiles the epoch; later calls run the cached executable.

With ``--profile`` the worker times the pieces of a training step instead of training
(see :func:`profile`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as common  # noqa: E402

CLOCK = common.Clock()
LABELS = ("born_charges", "raman_tensors")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="snapshots (.npz from bench_peer.py)")
    parser.add_argument("--split", required=True, help="split (.json from bench_peer.py)")
    parser.add_argument("--out", required=True, help="where to write the result (.json)")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--cutoff", type=float, required=True)
    parser.add_argument("--hidden-irreps", required=True)
    parser.add_argument("--n-layers", type=int, default=3)
    parser.add_argument("--lmax", type=int, default=1)
    parser.add_argument("--radial-hidden", type=int, nargs="*", default=[8])
    parser.add_argument("--readout-mul", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true",
                        help="time the pieces of one training step instead of training")
    return parser.parse_args(argv)


def snapshots_as_atoms(data, ids):
    import ase

    structures = []
    for i in ids:
        atoms = ase.Atoms(numbers=data["numbers"][i], positions=data["positions"][i],
                          cell=data["cell"][i], pbc=True)
        for label in LABELS:
            atoms.arrays[label] = data[label][i]
        structures.append(atoms)
    return structures


def build(args, structures):
    """Model, stacked graphs (one padded graph per snapshot), offsets and label scales."""
    import jax
    import numpy as np

    from teachlib import graphs as tg
    from teachlib.models import response_model

    t0 = time.perf_counter()
    graphs = {name: [tg.atoms_to_graph(a, cutoff=args.cutoff, species=("Ba", "Ti", "O"),
                                       node_data=LABELS) for a in structures[name]]
              for name in structures}
    neighbour_s = time.perf_counter() - t0
    everything = [g for gs in graphs.values() for g in gs]
    padding = tg.padding_for(everything, 1)  # one shape for every snapshot

    train = graphs["train"]
    species = np.concatenate([g.species for g in train])
    offsets = {label: np.stack([np.concatenate([g.node_data[label] for g in train])[species == s]
                                .mean(0) for s in range(3)]) for label in LABELS}

    def stack(gs):
        padded = [tg.batch_graphs([g], **padding._asdict()) for g in gs]
        stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *padded)
        shifted = {}
        for label in LABELS:
            shift = offsets[label][stacked.species]  # (S, n_node, ...)
            mask = stacked.node_mask.reshape(stacked.node_mask.shape + (1,) * (shift.ndim - 2))
            shifted[label] = (stacked.node_data[label] - shift * mask).astype(np.float32)
        return stacked._replace(node_data=shifted,
                                positions=stacked.positions.astype(np.float32),
                                cell=stacked.cell.astype(np.float32),
                                shifts=stacked.shifts.astype(np.float32))

    stacked = {name: stack(gs) for name, gs in graphs.items()}
    t_pad = time.perf_counter() - t0 - neighbour_s
    mask = stacked["train"].node_mask
    scales = {label: float(np.sqrt(np.mean(stacked["train"].node_data[label][mask] ** 2)))
              for label in LABELS}
    model = response_model(avg_num_neighbours=round(tg.mean_num_neighbours(train), 1),
                           hidden_irreps=args.hidden_irreps, n_layers=args.n_layers,
                           lmax=args.lmax, cutoff=args.cutoff,
                           radial_hidden=tuple(args.radial_hidden), readout_mul=args.readout_mul)
    info = {"padding": padding._asdict(), "neighbour_list_s": neighbour_s, "padding_s": t_pad,
            "real_edges_mean": float(np.mean([g.num_edges for g in everything])),
            "avg_num_neighbours": model.avg_num_neighbours,
            "plan": {"hidden": [str(h) for h in model.plan().hidden],
                     "output": str(model.plan().output)}}
    return model, stacked, offsets, scales, info


def make_loss(model, scales):
    import jax
    import jax.numpy as jnp

    def loss(params, batch):
        out = jax.vmap(lambda g: model.apply(params, g))(batch)  # {label: (B, n_node, ...)}
        mask = batch.node_mask.astype(jnp.float32)  # (B, n_node)
        total, aux = 0.0, {}
        for label in LABELS:
            error = (out[label] - batch.node_data[label]).reshape(mask.shape + (-1,))
            count = mask.sum() * error.shape[-1]
            total += jnp.sum(mask[..., None] * error**2) / count / scales[label] ** 2
            aux[f"{label}_mae"] = jnp.sum(mask[..., None] * jnp.abs(error)) / count
        return total, aux

    return loss


def main(argv=None) -> None:
    args = parse_args(argv)
    result = {"side": "teachlib", "pid": os.getpid()}
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import teachlib
    from teachlib.models import count_parameters
    from teachlib.train import epoch_batches, make_epoch_fn

    result["versions"] = {"teachlib": getattr(teachlib, "__version__", "?"), "jax": jax.__version__}
    result["rss_after_imports_mib"] = common.current_rss_mib()
    result["x64"] = bool(jax.config.jax_enable_x64)

    result["data_start"] = CLOCK.now()
    data, split = common.load_inputs(args.data, args.split)
    structures = {name: snapshots_as_atoms(data, split[name]) for name in ("train", "val", "test")}
    model, stacked, offsets, scales, info = build(args, structures)
    result["build"] = info
    if args.profile:
        result["profile"] = profile(args, model, stacked, scales)
        result["rss_peak_mib"] = common.max_rss_mib()
        common.write_result(args.out, result)
        return

    result["fit_start"] = CLOCK.now()
    train = jax.tree.map(jnp.asarray, stacked["train"])
    first = jax.tree.map(lambda x: x[0], train)
    params = jax.jit(model.init)(jax.random.PRNGKey(args.seed), first)
    result["n_parameters"] = count_parameters(params)
    n_train = len(split["train"])
    steps = n_train // args.batch_size
    schedule = optax.warmup_cosine_decay_schedule(
        args.learning_rate / 10, args.learning_rate, warmup_steps=steps,
        decay_steps=max(args.epochs * steps, steps + 1), end_value=args.learning_rate / 100)
    optimizer = optax.adam(schedule)
    opt_state = optimizer.init(params)
    epoch_fn = make_epoch_fn(make_loss(model, scales), optimizer, True)

    epochs = []
    for epoch in range(args.epochs):
        batches = jnp.asarray(epoch_batches(n_train, args.batch_size, args.seed, epoch))
        start = CLOCK.now()
        params, opt_state, loss, aux = epoch_fn(params, opt_state, train, batches)
        jax.block_until_ready((params, opt_state, loss))
        epochs.append({"start": start, "end": CLOCK.now(), "steps": int(batches.shape[0]),
                       "loss": float(loss)})
    result["fit_wall_s"] = CLOCK.now() - result["fit_start"]
    result["epochs"] = epochs
    result["rss_peak_mib"] = common.max_rss_mib()

    test = jax.tree.map(jnp.asarray, stacked["test"])
    predict = jax.jit(jax.vmap(lambda g: model.apply(params, g)))
    out = predict(test)
    mask = np.asarray(test.node_mask)
    species = np.asarray(test.species)
    for label, key in (("born_charges", "test_bec_mae"), ("raman_tensors", "test_raman_mae")):
        predicted = np.asarray(out[label])[mask] + offsets[label][species[mask]]
        target = np.asarray(test.node_data[label])[mask] + offsets[label][species[mask]]
        result[key] = common.bec_mae(predicted, target)
    result["n_test_atoms"] = int(mask.sum())
    result["rss_peak_mib"] = common.max_rss_mib()
    result["wall_s"] = CLOCK.now()
    common.write_result(args.out, result)


def profile(args, model, stacked, scales, repeats: int = 7) -> dict:
    """Where one training step's time goes, measured piece by piece.

    Each piece is jitted and timed over ``repeats`` calls after its compilation (median).
    Tensor-product paths are timed one at a time with :func:`teachlib.layers.convolve`
    (gather of the senders' features, coupling with the harmonics, radial weights, sum into
    the receivers; forward and backward), vmapped over the batch as in the model.
    """
    import e3nn_jax as e3nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from teachlib import graphs as tg
    from teachlib import layers
    from teachlib.train import epoch_batches, make_epoch_fn

    def timed(fn, *call_args):
        jax.block_until_ready(fn(*call_args))  # compile
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(fn(*call_args))
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    B = args.batch_size
    train = jax.tree.map(jnp.asarray, stacked["train"])
    batch = jax.tree.map(lambda x: x[:B], train)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), jax.tree.map(lambda x: x[0], train))
    loss_fn = make_loss(model, scales)
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    @jax.jit
    def step(params, opt_state, batch):
        (loss, _), grads = grad_fn(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    parts = {}
    parts["train step (jit: forward, backward, Adam)"] = timed(step, params, opt_state, batch)
    parts["forward only (loss)"] = timed(jax.jit(loss_fn), params, batch)
    parts["forward + backward"] = timed(jax.jit(grad_fn), params, batch)

    n_train = train.positions.shape[0]
    epoch_fn = make_epoch_fn(loss_fn, optimizer, True)
    batches = jnp.asarray(epoch_batches(n_train, B, 0, 0))
    per_epoch = timed(epoch_fn, params, opt_state, train, batches)
    parts[f"step inside the epoch's lax.scan (make_epoch_fn, {batches.shape[0]} steps / epoch)"] = (
        per_epoch / batches.shape[0])
    recompiles = epoch_fn._cache_size() if hasattr(epoch_fn, "_cache_size") else None

    # the same batch as one flat graph (no vmap): does vmapping the network cost anything?
    padding = tg.Padding(**{k: v for k, v in zip(("n_node", "n_edge", "n_graph"),
                                                  (B * (train.positions.shape[1] - 1) + 1,
                                                   B * train.senders.shape[1], B + 1))})
    singles = [jax.tree.map(lambda x, k=k: np.asarray(x[k]), stacked["train"]) for k in range(B)]
    unpadded = [g._replace(
        positions=g.positions[g.node_mask], species=g.species[g.node_mask],
        cell=g.cell[g.graph_mask], senders=g.senders[g.edge_mask], receivers=g.receivers[g.edge_mask],
        shifts=g.shifts[g.edge_mask], node_graph=g.node_graph[g.node_mask],
        node_mask=g.node_mask[g.node_mask], edge_mask=g.edge_mask[g.edge_mask],
        graph_mask=g.graph_mask[g.graph_mask], n_node=g.n_node[g.graph_mask],
        node_data={k: v[g.node_mask] for k, v in g.node_data.items()}, graph_data={})
        for g in singles]
    flat = jax.tree.map(jnp.asarray, tg.batch_graphs(unpadded, **padding._asdict()))

    def flat_loss(params, graph):
        out = model.apply(params, graph)
        mask = graph.node_mask.astype(jnp.float32)
        total = 0.0
        for label in LABELS:
            error = (out[label] - graph.node_data[label]).reshape(mask.shape + (-1,))
            total += jnp.sum(mask[:, None] * error**2) / (mask.sum() * error.shape[-1]) / scales[label] ** 2
        return total

    parts["forward + backward, batch as one flat graph (no vmap)"] = timed(
        jax.jit(jax.value_and_grad(flat_loss)), params, flat)

    # edge featurisation: vectors, lengths, radial basis, harmonics (forward)
    def featurise(graph):
        vectors = jax.vmap(tg.edge_vectors)(graph)
        lengths = jnp.linalg.norm(vectors, axis=-1)
        basis = layers.radial_basis(lengths, n_basis=model.n_basis, cutoff=model.cutoff)
        sh = layers.edge_harmonics(vectors, lmax=model.lmax)
        return basis, sh.array

    parts["edge featurisation (vectors, radial basis, harmonics), forward"] = timed(
        jax.jit(featurise), batch)

    # tensor-product paths, one at a time, per block
    plan = model.plan()
    n_scalars = max(sum(mul for mul, ir in e3nn.Irreps(model.hidden_irreps) if ir.l == 0), 1)
    inputs = [e3nn.Irreps(f"{n_scalars}x0e")] + list(plan.hidden)
    targets = [(h, True) for h in plan.hidden] + [(plan.output, False)]
    sh_irreps = e3nn.Irreps.spherical_harmonics(model.lmax)
    key = jax.random.PRNGKey(1)
    n_node, n_edge = batch.positions.shape[1], batch.senders.shape[1]
    sh = jax.random.normal(key, (B, n_edge, sh_irreps.dim))
    path_rows, tp_total = [], 0.0
    for k, (irreps_in, (target, gated)) in enumerate(zip(inputs, targets)):
        wanted = {ir for _, ir in (layers.gate_irreps(target) if gated else target)}
        paths = layers.tp_paths(irreps_in, sh_irreps, wanted)
        x = jax.random.normal(key, (B, n_node, irreps_in.dim))
        for a, b, ir_c in paths:
            mul = irreps_in[a].mul
            w = jax.random.normal(key, (B, n_edge, mul))

            def one(x, w, sh, senders, receivers, a=a, b=b, ir_c=ir_c, irreps_in=irreps_in):
                out = layers.convolve(e3nn.IrrepsArray(irreps_in, x), e3nn.IrrepsArray(sh_irreps, sh),
                                      w, senders, receivers, [(a, b, ir_c)])
                return jnp.sum(out.array ** 2)

            fn = jax.jit(jax.grad(lambda x, w: jnp.sum(jax.vmap(one)(x, w, sh, batch.senders,
                                                                     batch.receivers)), (0, 1)))
            seconds = timed(fn, x, w)
            tp_total += seconds
            path_rows.append({"block": k, "path": f"{mul}x{irreps_in[a].ir} ⊗ {sh_irreps[b].ir} → {ir_c}",
                              "seconds": seconds})
    parts["all tensor-product paths, each timed alone (forward + backward)"] = tp_total
    path_rows.sort(key=lambda r: -r["seconds"])
    step_s = parts["train step (jit: forward, backward, Adam)"]
    top = ", ".join(f"block {r['block']} {r['path']} {100 * r['seconds'] / step_s:.0f} %"
                    for r in path_rows[:5])

    jaxpr = str(jax.make_jaxpr(step)(params, opt_state, batch))
    real_edges = float(np.asarray(stacked["train"].edge_mask).mean())
    real_nodes = float(np.asarray(stacked["train"].node_mask).mean())
    notes = [
        f"Tensor-product paths: {len(path_rows)} in {len(inputs)} blocks; the five most "
        f"expensive (forward + backward, share of a step): {top}.",
        f"Padding: {100 * real_edges:.1f} % of the padded edges and {100 * real_nodes:.1f} % of "
        "the padded nodes are real; neighbour lists are built once, before training, not per step.",
        f"float64 in the step's jaxpr: {'yes' if 'f64' in jaxpr else 'none'}; compiled epoch "
        f"functions after repeated calls: {recompiles} (1 = no recompilation).",
    ]
    return {"batch_size": B, "repeats": repeats, "parts": parts, "paths": path_rows,
            "notes": notes, "real_edge_fraction": real_edges, "real_node_fraction": real_nodes,
            "float64_in_step": "f64" in jaxpr, "compiled_epoch_functions": recompiles}


if __name__ == "__main__":
    main()
