r"""Response tensors as derivatives of two learned cell quantities (chapter 5).

In a homogeneous electric field ℰ the energy of a cell of volume Ω with atoms at τ is, to
second order in the field (Gaussian units, the cell dipole P in e·Å),

.. math::

    E(τ, ℰ) = U(τ) − P(τ)·ℰ − (Ω / 8π) ℰ·[ε∞(τ) − 1]·ℰ ,

and the response tensors are its mixed derivatives (F = −∂E/∂τ is the force):

.. math::

    Z^*_{κ,αβ} = −∂²E/∂ℰ_α∂τ_{κβ} = ∂P_α/∂τ_{κβ} = ∂F_{κβ}/∂ℰ_α ,
    \qquad
    ∂ε∞_{ij}/∂τ_{κβ} = (4π/Ω) ∂²F_{κβ}/∂ℰ_i∂ℰ_j .

The model learns two cell quantities, each a sum of per-atom contributions that depend only on
the vectors to neighbouring atoms (the equivariant network of :mod:`teachlib.models`):

* the dipole ``P(τ) = Σ_κ Z̄_κ τ_κ + Σ_i p_i``, ``p_i`` a polar vector (``1o``);
* a susceptibility-like tensor ``X(τ) = Σ_i x_i``, ``x_i`` symmetric (``0e + 2e``),

where Z̄_κ is the isotropic part of the per-species mean Born charge (these constants sum to
zero over a neutral cell; the Raman tensors have no invariant part), and
returns their Jacobians with respect to the positions (``jax.vjp``: one forward pass, one
pull-back per output component, nine in all):

=================  =============  ==========================================================
output             shape          definition (index order of the data, see below)
=================  =============  ==========================================================
``born_charges``   (n, 3, 3)      Z*[κ, β, α] = ∂P_α/∂τ_κβ   (displacement β, field α), e
``raman_tensors``  (n, 3, 3, 3)   R[κ, β, i, j] = ∂X_ij/∂τ_κβ   (displacement, field, field)
``dielectric``     (3, 3)         ε∞ = ε₀·1 + c·X, with ε₀ and c learned scalars
=================  =============  ==========================================================

The stored Born charges of the BaTiO3 set have the *displacement* index first
(:data:`teachlib.conventions.BORN_CHARGE_AXES`, pinned in chapter 5), like the Raman tensors,
so both are "∂/∂τ_κβ of a cell quantity" in the same order. The constant c that ties the
Raman labels to ε∞ is not assumed: it is a parameter, fitted together with the network.

Why sums of local contributions: with periodic boundary conditions Σ_κ q_κ τ_κ is not a
function of the crystal (moving an atom by a lattice vector changes it), but Σ_i p_i of
vectors r_ij = τ_j − τ_i + S·cell is. Its derivatives are what the calculations give, and they obey the
acoustic sum rules *by construction*: moving every atom by the same vector changes no r_ij, so
Σ_κ ∂P/∂τ_κ = 0 and Σ_κ ∂X/∂τ_κ = 0 exactly (to rounding). The mean part Σ_κ Z̄_κ τ_κ only
adds the constants Z̄_κ to the derivatives; it is never evaluated.

>>> config = DerivativeConfig(hidden_irreps="4x0e + 2x1o + 2x1e + 2x2e", avg_num_neighbours=27.0)
>>> [str(h.irreps) for h in config.network().heads]
['1x1o', '1x0e+1x2e']

References: X. Gonze and C. Lee, Phys. Rev. B 55, 10355 (1997) (Z* and ε∞ as mixed
derivatives); P. Umari and A. Pasquarello, Diamond Relat. Mater. 14, 1255 (2005) (Raman tensors
from finite fields); L. Bastonero and N. Marzari, npj Comput. Mater. 10, 55 (2024) (the data's
workflow).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable, NamedTuple

import ase
import jax
import jax.numpy as jnp
import numpy as np
import optax

from teachlib import metrics
from teachlib import response as direct
from teachlib.data.split import training_subset
from teachlib.graphs import (Graph, Padding, atoms_to_graph, batch_graphs, padding_for,
                             stack_graphs)
from teachlib.models import EquivariantGNN, Head
from teachlib.tensors import DIELECTRIC
from teachlib.train import FitResult, epoch_batches, fit, make_epoch_fn

__all__ = [
    "DerivativeConfig",
    "DerivativeModel",
    "graphs_for",
    "species_offsets",
    "response",
    "make_loss",
    "setup_training",
    "train_derivative",
    "seconds_per_step",
    "evaluate",
    "learning_curve",
]

LABELS = ("born_charges", "raman_tensors")


@dataclasses.dataclass(frozen=True)
class DerivativeConfig:
    """The network behind P(τ) and X(τ) (hashable: it keys the compiled functions).

    Attributes are those of :class:`teachlib.models.EquivariantGNN`; the defaults are chapter
    4's direct model, so the two differ only in what they predict.
    """

    species: tuple[str, ...] = ("Ba", "Ti", "O")
    hidden_irreps: str = "16x0e + 8x1o + 8x1e + 4x2e + 4x2o"
    n_layers: int = 2
    lmax: int = 2
    cutoff: float = 4.5
    n_basis: int = 8
    radial_hidden: tuple[int, ...] = (16,)
    readout_mul: int = 4
    avg_num_neighbours: float | None = None   # None: the training data's, set when training

    def __post_init__(self):  # lists (e.g. from JSON) become tuples, so the config stays hashable
        object.__setattr__(self, "species", tuple(self.species))
        object.__setattr__(self, "radial_hidden", tuple(self.radial_hidden))

    def network(self) -> EquivariantGNN:
        """The flax module: per-atom ``1o`` (dipole) and ``0e + 2e`` (X), summed per cell."""
        if self.avg_num_neighbours is None:
            raise ValueError("set avg_num_neighbours (mean_neighbours of the training data) "
                             "before building the network; train_derivative does it for you")
        return direct.build_network(self, (Head("dipole", "1o", level="graph"),
                                           Head("chi", "0e + 2e", level="graph")))


# ------------------------------------------------------------------------------------------
# data: one padded graph per structure, stacked along a leading axis (what train.fit wants)


def graphs_for(config: DerivativeConfig, structures, *, padding: Padding | None = None,
               labels: bool = True) -> Graph:
    """Structures as one :class:`Graph` with a leading structure axis (for ``fit``).

    Each structure is padded alone (one real graph + one padding graph) and the graphs are
    stacked (:func:`teachlib.graphs.stack_graphs`): ``positions`` (n_structures, n_node, 3),
    and so on. With ``labels`` they carry ``node_data`` born_charges (S, n_node, 3, 3) and
    raman_tensors (S, n_node, 3, 3, 3), and ``graph_data`` dielectric (S, 2, 3, 3) with
    ``dielectric_valid`` (S, 2), False for padding and for the corrupt snapshots.
    """
    graphs = []
    for atoms in structures:
        g = atoms_to_graph(atoms, cutoff=config.cutoff, species=config.species,
                           node_data=LABELS if labels else ())
        if labels:
            valid = bool(atoms.info.get("dielectric_valid", True))
            eps = np.asarray(atoms.info["dielectric"]) if valid else np.zeros((3, 3))
            g = g._replace(graph_data={"dielectric": eps[None],
                                       "dielectric_valid": np.array([valid])})
        graphs.append(g)
    padding = padding or padding_for(graphs, 1)
    stacked = stack_graphs([batch_graphs([g], **padding._asdict()) for g in graphs])
    if labels:  # float32 labels; positions stay float64 until JAX sees them
        stacked = stacked._replace(node_data={k: v.astype(np.float32)
                                              for k, v in stacked.node_data.items()})
    return stacked


# chapter 4's: they read only the config's cutoff and species
common_padding = direct.common_padding
mean_neighbours = direct.mean_neighbours


def species_offsets(config: DerivativeConfig, structures) -> dict[str, np.ndarray]:
    """The rotation-invariant part of each label's per-species mean, ``{label: (n_species,
    *shape)}``: tr(Z̄)/3 · 1 for the Born charges, 0 for the Raman tensors (chapter 4's
    :func:`teachlib.response.species_offsets`). Only an invariant constant may be added to an
    equivariant prediction; and over a neutral cell these constants sum to zero, so adding
    them keeps the sum rules."""
    return direct.species_offsets(direct.ResponseConfig(labels=LABELS, species=config.species),
                                  structures)


# ------------------------------------------------------------------------------------------
# the physics: Jacobians of the cell quantities


def response(network: EquivariantGNN, params, offsets, scales, graph: Graph) -> dict:
    """Born charges, Raman tensors and ε∞ of one padded graph, as derivatives.

    Args:
        network: ``config.network()``.
        params: ``{"network": flax variables, "log_c": (), "eps0": ()}``.
        offsets: per-species constants, ``{label: (n_species, ...)}`` (:func:`species_offsets`).
        scales: ``{label: σ}``; P is σ(born_charges) times the network's ``1o`` output and X
            σ(raman_tensors) times its ``0e + 2e`` output, so the network works with numbers
            of order one (as chapter 4's direct model does).
        graph: one padded graph (no leading structure axis); it may hold several structures.

    Returns:
        ``born_charges`` (n_node, 3, 3) [κ, displacement, field], ``raman_tensors``
        (n_node, 3, 3, 3) [κ, displacement, field, field], ``dielectric`` (n_graph, 3, 3),
        ``dipole`` (n_graph, 3) (the local part Σ_i p_i). Padding rows are zero.
    """

    def cell_quantities(positions):
        out = network.apply(params["network"], graph._replace(positions=positions),
                            cartesian=False)
        cells = jnp.concatenate([scales["born_charges"] * out["dipole"].array,
                                 scales["raman_tensors"] * out["chi"].array], -1)  # (n_graph, 9)
        # every atom belongs to exactly one graph, so one Jacobian of the sum gives all
        return cells.sum(0), cells                                             # (9,), (n_graph, 9)

    # reverse mode: one forward pass shared by nine pull-backs (3 components of P, 6 of X)
    _, pullback, cells = jax.vjp(cell_quantities, jnp.asarray(graph.positions), has_aux=True)
    jac = jax.vmap(pullback)(jnp.eye(9, dtype=cells.dtype))[0]                 # (9, n_node, 3)
    jac = jnp.moveaxis(jac, 0, -1)                        # (n_node, 3 displacement, 9)
    mask = graph.node_mask[:, None, None]
    shift = {k: jnp.asarray(v, jac.dtype)[graph.species] for k, v in offsets.items()}
    born = jac[..., :3] + shift["born_charges"]                                   # (n, β, α)
    raman = DIELECTRIC.from_irreps(jac[..., 3:]) + shift["raman_tensors"]         # (n, β, i, j)
    eps = (params["eps0"] * jnp.eye(3)
           + jnp.exp(params["log_c"]) * DIELECTRIC.from_irreps(cells[:, 3:]))    # (n_graph, 3, 3)
    return {"born_charges": born * mask, "raman_tensors": raman * mask[..., None],
            "dielectric": eps * graph.graph_mask[:, None, None], "dipole": cells[:, :3]}


# ------------------------------------------------------------------------------------------
# training


def label_scales(graphs: Graph, offsets) -> dict[str, float]:
    """σ per label: root mean square of the targets minus their species means (as in ch. 4),
    and of ε∞ minus its mean over the valid training snapshots."""
    mask = np.asarray(graphs.node_mask)
    scales = {}
    for label in LABELS:
        shifted = np.asarray(graphs.node_data[label]) - offsets[label][np.asarray(graphs.species)]
        scales[label] = float(np.sqrt(np.mean(shifted[mask] ** 2)))
    valid = np.asarray(graphs.graph_data["dielectric_valid"])
    eps = np.asarray(graphs.graph_data["dielectric"])[valid]                        # (V, 3, 3)
    scales["dielectric"] = float(np.sqrt(np.mean((eps - eps.mean(0)) ** 2))) if len(eps) else 1.0
    return scales


def make_loss(config: DerivativeConfig, offsets, scales: dict, weights: dict):
    """``loss(params, batch) -> (Σ_label w·MSE/σ², {label_mae: ..., "c": ...})``.

    Each term is a mean squared error divided by σ² (:func:`label_scales`), as in chapter 4;
    the ε∞ term counts only the valid snapshots (``dielectric_valid``).
    """
    network = config.network()
    offsets = {k: jnp.asarray(v, jnp.float32) for k, v in offsets.items()}

    def loss(params, batch):
        out = jax.vmap(lambda g: response(network, params, offsets, scales, g))(batch)
        mask = batch.node_mask.astype(jnp.float32)                              # (B, n_node)
        total, aux = 0.0, {}
        for label in LABELS:
            error = (out[label] - batch.node_data[label]).reshape(mask.shape + (-1,))
            count = mask.sum() * error.shape[-1]
            total += weights[label] * jnp.sum(mask[..., None] * error**2) / count / scales[label]**2
            aux[f"{label}_mae"] = jnp.sum(mask[..., None] * jnp.abs(error)) / count
        valid = batch.graph_data["dielectric_valid"].astype(jnp.float32)        # (B, n_graph)
        error = (out["dielectric"] - batch.graph_data["dielectric"]).reshape(valid.shape + (9,))
        count = jnp.maximum(valid.sum() * 9, 1.0)
        total += (weights["dielectric"] * jnp.sum(valid[..., None] * error**2) / count
                  / scales["dielectric"]**2)
        aux["dielectric_mae"] = jnp.sum(valid[..., None] * jnp.abs(error)) / count
        aux["c"] = jnp.exp(params["log_c"])
        return total, aux

    return loss


@dataclasses.dataclass
class DerivativeModel:
    """A trained derivative model; predicts for any structure of its species.

    Attributes:
        config: the architecture.
        params: ``{"network": flax variables, "log_c": (), "eps0": ()}``.
        offsets: per-species constants added to the derivatives (:func:`species_offsets`).
        scales: σ per label multiplying the network's outputs (default 1).
        info: metadata of the training run.
        training: the :class:`Training` set-up it came from (not saved; for timing).
    """

    config: DerivativeConfig
    params: Any
    offsets: dict[str, np.ndarray]
    scales: dict[str, float] = dataclasses.field(default_factory=dict)  # σ per label
    info: dict = dataclasses.field(default_factory=dict)
    training: Any = dataclasses.field(default=None, repr=False)  # the Training it came from

    def __post_init__(self):
        self.scales = {label: float(self.scales.get(label, 1.0)) for label in LABELS}

    @property
    def c(self) -> float:
        """The learned constant in ∂ε∞/∂τ = c·R."""
        return float(np.exp(self.params["log_c"]))

    def predict_many(self, structures, *, padding: Padding | None = None,
                     batch_size: int = 4) -> dict[str, np.ndarray]:
        """``{"born_charges": (S, n, 3, 3), "raman_tensors": (S, n, 3, 3, 3),
        "dielectric": (S, 3, 3)}`` for structures of one size, in the data's index order."""
        structures = list(structures)
        sizes = {len(a) for a in structures}
        if len(sizes) != 1:
            raise ValueError(f"predict_many needs structures of one size, got {sorted(sizes)}")
        n = sizes.pop()
        graphs = graphs_for(self.config, structures, padding=padding, labels=False)
        forward = _forward(self.config)
        offsets = {k: jnp.asarray(v, jnp.float32) for k, v in self.offsets.items()}
        chunks = []
        for start in range(0, len(structures), batch_size):
            batch = jax.tree.map(lambda x: x[start:start + batch_size], graphs)
            chunks.append(jax.device_get(forward(self.params, offsets, self.scales, batch)))
        out = {k: np.concatenate([c[k] for c in chunks]).astype(np.float64) for k in chunks[0]}
        return {"born_charges": out["born_charges"][:, :n],
                "raman_tensors": out["raman_tensors"][:, :n],
                "dielectric": out["dielectric"][:, 0]}

    def predict(self, atoms: ase.Atoms) -> dict[str, np.ndarray]:
        """Tensors of one structure: born_charges (n, 3, 3), raman_tensors (n, 3, 3, 3),
        dielectric (3, 3)."""
        return {k: v[0] for k, v in self.predict_many([atoms]).items()}


@functools.lru_cache(maxsize=16)
def _forward(config: DerivativeConfig):
    network = config.network()
    return jax.jit(jax.vmap(lambda p, o, s, g: response(network, p, o, s, g),
                            in_axes=(None, None, None, 0)))


class Training(NamedTuple):
    """Everything :func:`teachlib.train.fit` needs for a derivative model (see
    :func:`setup_training`); kept so that a trained model can time its own training step."""

    loss: Callable            # loss(params, batch) -> (scalar, aux)
    optimizer: Any            # optax optimiser (with its learning-rate schedule)
    params: Any               # initial parameters
    train_graphs: Graph       # stacked, (n_train, ...)
    val_graphs: Graph | None  # stacked, (n_val, ...), or None
    offsets: dict             # per-species means
    scales: dict              # σ per label
    weights: dict             # loss weights
    steps_per_epoch: int


def setup_training(train, val, config: DerivativeConfig, *, epochs: int, batch_size: int = 2,
                   learning_rate: float = 5e-3, weights: dict | None = None, seed: int = 0,
                   padding: Padding | None = None, c_init: float = 0.01) -> tuple[DerivativeConfig,
                                                                                 Training]:
    """The loss, optimiser, initial parameters and data of a training run; arguments as in
    :func:`train_derivative`. Returns the config (with ``avg_num_neighbours`` set from
    ``train`` unless given) and a :class:`Training`; without ``val`` it has no validation data."""
    if config.avg_num_neighbours is None:  # rounded: subsets of one data set share one network
        config = dataclasses.replace(config,
                                     avg_num_neighbours=round(mean_neighbours(config, train), 1))
    val = list(val or [])
    weights = {"born_charges": 1.0, "raman_tensors": 1.0, "dielectric": 0.1} | dict(weights or {})
    padding = padding or common_padding(config, list(train) + list(val))
    offsets = species_offsets(config, train)
    train_graphs = graphs_for(config, train, padding=padding)
    val_graphs = graphs_for(config, val, padding=padding) if val else None
    scales = label_scales(train_graphs, offsets)
    valid_eps = [a.info["dielectric"] for a in train if a.info.get("dielectric_valid", True)]
    eps0 = float(np.trace(np.mean(valid_eps, 0)) / 3) if valid_eps else 1.0

    network = config.network()
    first = jax.tree.map(lambda x: x[0], train_graphs)
    params = {"network": jax.jit(network.init)(jax.random.PRNGKey(seed), first),
              "log_c": jnp.asarray(math.log(c_init), jnp.float32),
              "eps0": jnp.asarray(eps0, jnp.float32)}
    steps_per_epoch = max(1, len(train) // min(batch_size, len(train)))
    schedule = optax.warmup_cosine_decay_schedule(
        learning_rate / 10, learning_rate, warmup_steps=steps_per_epoch,
        decay_steps=max(epochs * steps_per_epoch, steps_per_epoch + 1),
        end_value=learning_rate / 100)
    loss = make_loss(config, offsets, scales, weights)
    return config, Training(loss, optax.adam(schedule), params, train_graphs, val_graphs,
                            offsets, scales, weights, steps_per_epoch)


def train_derivative(train, val, config: DerivativeConfig | None = None, *, epochs: int,
                     batch_size: int = 2, learning_rate: float = 5e-3,
                     weights: dict | None = None, patience: int | None = None, seed: int = 0,
                     padding: Padding | None = None, c_init: float = 0.01,
                     checkpoint_dir=None, progress: bool = True,
                     desc: str = "training") -> tuple[DerivativeModel, FitResult]:
    """Fit the derivative model on ``train`` (ase.Atoms with labels); ``val`` picks the epoch.

    Args:
        train, val: lists of ase.Atoms with ``born_charges``, ``raman_tensors`` and
            ``info["dielectric"]`` (used only where ``info["dielectric_valid"]``). Without
            ``val`` (None) the last epoch's parameters are kept and no validation loss is
            computed (one compilation less).
        config: the architecture; ``avg_num_neighbours`` is set from ``train`` if None.
        epochs, batch_size, patience, seed: as in :func:`teachlib.train.fit`; ``seed`` also
            initialises the parameters.
        learning_rate: peak of a one-epoch warm-up and cosine decay (Adam), as in chapter 4.
        weights: weight of each normalised loss term; default born_charges 1, raman_tensors
            1, dielectric 0.1.
        padding: fixed shapes (default: the largest of ``train`` and ``val``).
        c_init: starting value of c in ε∞ = ε₀ + c·X (Å⁻¹ per unit of R).
        checkpoint_dir: save the training state there every few epochs and resume from it
            when the same run is started again (:func:`teachlib.train.fit`); None: never.

    Returns:
        ``(model, fit result)``; ``model.training`` keeps the :class:`Training` set-up.
    """
    config, training = setup_training(
        train, val, config or DerivativeConfig(), epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, weights=weights, seed=seed, padding=padding, c_init=c_init)
    result = fit(training.loss, training.params, training.train_graphs,
                 val_data=training.val_graphs, epochs=epochs, batch_size=batch_size,
                 optimizer=training.optimizer, patience=patience, seed=seed, has_aux=True,
                 checkpoint_dir=checkpoint_dir, progress=progress, desc=desc)
    info = {"n_train": len(train), "n_val": len(val or []), "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch, "label_scales": training.scales,
            "loss_weights": training.weights, "seed": seed}
    scales = {label: training.scales[label] for label in LABELS}
    return DerivativeModel(config, result.params, training.offsets, scales, info, training), result


def seconds_per_step(loss, optimizer, params, data, *, batch_size: int, seed: int = 0,
                     compiled: bool = False) -> float:
    """Wall seconds per optimiser step: one epoch of :func:`teachlib.train.fit`'s own jitted
    epoch function (a ``lax.scan`` of loss, gradient and update), divided by its steps.

    Args:
        loss, optimizer: as given to ``fit`` (with ``has_aux=True``).
        params, data: parameters and the training data (leading example axis).
        batch_size: examples per step.
        compiled: True if ``fit`` already ran with these very ``loss`` and ``optimizer``
            objects and data shapes: its compiled function is reused (``make_epoch_fn`` is
            cached), so nothing is compiled again. Otherwise one epoch runs first to compile.
    """
    epoch_fn = make_epoch_fn(loss, optimizer, True, None, False)  # fit's very call (cached)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 0)
    data = jax.tree.map(jnp.asarray, data)
    n = jax.tree.leaves(data)[0].shape[0]
    batches = jnp.asarray(epoch_batches(n, min(batch_size, n), seed, 0))   # (steps, batch)
    params = jax.tree.map(jnp.asarray, params)
    state = optimizer.init(params)

    def epoch():
        return epoch_fn(params, state, data, batches, key, jnp.asarray(0))

    if not compiled:
        jax.block_until_ready(epoch())
    start = time.perf_counter()
    jax.block_until_ready(epoch())
    return (time.perf_counter() - start) / batches.shape[0]


def evaluate(model: DerivativeModel, structures, *, padding: Padding | None = None) -> dict:
    """MAE and RMSE of each label over all atoms and components, the relative sum-rule
    violations, and the ε∞ MAE over the valid structures."""
    predictions = model.predict_many(structures, padding=padding)
    out = {}
    for label in LABELS:
        truth = np.stack([a.arrays[label] for a in structures])
        out[f"{label}_mae"] = metrics.mae(predictions[label], truth)
        out[f"{label}_rmse"] = metrics.rmse(predictions[label], truth)
        out[f"{label}_sum_rule"] = metrics.sum_rule_violation(predictions[label])
    valid = [k for k, a in enumerate(structures) if a.info.get("dielectric_valid", True)]
    if valid:
        truth = np.stack([structures[k].info["dielectric"] for k in valid])
        out["dielectric_mae"] = metrics.mae(predictions["dielectric"][valid], truth)
    return out


def learning_curve(snapshots, split, sizes, seeds, config: DerivativeConfig, *, steps: int,
                   batch_size: int = 2, learning_rate: float = 5e-3,
                   weights: dict | None = None, patience: int | None = None,
                   min_epochs: int = 5, c_init: float = 0.01,
                   progress: bool = True) -> list[dict]:
    """Test error against training-set size, one model per (size, seed), as in chapter 4.

    The training sets are the nested seeded subsets of ``split.train`` of
    :func:`teachlib.data.split.training_subset`; each model gets about ``steps`` optimiser
    steps (at least ``min_epochs`` epochs). All models share one network (``avg_num_neighbours``
    from the whole training split, unless ``config`` sets it) and so one compiled prediction.
    The validation set is used only for early stopping (``patience``).

    Returns:
        one dict per model: ``size``, ``seed``, ``epochs``, ``seconds`` and the
        :func:`evaluate` entries.
    """
    if config.avg_num_neighbours is None:
        whole = [snapshots[i] for i in split.train]
        config = dataclasses.replace(config,
                                     avg_num_neighbours=round(mean_neighbours(config, whole), 1))
    val = [snapshots[i] for i in split.val] if patience is not None else None
    test = [snapshots[i] for i in split.test]
    padding = common_padding(config, snapshots)
    rows = []
    for size in sizes:
        for seed in seeds:
            train = [snapshots[i] for i in training_subset(split.train, size, seed=seed)]
            steps_per_epoch = max(1, size // min(batch_size, size))
            epochs = max(min_epochs, math.ceil(steps / steps_per_epoch))
            start = time.perf_counter()
            model, result = train_derivative(
                train, val, config, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, weights=weights, patience=patience, seed=seed,
                padding=padding, c_init=c_init, progress=progress,
                desc=f"{size} snapshots, seed {seed}")
            rows.append({"size": size, "seed": seed, "epochs": result.epochs_run,
                         "seconds": time.perf_counter() - start}
                        | evaluate(model, test, padding=padding))
    return rows
