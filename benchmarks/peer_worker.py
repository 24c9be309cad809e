"""One timed training run of the peer implementation (e3response + tensorial + reax).

Run by ``bench_peer.py`` with the peer's own virtual environment (``benchmarks/.peer-venv``);
never imports teachlib. It keeps the peer's own machinery end to end:

* the model, loss and optimiser come from the peer's BaTiO3 example configuration,
  ``e3response/examples/bto/model/nequip_direct.yaml`` as installed, instantiated by hydra;
  the only change is the hidden irreps (``--hidden-irreps``: the example's have no l = 2);
* the data go through the peer's own data module (``e3response.data.BtoDataModule``: its
  ``graph_from_ase`` graphs, padding and ``GraphLoader``), with only the split replaced by the
  benchmark's (the module's own ``setup`` draws a random 80/10/10 split of the archive);
* ``tensorial.reaxkit.train.train`` runs it: the peer's ``from_data`` statistics
  (species, mean neighbour count), ``reax.Trainer.fit`` and its per-batch training step.

Timing: a reax listener reads the clock at the start and end of every training epoch (with
``jax.block_until_ready`` on the parameters at the end, so queued work is counted). Validation
is switched off during the timed epochs (``check_val_every_n_epoch`` past the last epoch);
the test MAE is computed once at the end from the peer model's predictions.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as common  # noqa: E402

CLOCK = common.Clock()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="snapshots (.npz from bench_peer.py)")
    parser.add_argument("--split", required=True, help="split (.json from bench_peer.py)")
    parser.add_argument("--out", required=True, help="where to write the result (.json)")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--cutoff", type=float, required=True)
    parser.add_argument("--hidden-irreps", required=True)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def snapshots_as_atoms(data, ids):
    """ase.Atoms of the snapshots ``ids``, with the labels where the peer reads them."""
    import ase

    structures = []
    for i in ids:
        atoms = ase.Atoms(numbers=data["numbers"][i], positions=data["positions"][i],
                          cell=data["cell"][i], pbc=True)
        atoms.arrays["born_charges"] = data["born_charges"][i]
        atoms.arrays["raman_tensors"] = data["raman_tensors"][i]
        structures.append(atoms)
    return structures


def make_datamodule_class():
    """``BtoDataModule`` with the benchmark's split instead of its own random one.

    ``setup`` below is the peer's ``BtoDataModule.setup`` with the archive reading and the
    random split replaced by the given lists; graphs, padding and loaders are the peer's.
    """
    import functools

    from e3response.data import BtoDataModule
    from tensorial import gcnn

    class SplitBtoDataModule(BtoDataModule):
        def __init__(self, *, structures: dict, **kwargs):
            super().__init__(**kwargs)
            self._structures = structures

        def setup(self, stage, /):
            if self.data_train is not None:
                return
            to_graph = functools.partial(
                gcnn.atomic.graph_from_ase, r_max=self._rmax,
                atom_include_keys=("numbers", "forces", "raman_tensors", "born_charges"),
                global_include_keys=[])
            graphs = {name: list(map(to_graph, self._structures[name]))
                      for name in ("train", "val", "test")}
            paddings = [gcnn.data.GraphBatcher.calculate_padding(
                graphs[name], batch_size=self._batch_size, with_shuffle=True)
                for name in ("train", "val", "test")]
            self._max_padding = gcnn.data.max_padding(*paddings)
            self.data_train, self.data_val, self.data_test = (
                graphs["train"], graphs["val"], graphs["test"])

    return SplitBtoDataModule


def make_timer_class():
    import jax
    import reax

    class EpochTimer(reax.TrainerListener):
        """Clock marks at the start and end of each training epoch."""

        def __init__(self):
            self.epochs = []  # (start, end, n_batches) in seconds since the worker started
            self._start = None
            self._batches = 0

        def on_train_epoch_start(self, trainer, stage, /):
            self._start, self._batches = CLOCK.now(), 0

        def on_train_batch_end(self, trainer, stage, outputs, batch, batch_idx, /):
            self._batches += 1

        def on_train_epoch_end(self, trainer, stage, /):
            jax.block_until_ready(stage.module.parameters())
            self.epochs.append((self._start, CLOCK.now(), self._batches))

    return EpochTimer


def model_config(hidden_irreps: str):
    """The peer's example model configuration with ``hidden_irreps`` in its hidden layers."""
    import omegaconf

    path = resources.files("e3response") / "examples" / "bto" / "model" / "nequip_direct.yaml"
    cfg = omegaconf.OmegaConf.load(str(path))
    replaced = 0
    for layer in cfg.model.layers:
        target = layer["_target_"]
        if target == "tensorial.gcnn.NequipLayer" or (
                target == "tensorial.gcnn.NodewiseLinear" and layer.get("field") == "attributes"):
            layer["irreps_out"] = hidden_irreps
            replaced += 1
    if replaced != 4:  # the embedding linear and three NequIP layers
        raise RuntimeError(f"expected 4 hidden layers in {path}, found {replaced}: the peer's "
                           "example changed; update peer_worker.model_config")
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    result = {"side": "peer", "pid": os.getpid()}
    import jax
    import numpy as np
    import omegaconf
    import reax
    from tensorial import reaxkit

    import e3response
    import tensorial

    result["versions"] = {"e3response": e3response.__version__ if hasattr(e3response, "__version__") else "?",
                          "tensorial": getattr(tensorial, "__version__", "?"),
                          "reax": getattr(reax, "__version__", "?"), "jax": jax.__version__}
    result["rss_after_imports_mib"] = common.current_rss_mib()
    result["x64"] = bool(jax.config.jax_enable_x64)
    logging.getLogger().setLevel(logging.WARNING)

    result["data_start"] = CLOCK.now()
    data, split = common.load_inputs(args.data, args.split)
    structures = {name: snapshots_as_atoms(data, split[name]) for name in ("train", "val", "test")}
    datamodule_class = make_datamodule_class()
    timer = make_timer_class()()

    model_cfg = model_config(args.hidden_irreps)
    cfg = omegaconf.OmegaConf.create({
        "seed": args.seed,
        "r_max": args.cutoff,
        "from_data": {"n_elements": "atomic/num_species",
                      "atomic_numbers": "atomic/all_atomic_numbers",
                      "avg_num_neighbours": "atomic/avg_num_neighbours"},
        "trainer": {"_target_": "reax.Trainer", "accelerator": "cpu", "devices": 1,
                    "deterministic": False, "enable_checkpointing": False,
                    "enable_progress_bar": False, "enable_model_summary": False},
        "data": {"_target_": "builtins.dict"},  # replaced below (needs live objects)
        "train": {"min_epochs": 1, "max_epochs": args.epochs,
                  "check_val_every_n_epoch": args.epochs + 1, "num_sanity_val_steps": 0},
        "test": None,
    })
    cfg.model = model_cfg
    workdir = tempfile.mkdtemp(prefix="peer-bench-")
    os.chdir(workdir)  # the trainer writes its logs/checkpoints under the working directory

    # tensorial.reaxkit.train.train, step by step, with live listener and data module objects
    import hydra
    from tensorial.reaxkit import from_data

    reax.seed_everything(args.seed, workers=True)
    trainer = hydra.utils.instantiate(cfg.trainer, listeners=[timer], logger=False,
                                      default_root_dir=workdir)
    datamodule = datamodule_class(structures=structures, r_max=args.cutoff,
                                  data_dir=workdir, batch_size=args.batch_size,
                                  tensors=("raman_tensors", "born_charges"))
    stage = trainer.run(from_data.FromData(cfg.from_data, trainer.engine, rngs=trainer.rngs,
                                           datamodule=datamodule))
    result["from_data"] = {k: (v.tolist() if hasattr(v, "tolist") else v)
                           for k, v in omegaconf.OmegaConf.to_container(cfg.from_data).items()}
    model = hydra.utils.instantiate(cfg.model, _convert_="object")
    result["fit_start"] = CLOCK.now()
    trainer.fit(model, datamodule=datamodule, **cfg.train)
    result["fit_wall_s"] = CLOCK.now() - result["fit_start"]
    result["epochs"] = [{"start": s, "end": e, "steps": n} for s, e, n in timer.epochs]
    result["rss_peak_mib"] = common.max_rss_mib()

    params = model.parameters()
    result["n_parameters"] = int(sum(np.size(p) for p in jax.tree.leaves(params)))
    apply = jax.jit(model._model.apply)
    predicted, target = {"born_charges": [], "raman_tensors": []}, {"born_charges": [], "raman_tensors": []}
    for batch in datamodule.test_dataloader():
        inputs = batch[0] if isinstance(batch, tuple) else batch
        out = apply(params, inputs)
        mask = np.asarray(inputs.nodes["mask"]).astype(bool).reshape(-1)
        for label in predicted:
            predicted[label].append(np.asarray(out.nodes[f"predicted_{label}"])[mask])
            target[label].append(np.asarray(inputs.nodes[label])[mask])
    result["test_bec_mae"] = common.bec_mae(np.concatenate(predicted["born_charges"]),
                                            np.concatenate(target["born_charges"]))
    result["test_raman_mae"] = common.bec_mae(np.concatenate(predicted["raman_tensors"]),
                                              np.concatenate(target["raman_tensors"]))
    result["n_test_atoms"] = int(sum(len(p) for p in predicted["born_charges"]))
    result["rss_peak_mib"] = common.max_rss_mib()
    result["wall_s"] = CLOCK.now()
    common.write_result(args.out, result)


if __name__ == "__main__":
    main()
