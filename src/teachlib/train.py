"""The one training loop of the book: optax, mini-batches, early stopping, checkpoints.

Every chapter that trains a model calls :func:`fit` with a loss function and its data. Data is
a pytree of arrays whose leading axis indexes examples (all with fixed shapes, so that the step
compiles once). Each epoch shuffles the examples (the order follows from ``seed`` and the epoch
number alone), runs its mini-batches inside one jitted ``lax.scan``, evaluates the validation
loss, and keeps the parameters with the best validation loss. With ``checkpoint_dir`` the state
is saved (msgpack, no pickle) every few epochs, and a re-run resumes from the last checkpoint
with exactly the result of an uninterrupted run.

>>> import jax.numpy as jnp, numpy as np
>>> x = np.linspace(-1, 1, 64)[:, None]
>>> data = {"x": x, "y": 3.0 * x + 0.5}
>>> def loss(params, batch):
...     prediction = batch["x"] * params["w"] + params["b"]
...     return jnp.mean((prediction - batch["y"]) ** 2)
>>> result = fit(loss, {"w": 0.0, "b": 0.0}, data, epochs=200, batch_size=16,
...              learning_rate=0.05, progress=False)
>>> round(float(result.params["w"]), 2), round(float(result.params["b"]), 2)
(3.0, 0.5)
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from teachlib.progress import progress_bar

CHECKPOINT_FILE = "checkpoint.msgpack"


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        params: the parameters with the best validation loss (the last ones without validation).
        history: per-epoch lists, ``"train_loss"`` and (with validation) ``"val_loss"``, plus the
            epoch means of any auxiliary values the loss returned (``"train_<name>"``).
        best_epoch: the epoch (0-based) whose parameters are returned.
        epochs_run: how many epochs ran in total (resumed epochs included).
        stopped_early: whether early stopping ended training before ``epochs``.
        seconds: wall-clock time of the epochs run in this call (compile included).
    """

    params: Any
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    epochs_run: int = 0
    stopped_early: bool = False
    seconds: float = 0.0


def num_examples(data) -> int:
    """The common leading dimension of every array in ``data``."""
    sizes = {np.shape(leaf)[0] for leaf in jax.tree.leaves(data)}
    if len(sizes) != 1:
        raise ValueError(f"every array in the data needs the same leading (example) axis; got sizes {sorted(sizes)}")
    return sizes.pop()


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, steps: int | None = None) -> np.ndarray:
    """Shuffled example indices for one epoch, shape (n_steps, batch_size).

    By default an epoch is one pass over the data: ``n // batch_size`` batches of one random
    permutation, the ``n % batch_size`` examples left over dropped for this epoch (another
    shuffle, another leftover), which keeps every batch the same shape. With ``steps`` an epoch
    is that many batches instead, drawn from as many successive permutations as it takes (for
    small data sets, where a pass is only a step or two). The order depends only on
    ``(seed, epoch)``, so a resumed run sees the same batches.

    >>> epoch_batches(10, 4, seed=0, epoch=0).shape
    (2, 4)
    >>> epoch_batches(10, 4, seed=0, epoch=0, steps=7).shape
    (7, 4)
    """
    if steps is None:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        n_batches = n // batch_size
        return order[: n_batches * batch_size].reshape(n_batches, batch_size)
    per_pass = n // batch_size
    passes = [np.random.default_rng([seed, epoch, p]).permutation(n)[: per_pass * batch_size]
              for p in range(-(-steps // per_pass))]
    return np.concatenate(passes)[: steps * batch_size].reshape(steps, batch_size)


class StepInfo(NamedTuple):
    """What a loss function gets with ``fit(..., step_info=True)``, besides params and batch.

    Attributes:
        key: a PRNG key of its own for every training step (from ``seed``, the epoch and the
            step), and one fixed key for validation: noise for a VAE, dropout, ...
        epoch: the epoch number (a traced integer: use it in ``jnp`` arithmetic, e.g. a
            KL weight that grows over the first epochs).
        training: True in training steps, False when the validation loss is evaluated.
    """

    key: jax.Array
    epoch: jax.Array
    training: bool


def _full_loss(loss_fn, has_aux, step_info):
    """``loss_fn`` as ``(params, batch, info) -> (loss, aux)`` whatever its own form."""
    if step_info:
        call = loss_fn
    else:
        call = lambda params, batch, info: loss_fn(params, batch)  # noqa: E731
    if has_aux:
        return call
    return lambda params, batch, info: (call(params, batch, info), {})


def data_parallel_mesh():
    """A one-axis mesh ``("data",)`` over all local devices, or None with a single device.

    On a machine with several GPUs (or a CPU run with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) :func:`fit` splits every batch
    across this mesh and keeps the parameters replicated; XLA inserts the gradient all-reduce.
    The mesh covers this process's devices only. Across several hosts one would call
    ``jax.distributed.initialize()`` in every process, build the mesh over ``jax.devices()``
    and feed each process's slice of a batch with ``jax.make_array_from_process_local_data``
    (see the performance appendix); :func:`fit` does not do that itself.
    """
    devices = jax.local_devices()
    if len(devices) < 2:
        return None
    return jax.sharding.Mesh(np.array(devices), ("data",))


@functools.lru_cache(maxsize=64)
def make_epoch_fn(loss_fn, optimizer, has_aux: bool = False, mesh=None, step_info: bool = False):
    """A jitted function that runs one epoch of optimiser steps over given batch indices.

    Cached: calls of :func:`fit` with the same ``loss_fn`` and ``optimizer`` objects share one
    compiled function for each shape of the data (e.g. several seeds of one experiment).
    With a ``mesh``, each batch is split along its first axis across the mesh's devices.

    ``epoch(params, opt_state, data, batches, key, epoch) -> (params, opt_state, mean_loss,
    mean_aux)`` with ``batches`` of shape (n_batches, batch_size); ``key`` is split into one
    key per step (used with ``step_info``).
    """
    grad_fn = jax.value_and_grad(_full_loss(loss_fn, has_aux, step_info), has_aux=True)

    def step(carry, inputs):
        params, opt_state, data, epoch_index = carry
        indices, key = inputs
        batch = jax.tree.map(lambda leaf: leaf[indices], data)  # (batch_size, ...)
        if mesh is not None:  # data parallel: each device gets batch_size / n_devices examples
            split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
            batch = jax.lax.with_sharding_constraint(batch, split)
        (loss, aux), grads = grad_fn(params, batch, StepInfo(key, epoch_index, True))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state, data, epoch_index), (loss, aux)

    @jax.jit
    def epoch(params, opt_state, data, batches, key, epoch_index):
        keys = jax.random.split(key, batches.shape[0])
        (params, opt_state, _, _), (losses, aux) = jax.lax.scan(
            step, (params, opt_state, data, epoch_index), (batches, keys))
        return params, opt_state, losses.mean(), jax.tree.map(jnp.mean, aux)

    return epoch


@functools.lru_cache(maxsize=64)
def make_eval_fn(loss_fn, has_aux: bool = False, step_info: bool = False):
    """A jitted ``evaluate(params, data, key, epoch) -> (loss, aux)`` over all of ``data`` at once."""
    full = _full_loss(loss_fn, has_aux, step_info)
    return jax.jit(lambda params, data, key, epoch: full(params, data, StepInfo(key, epoch, False)))


def fit(
    loss_fn: Callable,
    params,
    train_data,
    *,
    val_data=None,
    epochs: int,
    batch_size: int,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float = 1e-3,
    steps_per_epoch: int | None = None,
    patience: int | None = None,
    seed: int = 0,
    has_aux: bool = False,
    step_info: bool = False,
    checkpoint_dir=None,
    checkpoint_every: int = 10,
    data_parallel: bool | None = None,
    progress: bool = True,
    desc: str = "training",
) -> FitResult:
    """Train ``params`` to minimise ``loss_fn`` with mini-batches; see the module docstring.

    Args:
        loss_fn: ``loss_fn(params, batch) -> scalar`` (or ``(scalar, dict)`` with ``has_aux``);
            ``batch`` has the structure of ``train_data`` with ``batch_size`` examples.
        params: initial parameters (any pytree).
        train_data: pytree of arrays, leading axis = examples.
        val_data: like ``train_data``; evaluated whole after every epoch. Needed for early
            stopping and for choosing the best parameters.
        epochs: maximum number of epochs.
        batch_size: examples per step (capped at the number of training examples).
        optimizer: an optax optimiser; default ``optax.adam(learning_rate)``.
        learning_rate: the default optimiser's learning rate.
        steps_per_epoch: optimiser steps per epoch (None: one pass over the training data).
            Validation, early stopping and checkpoints happen once per epoch.
        patience: stop after this many epochs without a better validation loss (None: never).
        seed: fixes the order of the examples in every epoch (and the keys of ``step_info``).
        has_aux: ``loss_fn`` returns ``(loss, aux)``; the epoch means of the ``aux`` values are
            recorded as ``train_<name>`` (and ``val_<name>`` on the validation data).
        step_info: call ``loss_fn(params, batch, info)`` with a :class:`StepInfo` (a fresh PRNG
            key per step, the epoch, whether it is training), e.g. for a VAE's noise.
        checkpoint_dir: where to save and resume from (None: no checkpoints).
        checkpoint_every: epochs between checkpoints (the last epoch is always saved).
        data_parallel: split batches across all local devices (see :func:`data_parallel_mesh`);
            None: whenever there are several devices and they divide ``batch_size``.
        progress: show a progress bar.
    """
    n = num_examples(train_data)
    if n == 0:
        raise ValueError("no training examples")
    if patience is not None and val_data is None:
        raise ValueError("early stopping (patience=...) needs val_data")
    batch_size = min(batch_size, n)
    optimizer = optimizer or _adam(learning_rate)
    train_data = jax.tree.map(jnp.asarray, train_data)
    val_data = None if val_data is None else jax.tree.map(jnp.asarray, val_data)
    params = jax.tree.map(jnp.asarray, params)

    state = {
        "params": params,
        "opt_state": optimizer.init(params),
        "best_params": params,
        "best_val": np.inf,
        "best_epoch": 0,
        "epoch": 0,  # the next epoch to run
        "bad_epochs": 0,
        "history": {},
    }
    run_id = _run_id(train_data, params, epochs=epochs, batch_size=batch_size, seed=seed,
                     steps_per_epoch=steps_per_epoch)
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_FILE
    if checkpoint is not None and checkpoint.exists():
        state = _load_checkpoint(checkpoint, state, run_id)

    mesh = data_parallel_mesh() if data_parallel in (None, True) else None
    if mesh is not None and batch_size % mesh.size:
        if data_parallel:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {mesh.size} devices")
        mesh = None  # automatic mode: fall back to one device rather than fail
    if mesh is not None:
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        state["params"], state["opt_state"], train_data = jax.device_put(
            (state["params"], state["opt_state"], train_data), replicated)
    epoch_fn = make_epoch_fn(loss_fn, optimizer, has_aux, mesh, step_info)
    eval_fn = make_eval_fn(loss_fn, has_aux, step_info) if val_data is not None else None
    base_key = jax.random.PRNGKey(seed)
    train_key, eval_key = jax.random.fold_in(base_key, 0), jax.random.fold_in(base_key, 1)
    history = state["history"]
    start, stopped_early = time.perf_counter(), False
    bar = progress_bar(total=epochs, initial=state["epoch"], desc=desc, disable=not progress, unit="epoch")
    with bar:
        while state["epoch"] < epochs:
            epoch = state["epoch"]
            batches = jnp.asarray(epoch_batches(n, batch_size, seed, epoch, steps_per_epoch))
            state["params"], state["opt_state"], loss, aux = epoch_fn(
                state["params"], state["opt_state"], train_data, batches,
                jax.random.fold_in(train_key, epoch), jnp.asarray(epoch))
            logs = {"train_loss": float(loss)} | {f"train_{k}": float(v) for k, v in aux.items()}
            if eval_fn is not None:
                val_loss, val_aux = eval_fn(state["params"], val_data, eval_key, jnp.asarray(epoch))
                logs["val_loss"] = float(val_loss)
                logs |= {f"val_{k}": float(jnp.mean(v)) for k, v in val_aux.items()}
                if logs["val_loss"] < state["best_val"]:
                    state.update(best_val=logs["val_loss"], best_params=state["params"], best_epoch=epoch, bad_epochs=0)
                else:
                    state["bad_epochs"] += 1
            else:
                state.update(best_params=state["params"], best_epoch=epoch)
            if not np.isfinite(logs["train_loss"]):
                raise FloatingPointError(f"the training loss became {logs['train_loss']} in epoch {epoch}; "
                                         "lower the learning rate or check the data for NaN/inf")
            for name, value in logs.items():
                history.setdefault(name, []).append(value)
            state["epoch"] = epoch + 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if k in ("train_loss", "val_loss")})
            stopped_early = patience is not None and state["bad_epochs"] >= patience
            if checkpoint is not None and (state["epoch"] % checkpoint_every == 0 or stopped_early
                                           or state["epoch"] == epochs):
                _save_checkpoint(checkpoint, state, run_id)
            if stopped_early:
                break
    return FitResult(
        params=state["best_params"],
        history=history,
        best_epoch=int(state["best_epoch"]),
        epochs_run=int(state["epoch"]),
        stopped_early=stopped_early,
        seconds=time.perf_counter() - start,
    )


@functools.lru_cache(maxsize=16)
def _adam(learning_rate: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate)  # one object per rate, so compiled steps are reused


def _run_id(train_data, params, **settings) -> str:
    """A fingerprint of what a checkpoint belongs to: data, parameter shapes and settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for leaf in jax.tree.leaves((train_data, params)):
        digest.update(str((np.shape(leaf), np.asarray(leaf).dtype)).encode())
    for leaf in jax.tree.leaves(train_data):
        digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes()[:1 << 16])
    return digest.hexdigest()[:16]


def _save_checkpoint(path: Path, state: dict, run_id: str) -> None:
    """Write the training state atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(state, run_id=run_id, history=json.dumps(state["history"]))
    data = flax.serialization.msgpack_serialize(flax.serialization.to_state_dict(jax.device_get(payload)))
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)


def _load_checkpoint(path: Path, template: dict, run_id: str) -> dict:
    raw = flax.serialization.msgpack_restore(path.read_bytes())
    if raw.get("run_id") != run_id:
        raise ValueError(
            f"The checkpoint {path} belongs to another training run (other data, model or "
            f"settings). Delete it, or give this run another checkpoint_dir.")
    target = dict(template, history="{}")
    target.pop("run_id", None)
    raw.pop("run_id")
    state = flax.serialization.from_state_dict(target, raw)
    state["history"] = json.loads(state["history"])
    state["epoch"], state["bad_epochs"], state["best_epoch"] = (
        int(state["epoch"]), int(state["bad_epochs"]), int(state["best_epoch"]))
    state["best_val"] = float(state["best_val"])
    return jax.tree.map(lambda x: jnp.asarray(x) if isinstance(x, np.ndarray) else x, state)
