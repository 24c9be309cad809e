"""The direct response model: data preparation, training, saving, loading and predicting."""

from __future__ import annotations

import dataclasses
import json

import ase
import jax
import numpy as np
import pytest

from teachlib import response
from teachlib.tensors import BORN_CHARGE, RAMAN

# small enough to compile quickly; l = 2 in both parities as the chapter's network
TINY = response.ResponseConfig(hidden_irreps="4x0e + 2x1o + 2x1e + 2x2e + 2x2o", n_layers=2,
                               cutoff=4.5, n_basis=4, radial_hidden=(4,), readout_mul=2)
PEROVSKITE = dict(cell=[4.0, 4.0, 4.0], pbc=True,
                  scaled_positions=[[0, 0, 0], [.5, .5, .5], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])


def labelled_cell(seed: int) -> ase.Atoms:
    """A rattled 2x2x2 BaTiO3 cell with made-up labels of the right shapes."""
    rng = np.random.default_rng(seed)
    atoms = ase.Atoms("BaTiO3", **PEROVSKITE).repeat(2)
    atoms.rattle(stdev=0.05, seed=seed)
    q = np.array([{"Ba": 2.7, "Ti": 6.2, "O": -3.0}[s] for s in atoms.get_chemical_symbols()])
    atoms.arrays["born_charges"] = q[:, None, None] * np.eye(3) + 0.1 * rng.normal(size=(40, 3, 3))
    atoms.arrays["raman_tensors"] = RAMAN.symmetrize(rng.normal(size=(40, 3, 3, 3)))
    return atoms


@pytest.fixture(scope="module")
def trained():
    train = [labelled_cell(k) for k in range(3)]
    val = [labelled_cell(10)]
    model, result = response.train_response(train, val, TINY, epochs=2, batch_size=2,
                                            progress=False, seed=0)
    return model, result, train


def test_config_round_trip_and_checks():
    data = json.loads(json.dumps(TINY.to_dict()))
    assert response.ResponseConfig.from_dict(data) == TINY
    with pytest.raises(ValueError, match="labels"):
        response.ResponseConfig(labels=("dielectric",))
    with pytest.raises(ValueError, match="unknown config entries"):
        response.ResponseConfig.from_dict(data | {"depth": 3})


def test_graphs_carry_labels_shifted_by_the_species_mean():
    cells = [labelled_cell(k) for k in range(2)]
    offsets = response.species_offsets(TINY, cells)
    ti_mean = np.mean([c.arrays["born_charges"][1::5] for c in cells], axis=(0, 1))  # Ti: 1 of 5
    # only the rotation-invariant part of the mean: isotropic for Z*, nothing for Raman
    np.testing.assert_allclose(offsets["born_charges"][1], np.trace(ti_mean) / 3 * np.eye(3))
    np.testing.assert_allclose(offsets["raman_tensors"], 0, atol=1e-12)
    graphs = response.graphs_for(TINY, cells, offsets=offsets)
    assert graphs.positions.shape[0] == 2 and graphs.node_data["raman_tensors"].shape[1:] == (41, 3, 3, 3)
    species = graphs.species[0, :40]
    np.testing.assert_allclose(graphs.node_data["born_charges"][0, :40],
                               cells[0].arrays["born_charges"] - offsets["born_charges"][species],
                               atol=1e-6)
    np.testing.assert_allclose(graphs.node_data["born_charges"][:, 40], 0)  # the padding node


def test_training_lowers_the_loss_and_records_what_it_did(trained):
    model, result, _ = trained
    assert result.epochs_run == 2
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]
    assert set(model.info["label_scales"]) == {"born_charges", "raman_tensors"}
    assert model.config.avg_num_neighbours > 1


def test_predictions_follow_atom_order_and_symmetry(trained):
    model, _, train = trained
    atoms = train[0]
    prediction = model.predict(atoms)
    assert prediction["born_charges"].shape == (40, 3, 3)
    assert prediction["raman_tensors"].shape == (40, 3, 3, 3)
    np.testing.assert_allclose(prediction["raman_tensors"],
                               prediction["raman_tensors"].swapaxes(-1, -2), atol=1e-6)
    # renumbering the atoms renumbers the predictions
    order = np.random.default_rng(0).permutation(len(atoms))
    renumbered = model.predict(atoms[order])
    np.testing.assert_allclose(renumbered["born_charges"], prediction["born_charges"][order], atol=1e-5)
    # rotating and mirroring the structure rotates and mirrors the tensors
    g = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    g = -g if np.linalg.det(g) > 0 else g                                # improper
    turned = atoms.copy()
    turned.positions, turned.cell = atoms.positions @ g.T, atoms.cell.array @ g.T
    after = model.predict(turned)
    for label, tensor in [("born_charges", BORN_CHARGE), ("raman_tensors", RAMAN)]:
        expected = tensor.rotate(prediction[label], g)
        np.testing.assert_allclose(after[label], expected, atol=1e-4 * np.abs(expected).max())


def test_save_and_load_round_trip(trained, tmp_path):
    model, _, train = trained
    model.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "params.msgpack"]
    loaded = response.load_model(tmp_path / "model")
    assert loaded.config == model.config
    assert loaded.scales == model.scales and model.scales["raman_tensors"] > 0.1
    for label, value in model.predict(train[1]).items():
        np.testing.assert_allclose(loaded.predict(train[1])[label], value, atol=1e-6)


def test_load_refuses_damaged_or_foreign_folders(trained, tmp_path):
    model, _, _ = trained
    with pytest.raises(FileNotFoundError, match="config.json"):
        response.load_model(tmp_path)
    folder = model.save(tmp_path / "model")
    other = dataclasses.replace(model.config, hidden_irreps="6x0e + 2x1o + 2x1e + 2x2e + 2x2o")
    document = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(document | {"config": other.to_dict()}))
    with pytest.raises(ValueError, match="does not fit the architecture"):
        response.load_model(folder)
    (folder / "config.json").write_text(json.dumps(document | {"format": "pickle"}))
    with pytest.raises(ValueError, match="format"):
        response.load_model(folder)


def test_predict_refuses_other_elements(trained):
    model, _, _ = trained
    with pytest.raises(ValueError, match="Sr.*trained on Ba, Ti, O"):
        model.predict(ase.Atoms("SrTiO3", **PEROVSKITE))
    with pytest.raises(TypeError, match="predict_many"):
        model.predict([ase.Atoms("BaTiO3", **PEROVSKITE)])


def test_epochs_for_gives_about_the_same_number_of_steps():
    for size in (1, 2, 5, 10, 20, 40):
        epochs = response.epochs_for(size, steps=200, batch_size=2, min_epochs=1)
        steps_per_epoch = max(1, size // 2)
        assert 200 <= epochs * steps_per_epoch < 200 + steps_per_epoch


def test_training_resumes_from_its_checkpoint(trained, tmp_path, monkeypatch):
    """With ``checkpoint_dir`` a second identical call resumes from the saved state."""
    from teachlib import train as training

    model, result, train = trained
    val = [labelled_cell(10)]
    first, _ = response.train_response(train, val, TINY, epochs=2, batch_size=2, progress=False,
                                       seed=0, checkpoint_dir=tmp_path)
    assert (tmp_path / training.CHECKPOINT_FILE).is_file()
    for leaf, expected in zip(jax.tree.leaves(first.params), jax.tree.leaves(model.params)):
        np.testing.assert_array_equal(leaf, expected)  # checkpointing changes nothing
    loads = []
    original = training._load_checkpoint
    monkeypatch.setattr(training, "_load_checkpoint",
                        lambda *args: loads.append(args) or original(*args))
    again, again_result = response.train_response(train, val, TINY, epochs=2, batch_size=2,
                                                  progress=False, seed=0, checkpoint_dir=tmp_path)
    assert len(loads) == 1
    for leaf, expected in zip(jax.tree.leaves(again.params), jax.tree.leaves(first.params)):
        np.testing.assert_array_equal(leaf, expected)
    assert again_result.history == result.history
