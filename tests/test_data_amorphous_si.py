"""Tests of teachlib.data.amorphous_si: the shipped a-Si cells and their structure."""

import json
from importlib.resources import files

import numpy as np

from teachlib import silicon
from teachlib.data import load_asi


def test_cells_ship_with_the_package_at_the_right_density():
    cells = load_asi()
    assert 4 <= len(cells) <= 8
    for atoms in cells:
        assert len(atoms) == 512 and atoms.pbc.all() and set(atoms.get_chemical_symbols()) == {"Si"}
        grams = 512 * silicon.MASS_SI / 6.02214076e23
        np.testing.assert_allclose(grams / (atoms.get_volume() * 1e-24), 2.30, rtol=1e-5)


def test_cells_are_amorphous_tetrahedral_networks():
    for atoms in load_asi():
        s = silicon.structure_summary(atoms)
        assert s["fourfold_fraction"] > 0.9
        np.testing.assert_allclose([s["coordination"], s["angle_mean_deg"]], [4.0, 109.2], atol=0.5)
        np.testing.assert_allclose(s["coordination"], 4.0, atol=0.05)
        assert 9.0 < s["angle_std_deg"] < 12.5  # amorphous: broad, but not liquid-like


def test_recorded_structure_matches_the_files():
    recorded = json.loads(files("teachlib").joinpath("data", "asi", "structure.json").read_text())
    cells = load_asi()
    assert len(recorded) == len(cells)
    for (name, figures), atoms in zip(sorted(recorded.items(), key=lambda kv: kv[1]["seed"]), cells):
        s = silicon.structure_summary(atoms)
        np.testing.assert_allclose(
            [s["coordination"], s["fourfold_fraction"], s["angle_mean_deg"], s["angle_std_deg"]],
            [figures["coordination"], figures["fourfold_fraction"], figures["angle_mean_deg"],
             figures["angle_std_deg"]], rtol=1e-9)
