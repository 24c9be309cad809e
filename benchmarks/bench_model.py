"""Benchmark: compile time and forward+backward time per BaTiO3 snapshot of the chapter-4 model.

A script, not a test. It builds the default double-headed model of chapter 4
(:func:`teachlib.models.response_model`: Born charges and Raman tensors per atom), pads the 50
BaTiO3 snapshots to one shape, and times

* ``init_s``: initialising the parameters (compile and run, once);
* ``compile_s``: compiling one training step's ``jax.value_and_grad`` of an MSE loss on both
  heads (what a training loop compiles);
* ``step_s``: the median wall time of that step over ``--repeats`` calls, divided by the
  batch size (per snapshot), and ``step_cpu_s`` the same in CPU time of this process (all
  threads): on a shared machine CPU time is the steadier number.

With ``--batch-size 1`` a step reads one padded graph; with more, a stack of graphs as
:func:`teachlib.train.fit` hands them out, merged into one graph inside the step
(:func:`teachlib.graphs.merge_stacked`; a ``jax.vmap`` over the stack gives the same numbers
but costs almost twice as much for a single graph on a CPU).

Run it on an otherwise idle machine, with ``nice`` if others share it::

    TEACHLIB_DATA=../shared/data/bto .venv/bin/python benchmarks/bench_model.py
    .venv/bin/python benchmarks/bench_model.py --per-path --batch-size 4 --json out.json

Everything is float32 (JAX's default), shapes are fixed (one compilation).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from teachlib.data import load_batio3
from teachlib.graphs import (atoms_to_graph, mean_num_neighbours, merge_stacked, padding_for,
                             stack_graphs)
from teachlib.models import DEFAULT_HIDDEN_IRREPS, count_parameters, init_params, response_model

LABELS = ("born_charges", "raman_tensors")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", default=DEFAULT_HIDDEN_IRREPS, help="hidden irreps")
    parser.add_argument("--layers", type=int, default=3, help="interaction blocks")
    parser.add_argument("--lmax", type=int, default=2, help="highest l of the edge harmonics")
    parser.add_argument("--cutoff", type=float, default=5.0, help="neighbour cutoff, Å")
    parser.add_argument("--radial-hidden", type=int, default=32, help="radial MLP width")
    parser.add_argument("--per-path", action="store_true",
                        help="radial weights per path only (default: per path and channel)")
    parser.add_argument("--batch-size", type=int, default=1, help="snapshots per step")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps")
    parser.add_argument("--json", help="also write the results to this file")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse(argv)
    snapshots = load_batio3()
    model = response_model(avg_num_neighbours=1.0, hidden_irreps=args.hidden,
                           n_layers=args.layers, lmax=args.lmax, cutoff=args.cutoff,
                           radial_hidden=(args.radial_hidden,), per_channel=not args.per_path)
    start = time.perf_counter()
    graphs = [atoms_to_graph(a, cutoff=model.cutoff, species=model.species, node_data=LABELS)
              for a in snapshots]
    padding = padding_for(graphs, 1)  # one snapshot per graph; batches are stacked below
    batches = model.batch(snapshots, padding=padding, node_data=LABELS)
    graphs_s = time.perf_counter() - start
    model = model.clone(avg_num_neighbours=mean_num_neighbours(batches))
    if args.batch_size == 1:  # one padded graph per step
        steps = batches
    else:  # a stack of graphs per step (as teachlib.train.fit batches), merged into one graph
        data = stack_graphs(batches)  # (50, ...) per array
        steps = [jax.tree_util.tree_map(lambda x, k=k: x[k:k + args.batch_size], data)
                 for k in range(0, len(batches) - args.batch_size + 1, args.batch_size)]

    start = time.perf_counter()
    params = init_params(model, batches[0], 0)
    jax.block_until_ready(params)
    init_s = time.perf_counter() - start

    def loss(params, batch):  # MSE on both heads over the real atoms, as a training loop would
        if args.batch_size > 1:
            batch = merge_stacked(batch)  # cheaper than jax.vmap over the stack
        out = model.apply(params, batch)
        mask = batch.node_mask[..., None, None]
        born = (out["born_charges"] - batch.node_data["born_charges"]) ** 2
        raman = (out["raman_tensors"] - batch.node_data["raman_tensors"]) ** 2
        return (jnp.sum(mask * born) / 9 + jnp.sum(mask[..., None] * raman) / 27) / mask.sum()

    start = time.perf_counter()
    step = jax.jit(jax.value_and_grad(loss)).lower(params, steps[0]).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(step(params, steps[0]))  # warm-up

    wall, cpu = [], []
    for k in range(args.repeats):
        batch = steps[k % len(steps)]
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(step(params, batch))
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)

    result = {
        "model": {"hidden_irreps": args.hidden, "n_layers": args.layers, "lmax": args.lmax,
                  "cutoff": args.cutoff, "radial_hidden": args.radial_hidden,
                  "per_channel": not args.per_path, "n_parameters": count_parameters(params),
                  "blocks": [str(h) for h in model.plan().hidden] + [str(model.plan().output)]},
        "data": {"atoms": int(batches[0].node_mask.sum()),
                 "mean_neighbours": round(mean_num_neighbours(batches), 2),
                 "padding": padding._asdict(), "batch_size": args.batch_size},
        "graphs_s": round(graphs_s, 3),
        "init_s": round(init_s, 2),
        "compile_s": round(compile_s, 2),
        "step_s": round(float(np.median(wall)) / args.batch_size, 4),
        "step_cpu_s": round(float(np.median(cpu)) / args.batch_size, 4),
        "machine": {"cpus": os.cpu_count(), "devices": [str(d) for d in jax.devices()],
                    "jax": jax.__version__, "python": platform.python_version(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
