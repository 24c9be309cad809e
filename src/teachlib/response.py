"""Direct response models: Born charges and Raman tensors per atom from one network (ch. 4).

The "double-headed" equivariant network of chapter 4: a NequIP-style network
(:class:`teachlib.models.EquivariantGNN`) with one node head per tensor,

=================  =============  ===================  =================================
label              Cartesian      irreps               meaning
=================  =============  ===================  =================================
``born_charges``   (n, 3, 3)      0e + 1e + 2e         Z*_κ[field, displacement] (e)
``raman_tensors``  (n, 3, 3, 3)   2x1o + 2o + 3o       R_κ[displacement, field, field]
=================  =============  ===================  =================================

each predicted as irreps and decoded to Cartesian components (:mod:`teachlib.tensors`), so
every prediction rotates exactly as the tensor it stands for. Three choices make it train
quickly:

* **targets shifted by the per-species mean**, its rotation-invariant part (the isotropic
  part of Z*, about +2.7, +6.2, −3.0 e for Ba, Ti, O; nothing for the Raman tensors, whose
  irreps are all odd): the network predicts what is left, and the shift is added back;
* **outputs and loss terms scaled by the label scales** σ (the RMS of each label's shifted
  training targets): the network's output is multiplied by σ, so it works with numbers of
  order one, and each label's mean squared error is divided by σ², so that both terms start
  near 1 whatever their units and a ``weights`` entry then says how much each tensor matters;
* fixed padded shapes (one padding for the whole data set), so ``jax.jit`` compiles once.

Training goes through the book's one loop, :func:`teachlib.train.fit`. A trained
:class:`ResponseModel` predicts for any ``ase.Atoms`` of its species, and saves to a folder
without pickle (``config.json`` + ``params.msgpack``)::

    model, result = train_response(train, val, ResponseConfig(), epochs=20)
    model.save("outputs/04_bec_raman/model")
    model = teachlib.load_model("outputs/04_bec_raman/model")
    model.predict(atoms)["born_charges"]            # (len(atoms), 3, 3), atoms' order

>>> config = ResponseConfig(hidden_irreps="8x0e + 4x1o + 4x1e + 2x2e + 2x2o", cutoff=4.5)
>>> config.labels, config.network().plan().output
(('born_charges', 'raman_tensors'), 4x0e+4x1o+4x1e+4x2e+4x2o+4x3o)

References: S. Batzner et al., Nat. Commun. 13, 2453 (2022) (NequIP); L. Bastonero and
N. Marzari, npj Comput. Mater. 10, 55 (2024) (the data's workflow and conventions).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from pathlib import Path
from typing import Any

import ase
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from teachlib import metrics
from teachlib.data.split import training_subset
from teachlib.graphs import (Graph, GraphError, Padding, atoms_to_graph, batch_graphs, padding_for,
                             stack_graphs)
from teachlib.models import EquivariantGNN, Head
from teachlib.tensors import BORN_CHARGE, RAMAN
from teachlib.train import FitResult, fit

LABELS = ("born_charges", "raman_tensors")
TENSORS = {"born_charges": BORN_CHARGE, "raman_tensors": RAMAN}
FORMAT = "teachlib.response/1"
CONFIG_FILE, PARAMS_FILE = "config.json", "params.msgpack"


def build_network(config, heads) -> EquivariantGNN:
    """The :class:`EquivariantGNN` of a config's architecture fields (``species``,
    ``hidden_irreps``, ``n_layers``, ``lmax``, ``cutoff``, ``n_basis``, ``radial_hidden``,
    ``readout_mul``, ``avg_num_neighbours``) with the given heads: chapter 4's and chapter 5's
    models differ only in their heads."""
    return EquivariantGNN(
        species=tuple(config.species), heads=heads, hidden_irreps=config.hidden_irreps,
        n_layers=config.n_layers, lmax=config.lmax, cutoff=config.cutoff, n_basis=config.n_basis,
        radial_hidden=tuple(config.radial_hidden), avg_num_neighbours=config.avg_num_neighbours,
        readout_mul=config.readout_mul)


@dataclasses.dataclass(frozen=True)
class ResponseConfig:
    """Everything that defines the network (hashable: it keys the compiled functions).

    Attributes:
        labels: which tensors to predict, a sub-tuple of :data:`LABELS` (one head each).
        species: the elements the model is built for.
        hidden_irreps, n_layers, lmax, cutoff, n_basis, radial_hidden, readout_mul: see
            :class:`teachlib.models.EquivariantGNN`.
        avg_num_neighbours: the training data's mean neighbour count (set by
            :func:`train_response`).
    """

    labels: tuple[str, ...] = LABELS
    species: tuple[str, ...] = ("Ba", "Ti", "O")
    hidden_irreps: str = "16x0e + 8x1o + 8x1e + 4x2e + 4x2o"
    n_layers: int = 2
    lmax: int = 2
    cutoff: float = 4.5
    n_basis: int = 8
    radial_hidden: tuple[int, ...] = (16,)
    readout_mul: int = 4
    avg_num_neighbours: float = 1.0

    def __post_init__(self):
        unknown = [label for label in self.labels if label not in TENSORS]
        if unknown or not self.labels:
            raise ValueError(f"labels must be a non-empty subset of {LABELS}, got {self.labels}")

    def network(self) -> EquivariantGNN:
        """The flax module (no parameters yet)."""
        return build_network(self, tuple(Head(label, TENSORS[label]) for label in self.labels))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ResponseConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"unknown config entries {unknown}; known: {sorted(fields)}")
        data = dict(data)
        for name in ("labels", "species", "radial_hidden"):
            if name in data:
                data[name] = tuple(data[name])
        return cls(**data)


# ------------------------------------------------------------------------------------------
# graphs, stacked along a leading axis (one snapshot per row), as teachlib.train.fit wants them


def graphs_for(config: ResponseConfig, structures, *, padding: Padding | None = None,
               offsets: dict | None = None) -> Graph:
    """Structures as one :class:`Graph` whose arrays have a leading structure axis.

    Each structure is padded alone to ``padding`` (default: the largest of them), and the
    padded graphs are stacked: ``positions`` (n_structures, n_node, 3), ``senders``
    (n_structures, n_edge), ... With ``offsets``, the structures' labels are carried along
    as ``node_data``, shifted by the per-species offsets (what the network learns).
    """
    node_data = config.labels if offsets is not None else ()
    graphs = [atoms_to_graph(atoms, cutoff=config.cutoff, species=config.species,
                             node_data=node_data) for atoms in structures]
    padding = padding or padding_for(graphs, 1)
    stacked = stack_graphs([batch_graphs([g], **padding._asdict()) for g in graphs])
    if offsets is not None:
        shifted = {}
        for label in config.labels:
            shift = offsets[label][stacked.species]                       # (S, n_node, ...)
            mask = stacked.node_mask.reshape(stacked.node_mask.shape + (1,) * (shift.ndim - 2))
            shifted[label] = (stacked.node_data[label] - shift * mask).astype(np.float32)
        stacked = stacked._replace(node_data=shifted)
    return stacked


def common_padding(config: ResponseConfig, structures, *, multiple: int = 64) -> Padding:
    """One padding that fits every structure alone (so one compiled function serves all).

    ``config`` may be any configuration with ``cutoff`` and ``species`` (chapter 5's too)."""
    graphs = [atoms_to_graph(a, cutoff=config.cutoff, species=config.species) for a in structures]
    return padding_for(graphs, 1, multiple=multiple)


def mean_neighbours(config: ResponseConfig, structures) -> float:
    """Mean number of neighbours per atom within ``config.cutoff`` (any config with ``cutoff``
    and ``species``)."""
    graphs = [atoms_to_graph(a, cutoff=config.cutoff, species=config.species) for a in structures]
    return sum(g.num_edges for g in graphs) / sum(g.num_nodes for g in graphs)


def species_offsets(config: ResponseConfig, structures) -> dict[str, np.ndarray]:
    """The rotation-invariant part of each label's per-species mean over ``structures``.

    Returns ``{label: (n_species, *shape)}``. Only the invariant (``0e``) part of a mean may
    be added to an equivariant model's output: a constant tensor with an ``l > 0`` part would
    not turn with the structure. For Born charges that is the isotropic part, tr(Z̄)/3 · 1;
    the Raman tensors have no invariant part (their irreps are all odd), so their offset is 0.

    >>> import ase, numpy as np
    >>> atoms = ase.Atoms("Ba", cell=[4, 4, 4], pbc=True)
    >>> atoms.arrays["born_charges"] = np.array([[[2.0, 0.3, 0], [0, 3.0, 0], [0, 0, 4.0]]])
    >>> species_offsets(ResponseConfig(labels=("born_charges",), species=("Ba",)), [atoms])
    {'born_charges': array([[[3., 0., 0.],
            [0., 3., 0.],
            [0., 0., 3.]]])}
    """
    offsets = {}
    symbols = np.concatenate([a.get_chemical_symbols() for a in structures])    # (N,)
    missing = [s for s in config.species if s not in symbols]
    if missing:
        raise ValueError(f"no training atoms of species {missing}")
    for label in config.labels:
        tensor = TENSORS[label]
        values = np.concatenate([a.arrays[label] for a in structures])          # (N, ...)
        means = np.stack([values[symbols == s].mean(0) for s in config.species])  # (S, ...)
        parts = np.asarray(tensor.to_irreps(means).array)                        # (S, dim)
        invariant = np.concatenate([np.full(mul * ir.dim, ir.l == 0 and ir.p == 1)
                                    for mul, ir in tensor.irreps])                # (dim,)
        offsets[label] = np.asarray(tensor.from_irreps(parts * invariant))      # (S, ...)
    return offsets


@functools.lru_cache(maxsize=16)
def _init(config: ResponseConfig):
    """The jitted ``network.init``, one per config (models of one architecture share it).

    Call it with an "rbg" key (``jax.random.key(seed, impl="rbg")``): it plays the role of
    ``PRNGKey(seed)``, but XLA compiles its random-number code several times faster than
    threefry's, which otherwise dominates the cost of initialising on a CPU.
    """
    return jax.jit(config.network().init)


@functools.lru_cache(maxsize=16)
def _forward(config: ResponseConfig):
    """A jitted ``(params, offsets, scales, stacked graphs) -> {label: (S, n_node, ...)}``;
    one per config, so models of the same architecture share the compiled function."""
    network = config.network()

    def one(params, offsets, scales, graph):
        out = network.apply(params, graph)
        mask = graph.node_mask
        return {label: (scales[label] * out[label] + offsets[label][graph.species])
                * mask.reshape(mask.shape + (1,) * (out[label].ndim - 1))
                for label in config.labels}

    return jax.jit(jax.vmap(one, in_axes=(None, None, None, 0)))


# ------------------------------------------------------------------------------------------
# the trained model


@dataclasses.dataclass
class ResponseModel:
    """A trained direct response model: predicts per-atom tensors for any structure.

    Attributes:
        config: the architecture.
        params: the network's parameters (flax variables).
        offsets: per-species means added to the network's output, ``{label: (n_species,
            *tensor shape)}``, species in ``config.species`` order.
        scales: the network's output for each label is multiplied by this (the label's
            scale σ), so that the network itself works with numbers of order one.
        info: free-form metadata saved with the model (data, split, metrics, ...).
    """

    config: ResponseConfig
    params: Any
    offsets: dict[str, np.ndarray]
    scales: dict[str, float] = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.scales = {label: float(self.scales.get(label, 1.0)) for label in self.config.labels}

    def predict(self, atoms: ase.Atoms) -> dict[str, np.ndarray]:
        """Tensors of every atom of ``atoms``, in its atom order.

        Returns:
            ``{"born_charges": (n, 3, 3), "raman_tensors": (n, 3, 3, 3)}`` (the labels the
            model was trained on), float64 NumPy arrays, in the units of the training data.

        Raises:
            ValueError: for an element the model was not trained on, or an atom with no
                neighbour within the cutoff (the message says which).
        """
        if not isinstance(atoms, ase.Atoms):
            raise TypeError(f"predict takes one ase.Atoms, got {type(atoms).__name__}; use "
                            "predict_many for a list")
        return {label: value[0] for label, value in self.predict_many([atoms]).items()}

    def predict_many(self, structures, *, padding: Padding | None = None,
                     batch_size: int = 8) -> dict[str, np.ndarray]:
        """Tensors of several structures with the same number of atoms, stacked:
        ``{label: (n_structures, n_atoms, ...)}``. Pass one ``padding`` for repeated calls
        (it fixes the compiled shapes)."""
        structures = list(structures)
        sizes = {len(a) for a in structures}
        if len(sizes) != 1:
            raise ValueError(f"predict_many needs structures of one size, got sizes {sorted(sizes)}; "
                             "call predict for each")
        n_atoms = sizes.pop()
        try:
            graphs = graphs_for(self.config, structures, padding=padding)
        except GraphError as error:
            raise ValueError(f"cannot predict for this structure: {error} (this model was "
                             f"trained on {', '.join(self.config.species)})") from error
        forward = _forward(self.config)
        offsets = {k: jnp.asarray(v, jnp.float32) for k, v in self.offsets.items()}
        chunks = []
        for start in range(0, len(structures), batch_size):
            batch = jax.tree.map(lambda x: x[start:start + batch_size], graphs)
            chunks.append(jax.device_get(forward(self.params, offsets, self.scales, batch)))
        return {label: np.concatenate([c[label] for c in chunks])[:, :n_atoms].astype(np.float64)
                for label in self.config.labels}

    def save(self, path) -> Path:
        """Write ``path/config.json`` (architecture, offsets, info) and ``path/params.msgpack``
        (flax-serialised parameters). No pickle anywhere."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        document = {"format": FORMAT, "config": self.config.to_dict(),
                    "offsets": {k: np.asarray(v).tolist() for k, v in self.offsets.items()},
                    "scales": self.scales,
                    "info": self.info}
        (path / CONFIG_FILE).write_text(json.dumps(document, indent=1, default=_plain) + "\n")
        state = flax.serialization.to_state_dict(jax.device_get(self.params))
        (path / PARAMS_FILE).write_bytes(flax.serialization.msgpack_serialize(state))
        return path


def load_model(path) -> ResponseModel:
    """Load a model written by :meth:`ResponseModel.save`.

    The parameters are checked against the architecture in ``config.json`` (same tree, same
    shapes), so a mismatched or damaged folder fails here with a clear message.

    Example (``model`` folder written by chapter 4)::

        >>> import teachlib, ase.io                                  # doctest: +SKIP
        >>> model = teachlib.load_model("outputs/04_bec_raman/model")  # doctest: +SKIP
        >>> model.predict(ase.io.read("my_batio3.cif"))["born_charges"].shape  # doctest: +SKIP
        (135, 3, 3)
    """
    path = Path(path)
    for name in (CONFIG_FILE, PARAMS_FILE):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} is missing: is {path} a folder written by "
                                    "ResponseModel.save?")
    document = json.loads((path / CONFIG_FILE).read_text())
    if document.get("format") != FORMAT:
        raise ValueError(f"{path / CONFIG_FILE} has format {document.get('format')!r}, "
                         f"expected {FORMAT!r}")
    config = ResponseConfig.from_dict(document["config"])
    params = flax.serialization.msgpack_restore((path / PARAMS_FILE).read_bytes())
    expected = _parameter_shapes(config)
    found = jax.tree.map(np.shape, params)
    if jax.tree.structure(found) != jax.tree.structure(expected) or found != expected:
        raise ValueError(f"{path / PARAMS_FILE} does not fit the architecture in "
                         f"{CONFIG_FILE} (different parameter names or shapes)")
    offsets = {k: np.asarray(v, dtype=np.float64) for k, v in document["offsets"].items()}
    return ResponseModel(config, jax.tree.map(jnp.asarray, params), offsets,
                         document.get("scales", {}), document.get("info", {}))


def _parameter_shapes(config: ResponseConfig):
    """Parameter shapes of ``config``'s network, without computing anything."""
    toy = ase.Atoms(config.species[:1] * 2, positions=[[0, 0, 0], [0, 0, config.cutoff / 2]],
                    cell=[3 * config.cutoff] * 3, pbc=True)
    graph = jax.tree.map(lambda x: x[0], graphs_for(config, [toy]))
    shapes = jax.eval_shape(config.network().init, jax.random.PRNGKey(0), graph)
    return jax.tree.map(lambda s: tuple(s.shape), shapes)


def _plain(value):
    """JSON for NumPy scalars and arrays in ``info``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# ------------------------------------------------------------------------------------------
# training


def label_scales(graphs: Graph, labels) -> dict[str, float]:
    """σ per label: the root mean square of the (shifted) targets over real atoms."""
    mask = np.asarray(graphs.node_mask)
    return {label: float(np.sqrt(np.mean(np.asarray(graphs.node_data[label])[mask] ** 2)))
            for label in labels}


def make_loss(config: ResponseConfig, scales: dict, weights: dict):
    """``loss(params, batch) -> (Σ_label w·MSE/σ², {label_mae: ...})`` for stacked graphs.

    The network's output for each label is multiplied by σ (:func:`label_scales`), so that it
    works with numbers of order one whatever the label's units. Each term is the label's mean
    squared error over real atoms and Cartesian components, divided by σ²: a network that
    predicts zero (the per-species mean) scores 1 on each, so ``weights`` compare like with
    like.
    """
    network = config.network()

    def loss(params, batch):
        out = jax.vmap(lambda g: network.apply(params, g))(batch)      # {label: (B, n_node, ...)}
        mask = batch.node_mask.astype(jnp.float32)                       # (B, n_node)
        total, aux = 0.0, {}
        for label in config.labels:
            prediction = scales[label] * out[label]
            error = (prediction - batch.node_data[label]).reshape(mask.shape + (-1,))  # (B, n, c)
            count = mask.sum() * error.shape[-1]
            total += weights[label] * jnp.sum(mask[..., None] * error**2) / count / scales[label] ** 2
            aux[f"{label}_mae"] = jnp.sum(mask[..., None] * jnp.abs(error)) / count
        return total, aux

    return loss


def train_response(train, val, config: ResponseConfig | None = None, *, epochs: int,
                   batch_size: int = 2, learning_rate: float = 5e-3,
                   weights: dict | None = None, patience: int | None = None, seed: int = 0,
                   padding: Padding | None = None, validate: bool = True,
                   checkpoint_dir=None, progress: bool = True,
                   desc: str = "training") -> tuple[ResponseModel, FitResult]:
    """Fit a direct response model on ``train`` (list of ase.Atoms with the labels).

    Args:
        train, val: lists of ase.Atoms; ``val`` decides the best epoch and early stopping.
        validate: evaluate ``val`` after every epoch and keep the best epoch's parameters
            (needed for ``patience``). ``False`` keeps the last parameters and saves the
            evaluations (and their compilation): fine for short runs whose learning rate
            decays to almost zero.
        config: the architecture; its ``avg_num_neighbours`` is set from ``train``.
        epochs, batch_size, patience, seed: as in :func:`teachlib.train.fit` (``seed`` also
            initialises the parameters).
        learning_rate: peak of a warm-up (one epoch) + cosine-decay schedule for Adam.
        weights: relative weight of each label's normalised loss term (default 1 each).
        padding: fixed shapes (default: the largest of ``train`` and ``val``).
        checkpoint_dir: save the training state there every few epochs, and resume from it
            when the same run is started again (:func:`teachlib.train.fit`); None: never.

    Returns:
        ``(model, fit result)``; the model holds the parameters of the best validation epoch.
    """
    config = config or ResponseConfig()
    # rounded, so that models trained on different subsets share one architecture (and compile)
    config = dataclasses.replace(config, avg_num_neighbours=round(mean_neighbours(config, train), 1))
    weights = {label: 1.0 for label in config.labels} | dict(weights or {})
    weights = {label: float(weights[label]) for label in config.labels}
    padding = padding or common_padding(config, list(train) + list(val))
    if patience is not None and not validate:
        raise ValueError("early stopping (patience) needs validate=True")
    offsets = species_offsets(config, train)
    train_graphs = graphs_for(config, train, padding=padding, offsets=offsets)
    val_graphs = graphs_for(config, val, padding=padding, offsets=offsets) if validate else None
    scales = label_scales(train_graphs, config.labels)

    first = jax.tree.map(lambda x: x[0], train_graphs)
    params = _init(config)(jax.random.key(seed, impl="rbg"), first)
    steps_per_epoch = max(1, len(train) // min(batch_size, len(train)))
    schedule = optax.warmup_cosine_decay_schedule(
        learning_rate / 10, learning_rate, warmup_steps=steps_per_epoch,
        decay_steps=max(epochs * steps_per_epoch, steps_per_epoch + 1), end_value=learning_rate / 100)
    result = fit(make_loss(config, scales, weights), params, train_graphs, val_data=val_graphs,
                 epochs=epochs, batch_size=batch_size, optimizer=optax.adam(schedule),
                 patience=patience, seed=seed, has_aux=True, checkpoint_dir=checkpoint_dir,
                 progress=progress, desc=desc)
    info = {"n_train": len(train), "n_val": len(val) if validate else 0, "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch, "label_scales": scales, "loss_weights": weights,
            "seed": seed}
    return ResponseModel(config, result.params, offsets, scales, info), result


def evaluate(model: ResponseModel, structures, *, padding: Padding | None = None) -> dict:
    """MAE and RMSE of each label over all atoms and components of ``structures``:
    ``{"born_charges_mae": ..., "born_charges_rmse": ..., ...}``."""
    predictions = model.predict_many(structures, padding=padding)
    errors = {}
    for label, prediction in predictions.items():
        truth = np.stack([a.arrays[label] for a in structures])
        errors[f"{label}_mae"] = metrics.mae(prediction, truth)
        errors[f"{label}_rmse"] = metrics.rmse(prediction, truth)
    return errors


def epochs_for(size: int, *, steps: int, batch_size: int, min_epochs: int = 5,
               max_epochs: int | None = None) -> int:
    """Epochs that give a training set of ``size`` about ``steps`` optimiser steps, but at
    least ``min_epochs`` and at most ``max_epochs`` passes over it (a tiny set needs fewer
    steps, and each epoch also costs a validation pass).

    >>> epochs_for(40, steps=120, batch_size=2), epochs_for(4, steps=120, batch_size=2)
    (6, 60)
    >>> epochs_for(1, steps=2000, batch_size=2, max_epochs=300)
    300
    """
    steps_per_epoch = max(1, size // min(batch_size, size))
    epochs = max(min_epochs, math.ceil(steps / steps_per_epoch))
    return epochs if max_epochs is None else min(epochs, max_epochs)


def train_subset(snapshots, split, size: int, config: ResponseConfig, *, seed: int, steps: int,
                 batch_size: int = 2, max_epochs: int | None = None,
                 padding: Padding | None = None, progress: bool = True,
                 **options) -> tuple[ResponseModel, dict]:
    """One point of a learning curve: train on a seeded subset of ``size`` training snapshots
    for about ``steps`` steps (:func:`epochs_for`), test on ``split.test``.

    Returns:
        ``(model, row)`` with ``row`` = ``size``, ``seed``, ``epochs``, ``seconds`` and the
        :func:`evaluate` entries. ``options`` go to :func:`train_response`.
    """
    val = [snapshots[i] for i in split.val]
    test = [snapshots[i] for i in split.test]
    padding = padding or common_padding(config, snapshots)
    train = [snapshots[i] for i in training_subset(split.train, size, seed=seed)]
    start = time.perf_counter()
    model, result = train_response(
        train, val, config,
        epochs=epochs_for(size, steps=steps, batch_size=batch_size, max_epochs=max_epochs),
        batch_size=batch_size, seed=seed, padding=padding, progress=progress,
        desc=f"{size} snapshots, seed {seed}", **options)
    row = {"size": size, "seed": seed, "epochs": result.epochs_run,
           "seconds": time.perf_counter() - start} | evaluate(model, test, padding=padding)
    return model, row


def learning_curve(snapshots, split, sizes, seeds, config: ResponseConfig, *, steps: int,
                   batch_size: int = 2, progress: bool = True, **options):
    """Test error against training-set size: one model per (size, seed).

    The training sets are nested seeded subsets of ``split.train``
    (:func:`teachlib.data.split.training_subset`); validation and test sets stay fixed. Each
    model gets about ``steps`` optimiser steps, so that small sets are not starved of updates
    (and large ones may be under-trained: say so when you compare with a longer run).

    Returns:
        ``(rows, models)``: one :func:`train_subset` row per model, and the models by
        ``(size, seed)``.
    """
    padding = common_padding(config, snapshots)
    rows, models = [], {}
    for size in sizes:
        for seed in seeds:
            models[size, seed], row = train_subset(
                snapshots, split, size, config, seed=seed, steps=steps, batch_size=batch_size,
                padding=padding, progress=progress, **options)
            rows.append(row)
    return rows, models
