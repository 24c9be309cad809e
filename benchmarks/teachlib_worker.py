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
    parser.add_argument("--learning-rate", type=float, default=2e-2,
                        help="peak of the warm-up + cosine schedule (default 2e-2: the same "
                             "mean learning rate over the run as the peer's constant 1e-2)")
    parser.add_argument("--bec-weight", type=float, default=1.0,
                        help="weight of the Born-charge term against the Raman term, both "
                             "measured in label scales (the peer's loss 1000·MSE(Z*) + MSE(R) is "
                             "about 48 in these units)")
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


def make_loss(model, scales, weights=None):
    import jax
    import jax.numpy as jnp

    def loss(params, batch):
        out = jax.vmap(lambda g: model.apply(params, g))(batch)  # {label: (B, n_node, ...)}
        mask = batch.node_mask.astype(jnp.float32)  # (B, n_node)
        total, aux = 0.0, {}
        for label in LABELS:
            error = (out[label] - batch.node_data[label]).reshape(mask.shape + (-1,))
            count = mask.sum() * error.shape[-1]
            weight = (weights or {}).get(label, 1.0)
            total += weight * jnp.sum(mask[..., None] * error**2) / count / scales[label] ** 2
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
    epoch_fn = make_epoch_fn(make_loss(model, scales, {"born_charges": args.bec_weight}),
                             optimizer, True)

    epochs = []
    epoch_key = jax.random.PRNGKey(args.seed)  # make_epoch_fn's per-step keys (unused here)
    for epoch in range(args.epochs):
        batches = jnp.asarray(epoch_batches(n_train, args.batch_size, args.seed, epoch))
        start = CLOCK.now()
        params, opt_state, loss, aux = epoch_fn(params, opt_state, train, batches,
                                                epoch_key, jnp.asarray(epoch))
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


def interleaved_medians(calls: dict, repeats: int) -> dict:
    """Median wall time of each ``name: (fn, args)``, timed in rounds (one call of each per
    round, after one compiling call each), so that changing background load hits all alike."""
    import jax
    import numpy as np

    for fn, call_args in calls.values():
        jax.block_until_ready(fn(*call_args))
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (fn, call_args) in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*call_args))
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


OP_CATEGORIES = [  # (pattern in the XLA op's name, category); the first match wins
    (r"eum,emk->euk", "tensor product: coupling x_a[j] · (Y(r̂_ij)·CG), einsum per path"),
    (r"en,mnk->emk", "tensor product: harmonics · Clebsch-Gordan"),
    (r"interaction_\d+/(.*/)?(gather|scatter-add)", "gathers / scatter-adds between edges and nodes"),
    (r"interaction_\d+/radial_mlp", "radial MLPs (per edge)"),
    (r"interaction_\d+/(linear_in|linear_out)", "equivariant linears (linear_in, linear_out)"),
    (r"interaction_\d+/self_connection", "species-indexed self-connection"),
    (r"interaction_\d+/\.\.\.ui , \.\.\.uj , ijk", "gates"),
    (r"interaction_\d+/", "other element-wise work in the blocks (radial weights × messages, masks, /avg)"),
    (r"head_", "readout heads"),
    (r"EquivariantGNN", "embedding, edge vectors, radial basis, harmonics, decoding"),
    (r"", "loss and Adam (outside the network)"),
]


def trace_breakdown(fn, call_args, calls: int = 3) -> dict:
    """Time of each XLA op of ``fn`` from a ``jax.profiler`` trace, summed by category.

    The trace names every executed op (a "thunk") by its HLO instruction; the compiled HLO
    gives each instruction's ``op_name`` (the JAX source path: module, primitive, and
    ``transpose(...)`` for the backward pass), which :data:`OP_CATEGORIES` classifies.
    Ops can overlap on several threads, so shares are of the summed op time.
    """
    import collections
    import glob
    import gzip
    import json
    import re
    import tempfile

    import jax

    hlo = fn.lower(*call_args).compile().as_text()
    op_names = dict(re.findall(r'^\s*%?([\w.\-]+) = [^\n]*?metadata=\{op_name="([^"]*)"', hlo, re.M))
    jax.block_until_ready(fn(*call_args))
    folder = tempfile.mkdtemp(prefix="teachlib-trace-")
    with jax.profiler.trace(folder, create_perfetto_trace=True):
        for _ in range(calls):
            jax.block_until_ready(fn(*call_args))
    [path] = glob.glob(f"{folder}/**/perfetto_trace.json.gz", recursive=True)
    events = json.load(gzip.open(path))
    events = events["traceEvents"] if isinstance(events, dict) else events
    by_category = collections.defaultdict(float)
    by_direction = collections.defaultdict(float)
    by_primitive = collections.defaultdict(float)  # within "other element-wise work"
    for event in events:
        name = event.get("name", "")
        if event.get("ph") != "X" or name not in op_names:
            continue
        seconds = event.get("dur", 0) * 1e-6 / calls
        op = op_names[name]
        category = next(c for pattern, c in OP_CATEGORIES if re.search(pattern, op))
        direction = "backward" if "transpose(" in op else "forward" if "EquivariantGNN" in op else "other"
        by_category[category] += seconds
        by_direction[direction] += seconds
        if category.startswith("other element-wise"):
            primitive = op.rsplit("/", 1)[-1]
            by_primitive[("backward " if direction == "backward" else "forward ") + primitive] += seconds
    total = sum(by_category.values())
    return {"total_op_s": total, "categories": dict(sorted(by_category.items(), key=lambda kv: -kv[1])),
            "directions": dict(by_direction), "calls": calls,
            "other_elementwise_by_primitive": dict(sorted(by_primitive.items(), key=lambda kv: -kv[1])[:8])}


def profile(args, model, stacked, scales, repeats: int = 9) -> dict:
    """Where one training step's time goes, measured piece by piece.

    Every piece is jitted and timed with :func:`interleaved_medians`. Tensor-product paths are
    timed one at a time with :func:`teachlib.layers.convolve` (gather of the senders'
    features, coupling with the harmonics, radial weights, sum into the receivers; forward and
    backward), vmapped over the batch as in the model. The "anatomy" times the three kinds of
    work of one path separately, and an alternative way to do the coupling.
    """
    import e3nn_jax as e3nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from teachlib import graphs as tg
    from teachlib import layers
    from teachlib.train import epoch_batches, make_epoch_fn

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

    n_train = train.positions.shape[0]
    epoch_fn = make_epoch_fn(loss_fn, optimizer, True)
    batches = jnp.asarray(epoch_batches(n_train, B, 0, 0))
    n_steps = int(batches.shape[0])

    # the same batch as one flat graph (no vmap): does vmapping the network cost anything?
    singles = [jax.tree.map(lambda x, k=k: np.asarray(x[k]), stacked["train"]) for k in range(B)]
    unpadded = [g._replace(
        positions=g.positions[g.node_mask], species=g.species[g.node_mask],
        cell=g.cell[g.graph_mask], senders=g.senders[g.edge_mask], receivers=g.receivers[g.edge_mask],
        shifts=g.shifts[g.edge_mask], node_graph=g.node_graph[g.node_mask],
        node_mask=g.node_mask[g.node_mask], edge_mask=g.edge_mask[g.edge_mask],
        graph_mask=g.graph_mask[g.graph_mask], n_node=g.n_node[g.graph_mask],
        node_data={k: v[g.node_mask] for k, v in g.node_data.items()}, graph_data={})
        for g in singles]
    flat = jax.tree.map(jnp.asarray, tg.batch_graphs(
        unpadded, n_node=B * (train.positions.shape[1] - 1) + 1,
        n_edge=B * train.senders.shape[1], n_graph=B + 1))

    def flat_loss(params, graph):
        out = model.apply(params, graph)
        mask = graph.node_mask.astype(jnp.float32)
        total = 0.0
        for label in LABELS:
            error = (out[label] - graph.node_data[label]).reshape(mask.shape + (-1,))
            total += jnp.sum(mask[:, None] * error**2) / (mask.sum() * error.shape[-1]) / scales[label] ** 2
        return total

    def featurise(graph):  # edge vectors, lengths, radial basis, harmonics
        vectors = jax.vmap(tg.edge_vectors)(graph)
        lengths = jnp.linalg.norm(vectors, axis=-1)
        basis = layers.radial_basis(lengths, n_basis=model.n_basis, cutoff=model.cutoff)
        return basis, layers.edge_harmonics(vectors, lmax=model.lmax).array

    STEP = "train step (jit: forward, backward, Adam)"
    SCAN = f"one step of the epoch's lax.scan (make_epoch_fn, epoch / {n_steps})"
    calls = {
        STEP: (step, (params, opt_state, batch)),
        SCAN: (epoch_fn, (params, opt_state, train, batches, jax.random.PRNGKey(0),
                          jnp.asarray(0))),
        "forward only (loss)": (jax.jit(loss_fn), (params, batch)),
        "forward + backward": (jax.jit(grad_fn), (params, batch)),
        "forward + backward, batch as one flat graph (no vmap)":
            (jax.jit(jax.value_and_grad(flat_loss)), (params, flat)),
        "edge featurisation (vectors, radial basis, harmonics), forward": (jax.jit(featurise), (batch,)),
    }
    parts = interleaved_medians(calls, repeats)
    parts[SCAN] /= n_steps
    recompiles = epoch_fn._cache_size() if hasattr(epoch_fn, "_cache_size") else None

    # tensor-product paths, one at a time, per block
    plan = model.plan()
    n_scalars = max(sum(mul for mul, ir in e3nn.Irreps(model.hidden_irreps) if ir.l == 0), 1)
    inputs = [e3nn.Irreps(f"{n_scalars}x0e")] + list(plan.hidden)
    targets = [(h, True) for h in plan.hidden] + [(plan.output, False)]
    sh_irreps = e3nn.Irreps.spherical_harmonics(model.lmax)
    key = jax.random.PRNGKey(1)
    n_node, n_edge = batch.positions.shape[1], batch.senders.shape[1]
    senders, receivers = batch.senders, batch.receivers
    sh = jax.random.normal(key, (B, n_edge, sh_irreps.dim))
    path_calls, path_info = {}, {}
    for k, (irreps_in, (target, gated)) in enumerate(zip(inputs, targets)):
        wanted = {ir for _, ir in (layers.gate_irreps(target) if gated else target)}
        x = jax.random.normal(key, (B, n_node, irreps_in.dim))
        for a, b, ir_c in layers.tp_paths(irreps_in, sh_irreps, wanted):
            mul = irreps_in[a].mul
            w = jax.random.normal(key, (B, n_edge, mul))

            def one(x, w, sh, senders, receivers, a=a, b=b, ir_c=ir_c, irreps_in=irreps_in):
                out = layers.convolve(e3nn.IrrepsArray(irreps_in, x), e3nn.IrrepsArray(sh_irreps, sh),
                                      w, senders, receivers, [(a, b, ir_c)])
                return jnp.sum(out.array ** 2)

            fn = jax.jit(jax.grad(lambda x, w, one=one: jnp.sum(
                jax.vmap(one)(x, w, sh, senders, receivers)), (0, 1)))
            name = f"block {k}: {mul}x{irreps_in[a].ir} ⊗ {sh_irreps[b].ir} → {ir_c}"
            path_calls[name] = (fn, (x, w))
            path_info[name] = k
    path_times = interleaved_medians(path_calls, max(3, repeats // 2))
    path_rows = sorted(({"block": path_info[n], "path": n.split(": ", 1)[1], "seconds": t}
                        for n, t in path_times.items()), key=lambda r: -r["seconds"])
    parts["all tensor-product paths, each timed alone (forward + backward)"] = sum(path_times.values())

    # anatomy of one 16x1o ⊗ 1o → 2e path: gather, coupling (two ways), sum into receivers
    mul, d_a, d_c = 16, 3, 5
    xa = jax.random.normal(key, (B, n_node, mul, d_a))
    gathered = jax.random.normal(key, (B, n_edge, mul, d_a))
    coupling = jax.random.normal(key, (B, n_edge, d_a, d_c))
    messages = jax.random.normal(key, (B, n_edge, mul, d_c))

    def gather(x):
        return jnp.sum(jax.vmap(lambda x, s: x[s])(x, senders) ** 2)

    def couple_einsum(g):  # what convolve does: a batched (mul x d_a) @ (d_a x d_c) per edge
        return jnp.sum(jnp.einsum("beum,bemk->beuk", g, coupling) ** 2)

    def couple_broadcast(g):  # the same numbers as a broadcast multiply and a sum over m
        return jnp.sum(jnp.sum(g[..., :, None] * coupling[..., None, :, :], axis=-2) ** 2)

    def scatter(m, hint):
        return jnp.sum(jax.vmap(lambda m, r: jax.ops.segment_sum(
            m, r, n_node, indices_are_sorted=hint))(m, receivers) ** 2)

    # all three outputs of 16x1o ⊗ 1o (0e, 1e, 2e): per path as convolve does, or at once as
    # one outer product x_a[j] ⊗ Y(r̂_ij) (9 numbers per channel) times the stacked CG (9 x 9)
    y = jax.random.normal(key, (B, n_edge, 3))
    cgs = [e3nn.clebsch_gordan(1, 1, l) * np.sqrt(2 * l + 1) for l in (0, 1, 2)]  # (3, 3, 2l+1)
    stacked_cg = jnp.asarray(np.concatenate(cgs, axis=-1).reshape(9, 9))

    def per_path(g):
        total = 0.0
        for cg in cgs:
            coupled = jnp.einsum("ben,mnk->bemk", y, jnp.asarray(cg))
            total += jnp.sum(jnp.einsum("beum,bemk->beuk", g, coupled) ** 2)
        return total

    def one_matmul(g):
        outer = (g[..., :, None] * y[:, :, None, None, :]).reshape(B, n_edge, mul, 9)
        return jnp.sum((outer @ stacked_cg) ** 2)

    anatomy = interleaved_medians({
        "16x1o ⊗ 1o → 0e, 1e, 2e as three einsum paths (as convolve does)":
            (jax.jit(jax.grad(per_path)), (gathered,)),
        "the same as one outer product and one matmul with the stacked CG (9 x 9)":
            (jax.jit(jax.grad(one_matmul)), (gathered,)),
        "gather x[senders]": (jax.jit(jax.grad(gather)), (xa,)),
        "coupling as einsum (as convolve does)": (jax.jit(jax.grad(couple_einsum)), (gathered,)),
        "coupling as broadcast-multiply-sum": (jax.jit(jax.grad(couple_broadcast)), (gathered,)),
        "segment_sum into receivers": (jax.jit(jax.grad(lambda m: scatter(m, False))), (messages,)),
        "segment_sum, indices_are_sorted=True": (jax.jit(jax.grad(lambda m: scatter(m, True))), (messages,)),
    }, repeats)
    receivers_sorted = bool(np.all(np.diff(np.asarray(receivers), axis=1) >= 0))

    try:
        ops = trace_breakdown(step, (params, opt_state, batch))
    except Exception as error:  # the profiler is optional diagnostics
        ops = {"error": repr(error)}

    step_s = parts[STEP]
    jaxpr = str(jax.make_jaxpr(step)(params, opt_state, batch))
    real_edges = float(np.asarray(stacked["train"].edge_mask).mean())
    real_nodes = float(np.asarray(stacked["train"].node_mask).mean())
    top = ", ".join(f"block {r['block']} {r['path']} {100 * r['seconds'] / step_s:.0f} %"
                    for r in path_rows[:5])
    notes = [
        f"Tensor-product paths: {len(path_rows)} in {len(inputs)} blocks; the five most "
        f"expensive (forward + backward, each timed alone, share of a step): {top}.",
        "Anatomy of the 16x1o ⊗ 1o paths (forward + backward, ms): " + "; ".join(
            f"{name} {1e3 * t:.1f}" for name, t in anatomy.items())
        + f". Receivers are sorted within each snapshot: {receivers_sorted}.",
        f"Padding: {100 * real_edges:.1f} % of the padded edges and {100 * real_nodes:.1f} % of "
        "the padded nodes are real; neighbour lists are built once, before training, not per step.",
        f"float64 in the step's jaxpr: {'yes' if 'f64' in jaxpr else 'none'}; compiled epoch "
        f"functions after repeated calls: {recompiles} (1 = no recompilation).",
    ]
    return {"batch_size": B, "repeats": repeats, "parts": parts, "paths": path_rows,
            "anatomy": anatomy, "receivers_sorted": receivers_sorted, "ops": ops,
            "notes": notes, "real_edge_fraction": real_edges, "real_node_fraction": real_nodes,
            "float64_in_step": "f64" in jaxpr, "compiled_epoch_functions": recompiles}


if __name__ == "__main__":
    main()
