"""The five baselines of chapter 4, on hand-made perovskites and on the real data."""

from __future__ import annotations

import ase
import ase.build
import numpy as np
import pytest

from teachlib import baselines, metrics
from teachlib.data.split import split_snapshots

CUBIC = dict(scaled_positions=[[0, 0, 0], [.5, .5, .5], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]],
             cell=[4.0] * 3, pbc=True)


def supercell(n=3, *, rng=None, scale=0.1):
    atoms = ase.Atoms("BaTiO3", **CUBIC).repeat(n)
    if rng is not None:
        atoms.positions += scale * rng.normal(size=atoms.positions.shape)
    return atoms


def test_ideal_sites_and_their_types():
    atoms = supercell(2)
    sites = baselines.perovskite_sites(atoms)
    np.testing.assert_allclose(sites.displacements, 0, atol=1e-12)
    types, counts = np.unique(sites.site_types, return_counts=True)
    assert dict(zip(types, counts)) == {"Ba": 8, "Ti": 8, "O_x": 8, "O_y": 8, "O_z": 8}
    o_x = np.flatnonzero(sites.site_types == "O_x")[0]
    ti = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == "Ti")
    vectors = atoms.get_distances(o_x, ti, mic=True, vector=True)          # (n_Ti, 3)
    nearest = vectors[np.linalg.norm(vectors, axis=1) < 2.1]
    np.testing.assert_allclose(np.abs(nearest), [[2.0, 0, 0]] * 2)  # O_x's Ti–O–Ti runs along x


def test_sites_refuse_what_is_not_a_perovskite_snapshot():
    atoms = supercell(2)
    atoms.positions[3] += [0.7, 0, 0]
    with pytest.raises(ValueError, match="atom 3 .* a/8"):
        baselines.perovskite_sites(atoms)
    atoms.positions[3] += [0.8, 0, 0]  # now nearer another kind of site
    with pytest.raises(ValueError, match="atom 3 \\(O\\) is not on a O site"):
        baselines.perovskite_sites(atoms)
    with pytest.raises(ValueError, match="only Ba, Ti, O"):
        baselines.perovskite_sites(ase.Atoms("SrTiO3", **CUBIC))
    with pytest.raises(ValueError, match="cubic"):
        baselines.perovskite_sites(ase.Atoms("BaTiO3", **(CUBIC | {"cell": [4, 4, 5]})))


@pytest.mark.parametrize("site_type, radius, count", [
    ("Ti", 2.1, 6), ("Ti", 3.6, 14), ("Ba", 3.0, 12), ("O_x", 2.1, 2), ("O_z", 3.0, 14)])
def test_neighbour_shells(site_type, radius, count):
    offsets = baselines.neighbour_offsets(site_type, radius, 4.0)
    assert len(offsets) == count
    assert not (offsets == 0).all(1).any()
    if site_type == "O_x" and radius < 3:
        np.testing.assert_array_equal(offsets, [[-1, 0, 0], [1, 0, 0]])


def labelled(atoms, weights):
    """Attach labels that are exactly linear in the nearest-neighbour relative displacements."""
    sites = baselines.perovskite_sites(atoms)
    for label, shape in baselines.SHAPES.items():
        values = np.zeros((len(atoms), *shape))
        for t in baselines.SITE_TYPES:
            idx = np.flatnonzero(sites.site_types == t)
            x = baselines.neighbour_features(sites, baselines.neighbour_offsets(t, 2.1, 4.0), idx)
            bias, w = weights[label, t]
            values[idx] = (bias + x @ w).reshape(len(idx), *shape)
        atoms.arrays[label] = values
    return atoms


def test_linear_baseline_recovers_a_linear_truth():
    rng = np.random.default_rng(0)
    weights = {}
    for label, shape in baselines.SHAPES.items():
        for t in baselines.SITE_TYPES:
            n_in = 3 * len(baselines.neighbour_offsets(t, 2.1, 4.0))
            weights[label, t] = (rng.normal(size=np.prod(shape)), rng.normal(size=(n_in, np.prod(shape))))
    train = [labelled(supercell(rng=rng), weights) for _ in range(4)]
    val = [labelled(supercell(rng=rng), weights)]
    test = labelled(supercell(rng=rng), weights)
    model = baselines.LinearNeighbours.fit(train, val, radii=(2.1, 3.0), alphas=(1e-9, 1e-2))
    assert model.radius["born_charges"] == 2.1
    prediction = model.predict(test)
    for label in baselines.LABELS:
        np.testing.assert_allclose(prediction[label], test.arrays[label], atol=1e-6)


def test_simple_baselines_on_hand_made_labels():
    rng = np.random.default_rng(1)
    snapshots = [supercell(1, rng=rng) for _ in range(3)]
    for k, atoms in enumerate(snapshots):
        atoms.arrays["born_charges"] = np.full((5, 3, 3), float(k))
        atoms.arrays["raman_tensors"] = np.full((5, 3, 3, 3), -float(k))
    assert baselines.Zero().predict(snapshots[0])["raman_tensors"].shape == (5, 3, 3, 3)
    nominal = baselines.NominalCharges().predict(snapshots[0])["born_charges"]
    np.testing.assert_allclose(np.trace(nominal, axis1=1, axis2=2), [6, 12, -6, -6, -6])
    np.testing.assert_allclose(nominal.sum(0), 0)  # formal charges are neutral
    species = baselines.SpeciesMean.fit(snapshots).predict(snapshots[0])
    np.testing.assert_allclose(species["born_charges"], 1.0)
    site = baselines.SiteMean.fit(snapshots)
    np.testing.assert_allclose(site.predict(snapshots[1])["raman_tensors"], -1.0)
    with pytest.raises(ValueError, match="atom order"):
        site.predict(supercell(1)[[1, 0, 2, 3, 4]])
    with pytest.raises(ValueError, match="species"):
        baselines.SpeciesMean.fit(snapshots).predict(ase.Atoms("Sr"))


def test_baselines_on_batio3_reproduce_the_measured_errors(batio3):
    """Seed-0 split, 40/5/5: the figures quoted in the chapter-4 issue."""
    split = split_snapshots(len(batio3), seed=0)
    train, val, test = ([batio3[i] for i in part] for part in split)
    models = {"species": baselines.SpeciesMean.fit(train), "site": baselines.SiteMean.fit(train),
              "linear": baselines.LinearNeighbours.fit(train, val)}
    errors = {}
    for name, model in models.items():
        prediction = baselines.predict_all(model, test)
        errors[name] = {label: metrics.mae(prediction[label], baselines.stack_labels(test, label))
                        for label in baselines.LABELS}
    np.testing.assert_allclose(errors["species"]["born_charges"], 0.36, atol=0.01)
    np.testing.assert_allclose(errors["site"]["born_charges"], 0.11, atol=0.015)
    np.testing.assert_allclose(errors["linear"]["born_charges"], 0.065, atol=0.01)
    np.testing.assert_allclose(errors["species"]["raman_tensors"], 1.51, atol=0.05)
    assert errors["linear"]["raman_tensors"] < 0.6
