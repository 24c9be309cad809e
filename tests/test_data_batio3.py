"""The BaTiO3 loader: contents, atom order, and every error path with a helpful message."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import ase.io
import numpy as np
import pytest

from teachlib.data import batio3
from teachlib.data.batio3 import ARCHIVE_NAME, DATASET_DIR, DataError, load_batio3

BAD_IDS = {"00010", "00017", "00020", "00023", "00048", "00049"}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty private cache and no $TEACHLIB_DATA, so each test chooses its own source."""
    monkeypatch.setenv("TEACHLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TEACHLIB_DATA", raising=False)
    return tmp_path / "cache" / "batio3"


def test_contents(batio3):
    assert len(batio3) == 50
    first = batio3[0]
    assert first.get_chemical_formula() == "Ba27O81Ti27"
    assert first.arrays["born_charges"].shape == (135, 3, 3)
    assert first.arrays["raman_tensors"].shape == (135, 3, 3, 3)
    assert first.info["dielectric"].shape == (3, 3) and first.info["chi2"].shape == (3, 3, 3)
    np.testing.assert_allclose(first.cell.lengths(), 12.0001732407972312)
    assert [a.info["snapshot_id"] for a in batio3] == [f"{i:05d}" for i in range(50)]


def test_labels_obey_documented_symmetries(batio3):
    for atoms in batio3:
        raman = atoms.arrays["raman_tensors"]
        # [atom, displacement, field, field]: symmetric in the two field indices
        np.testing.assert_allclose(raman, raman.transpose(0, 1, 3, 2), atol=1e-12)
        # acoustic sum rule already imposed in the labels
        np.testing.assert_allclose(atoms.arrays["born_charges"].sum(0), 0, atol=1e-10)
        np.testing.assert_allclose(raman.sum(0), 0, atol=1e-10)


def test_corrupt_dielectric_labels_are_flagged(batio3):
    flagged = {a.info["snapshot_id"] for a in batio3 if not a.info["dielectric_valid"]}
    assert flagged == BAD_IDS
    good = [a.info["dielectric"] for a in batio3 if a.info["dielectric_valid"]]
    np.testing.assert_allclose(np.mean([np.diag(e) for e in good]), 5.1, atol=0.1)


def test_atom_order_matches_cif_and_tensors(batio3, bto_dir, tmp_path):
    """The QE structures, the rounded CIFs and the tensor arrays list atoms in the same order."""
    dataset = batio3_dataset(bto_dir, tmp_path)
    for atoms in batio3[:: 7]:
        cif = ase.io.read(dataset / "structures" / "cif" / f"structure_{atoms.info['snapshot_id']}.cif")
        assert cif.get_chemical_symbols() == atoms.get_chemical_symbols()
        # same positions up to lattice vectors (the CIFs are wrapped and rounded to ~1e-4 Å)
        delta = atoms.cell.scaled_positions(cif.positions) - atoms.cell.scaled_positions(atoms.positions)
        delta -= np.round(delta)
        assert np.abs(delta @ atoms.cell.array).max() < 2e-3
    # the tensors follow the same order: each O's largest |Z*| lies along its Ti-O-Ti bond
    ideal = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    zstar = batio3[0].arrays["born_charges"]
    symbols = batio3[0].get_chemical_symbols()
    for k in range(135):
        z = zstar[k]
        if symbols[k] == "Ba":
            assert 2.0 < np.trace(z) / 3 < 3.5
        elif symbols[k] == "Ti":
            assert 5.0 < np.trace(z) / 3 < 8.0
        else:
            bond_axis = int(np.argmin(ideal[k % 5]))  # the O at (0, ½, ½) bonds along x
            assert np.argmin(np.diag(z)) == bond_axis and z[bond_axis, bond_axis] < -4


def batio3_dataset(bto_dir, tmp_path) -> Path:
    with tarfile.open(bto_dir / ARCHIVE_NAME) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    return tmp_path / "x" / DATASET_DIR


def test_environment_variable_is_used(bto_dir, cache, monkeypatch):
    monkeypatch.setenv("TEACHLIB_DATA", str(bto_dir))
    assert len(load_batio3(download=False)) == 50
    assert (cache / DATASET_DIR / ".complete").exists()


def test_extracted_folder_is_read_in_place(bto_dir, cache, tmp_path):
    dataset = batio3_dataset(bto_dir, tmp_path)
    assert len(load_batio3(dataset)) == 50
    assert not cache.exists()  # nothing copied


def test_download_into_cache_then_reuse(bto_dir, cache, monkeypatch):
    monkeypatch.setattr(batio3, "URL", (bto_dir / ARCHIVE_NAME).resolve().as_uri())
    assert len(load_batio3()) == 50
    assert (cache / ARCHIVE_NAME).exists()

    def no_download(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(batio3, "download_archive", no_download)
    assert len(load_batio3()) == 50


def test_no_network(cache, monkeypatch):
    monkeypatch.setattr(batio3, "URL", "http://127.0.0.1:9/x.tar.gz")
    with pytest.raises(DataError, match="Could not download.*offline.*TEACHLIB_DATA"):
        load_batio3()
    assert not any(cache.glob("*.part"))  # nothing half-downloaded left behind


def test_checksum_mismatch(cache, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / ARCHIVE_NAME).write_bytes(b"not the archive")
    with pytest.raises(DataError, match="Checksum mismatch.*delete it and download it again"):
        load_batio3(folder)


def test_corrupt_archive(cache, tmp_path, bto_dir, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    truncated = (bto_dir / ARCHIVE_NAME).read_bytes()[:500_000]
    (folder / ARCHIVE_NAME).write_bytes(truncated)
    monkeypatch.setattr(batio3, "SHA256", batio3.sha256_of(folder / ARCHIVE_NAME))
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_batio3(folder)
    assert not (cache / DATASET_DIR).exists()
    assert not list(cache.glob(".extracting-*"))


def test_archive_escaping_the_target_is_refused(cache, tmp_path, monkeypatch):
    evil = tmp_path / "data" / ARCHIVE_NAME
    evil.parent.mkdir()
    with tarfile.open(evil, "w:gz") as tar:
        payload = b"gotcha"
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    monkeypatch.setattr(batio3, "SHA256", batio3.sha256_of(evil))
    with pytest.raises(DataError, match="corrupt"):
        load_batio3(evil.parent)
    assert not list(tmp_path.rglob("escaped.txt"))


def test_interrupted_extraction_leaves_no_cache(cache, bto_dir, monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tarfile.TarFile, "extractall", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_batio3(bto_dir)
    assert not (cache / DATASET_DIR).exists()
    assert not list(cache.glob(".extracting-*"))


def test_missing_folder(cache, tmp_path):
    with pytest.raises(DataError, match="not an existing folder"):
        load_batio3(tmp_path / "nowhere")


def test_folder_without_data(cache, tmp_path):
    with pytest.raises(DataError, match="holds neither"):
        load_batio3(tmp_path)


def test_incomplete_extracted_folder(cache, bto_dir, tmp_path):
    dataset = batio3_dataset(bto_dir, tmp_path)
    (dataset / "raman_tensors" / "00031.npy").unlink()
    with pytest.raises(DataError, match="incomplete.*raman_tensors/00031.npy"):
        load_batio3(dataset)


def test_pickled_array_is_refused(cache, bto_dir, tmp_path):
    dataset = batio3_dataset(bto_dir, tmp_path)
    np.save(dataset / "dielectric" / "00003.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a readable .npy"):
        load_batio3(dataset)


def test_qe_reader_rejects_other_units(tmp_path):
    path = tmp_path / "s.scf"
    path.write_text("CELL_PARAMETERS bohr\n1 0 0\n0 1 0\n0 0 1\nATOMIC_POSITIONS angstrom\nBa 0 0 0\n")
    with pytest.raises(DataError, match="only angstrom"):
        batio3.read_qe_structure(path)


def test_nothing_downloaded_when_disallowed(cache):
    with pytest.raises(DataError, match="download=False"):
        load_batio3(download=False)
    assert not (cache / ARCHIVE_NAME).exists()


def test_data_is_not_tracked_by_git():
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True).stdout
    assert ARCHIVE_NAME not in tracked and ".npy" not in tracked
