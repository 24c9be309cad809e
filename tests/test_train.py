"""The training loop: it learns, it is deterministic, it stops early, and it resumes exactly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from teachlib import train


def make_problem(seed=0, n=96):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.tanh(x @ rng.normal(size=(4, 1))).astype(np.float32) + 0.05 * rng.normal(size=(n, 1)).astype(np.float32)
    params = {"w1": 0.5 * rng.normal(size=(4, 16)).astype(np.float32), "w2": 0.5 * rng.normal(size=(16, 1)).astype(np.float32)}

    def loss(params, batch):
        prediction = jnp.tanh(batch["x"] @ params["w1"]) @ params["w2"]
        return jnp.mean((prediction - batch["y"]) ** 2)

    data = {"x": x, "y": y}
    return loss, params, {k: v[:64] for k, v in data.items()}, {k: v[64:] for k, v in data.items()}


def test_learns_and_keeps_best_validation_params():
    loss, params, train_data, val_data = make_problem()
    before = float(loss(params, val_data))
    result = train.fit(loss, params, train_data, val_data=val_data, epochs=60, batch_size=16,
                       learning_rate=1e-2, progress=False)
    assert result.history["val_loss"][result.best_epoch] == min(result.history["val_loss"])
    np.testing.assert_allclose(float(loss(result.params, val_data)), min(result.history["val_loss"]), rtol=1e-5)
    assert min(result.history["val_loss"]) < 0.3 * before
    assert len(result.history["train_loss"]) == result.epochs_run == 60


def test_deterministic_for_a_seed_and_different_across_seeds():
    loss, params, train_data, val_data = make_problem()
    runs = [train.fit(loss, params, train_data, epochs=5, batch_size=8, seed=s, progress=False) for s in (1, 1, 2)]
    np.testing.assert_array_equal(runs[0].params["w1"], runs[1].params["w1"])
    assert not np.array_equal(runs[0].params["w1"], runs[2].params["w1"])


def test_early_stopping():
    loss, params, train_data, val_data = make_problem()
    result = train.fit(loss, params, train_data, val_data=val_data, epochs=2000, batch_size=64,
                       learning_rate=5e-2, patience=5, progress=False)
    assert result.stopped_early and result.epochs_run < 2000
    assert result.epochs_run - 1 - result.best_epoch == 5


def test_resume_after_interruption_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    loss, params, train_data, val_data = make_problem()
    settings = dict(val_data=val_data, epochs=20, batch_size=16, learning_rate=1e-2, seed=3, progress=False)
    reference = train.fit(loss, params, train_data, **settings)

    original = train.epoch_batches

    def interrupt_at_epoch_13(n, batch_size, seed, epoch, steps=None):
        if epoch == 13:
            raise KeyboardInterrupt  # the reader's laptop lid closes, Colab disconnects ...
        return original(n, batch_size, seed, epoch, steps)

    monkeypatch.setattr(train, "epoch_batches", interrupt_at_epoch_13)
    with pytest.raises(KeyboardInterrupt):
        train.fit(loss, params, train_data, checkpoint_dir=tmp_path, checkpoint_every=5, **settings)
    monkeypatch.setattr(train, "epoch_batches", original)
    seen = []
    monkeypatch.setattr(train, "epoch_batches", lambda *a: seen.append(a[3]) or original(*a))
    resumed = train.fit(loss, params, train_data, checkpoint_dir=tmp_path, checkpoint_every=5, **settings)
    assert seen[0] == 10  # resumed from the checkpoint written after epoch 9, not from scratch
    assert resumed.history == reference.history
    for name in params:
        np.testing.assert_array_equal(resumed.params[name], reference.params[name])


def test_checkpoint_of_another_run_is_refused(tmp_path):
    loss, params, train_data, val_data = make_problem()
    train.fit(loss, params, train_data, epochs=2, batch_size=16, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another training run"):
        train.fit(loss, params, train_data, epochs=3, batch_size=16, checkpoint_dir=tmp_path, progress=False)


def test_aux_values_are_recorded():
    loss, params, train_data, _ = make_problem()

    def loss_with_aux(params, batch):
        value = loss(params, batch)
        return value, {"rmse": jnp.sqrt(value)}

    result = train.fit(loss_with_aux, params, train_data, epochs=3, batch_size=16, has_aux=True, progress=False)
    np.testing.assert_allclose(result.history["train_rmse"][0] ** 2, result.history["train_loss"][0], rtol=0.2)


def test_bad_input():
    loss, params, train_data, _ = make_problem()
    with pytest.raises(ValueError, match="same leading"):
        train.fit(loss, params, {"x": train_data["x"], "y": train_data["y"][:10]}, epochs=1, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="needs val_data"):
        train.fit(loss, params, train_data, epochs=1, batch_size=4, patience=3, progress=False)
    poisoned = {"x": train_data["x"].copy(), "y": train_data["y"]}
    poisoned["x"][3, 1] = np.nan
    with pytest.raises(FloatingPointError, match="NaN"):
        train.fit(loss, params, poisoned, epochs=3, batch_size=64, progress=False)


def test_epoch_batches_cover_examples_without_repetition():
    batches = train.epoch_batches(50, 8, seed=0, epoch=4)
    assert batches.shape == (6, 8) and len(np.unique(batches)) == 48
    assert not np.array_equal(batches, train.epoch_batches(50, 8, seed=0, epoch=5))
    jax.block_until_ready(jnp.asarray(batches))


DATA_PARALLEL_SCRIPT = """
import json, jax
import sys; sys.path.insert(0, {tests!r})
from test_train import make_problem
from teachlib import train
loss, params, train_data, val_data = make_problem()
result = train.fit(loss, params, train_data, val_data=val_data, epochs=15, batch_size=16,
                   learning_rate=1e-2, progress=False)
mesh = train.data_parallel_mesh()
print(json.dumps({{"devices": jax.local_device_count(), "mesh": None if mesh is None else mesh.size,
                  "train": result.history["train_loss"], "val": result.history["val_loss"]}}))
"""


def test_data_parallel_over_two_cpu_devices_matches_one_device():
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = DATA_PARALLEL_SCRIPT.format(tests=str(Path(__file__).parent))
    runs = {}
    for devices in (1, 2):
        env = os.environ | {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
                            "JAX_PLATFORMS": "cpu", "TEACHLIB_PROGRESS": "off"}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        runs[devices] = json.loads(out.stdout.strip().splitlines()[-1])
    assert runs[1]["devices"] == 1 and runs[1]["mesh"] is None
    assert runs[2]["devices"] == 2 and runs[2]["mesh"] == 2
    np.testing.assert_allclose(runs[2]["train"], runs[1]["train"], rtol=1e-5)
    np.testing.assert_allclose(runs[2]["val"], runs[1]["val"], rtol=1e-5)


def test_step_info_gives_fresh_keys_the_epoch_and_the_phase():
    data = {"x": np.zeros((8, 1), np.float32)}

    def loss(params, batch, info):
        noise = jax.random.normal(info.key, ())
        # training: a value that depends on the step's key and the epoch; validation: fixed
        value = jnp.where(info.training, noise + 100.0 * info.epoch, -1.0)
        return (params["w"] - 1.0) ** 2, {"seen": value}

    result = train.fit(loss, {"w": 0.0}, data, val_data=data, epochs=3, batch_size=4, seed=5,
                       has_aux=True, step_info=True, progress=False)
    seen = result.history["train_seen"]
    assert [int(round(v / 100)) for v in seen] == [0, 1, 2]  # the epoch reaches the loss
    assert len({round(v % 100, 6) for v in seen}) == 3  # new noise every epoch
    assert result.history["val_seen"] == [-1.0, -1.0, -1.0]  # validation: training is False
    again = train.fit(loss, {"w": 0.0}, data, val_data=data, epochs=3, batch_size=4, seed=5,
                      has_aux=True, step_info=True, progress=False)
    assert again.history == result.history  # keys follow from the seed
