"""The BaTiO3 DFPT data set: 50 thermal snapshots of cubic BaTiO3 and their response tensors.

50 snapshots of a 3x3x3 supercell of cubic BaTiO3 (135 atoms, 12.0 Å cubic cell) at 400 K,
with Born effective charges, Raman tensors, high-frequency dielectric tensors and second-order
susceptibilities from density-functional perturbation theory (Quantum ESPRESSO, workflow of
L. Bastonero and N. Marzari, npj Comput. Mater. 10, 55 (2024)). Data: L. Bastonero and the
authors of ``camml-lab/e3response`` (GPL-3.0); credit them wherever you use it.

Each snapshot is an :class:`ase.Atoms` (positions in Å, as in the Quantum ESPRESSO input,
unwrapped) with

=============================== ============== ===============================================
field                           shape          meaning (units)
=============================== ============== ===============================================
``arrays["born_charges"]``      (135, 3, 3)    Born effective charge Z*_κ (e)
``arrays["raman_tensors"]``     (135, 3, 3, 3) Raman tensor, [atom, displacement, field, field]
``info["dielectric"]``          (3, 3)         high-frequency dielectric tensor ε∞
``info["chi2"]``                (3, 3, 3)      second-order susceptibility χ(2)
``info["snapshot_id"]``         str            ``"00000"`` ... ``"00049"``
``info["dielectric_valid"]``    bool           False where ε∞ and χ(2) are corrupt (six
                                               snapshots): never train on those two labels
=============================== ============== ===============================================

Where the archive comes from, in this order: the ``folder`` argument, the environment variable
``TEACHLIB_DATA``, the user cache (``$TEACHLIB_CACHE`` or ``~/.cache/teachlib``), else a
download from the canonical address. A folder may hold the archive (``*.tar.gz``, checked
against its sha256 and extracted into the cache) or the extracted data set itself.

>>> snapshots = load_batio3()            # doctest: +SKIP
>>> len(snapshots), snapshots[0].arrays["born_charges"].shape   # doctest: +SKIP
(50, (135, 3, 3))
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import ase
import numpy as np

from teachlib.progress import progress_bar

ARCHIVE_NAME = "BTO_Pm-3m_5atoms_400K_3x3x3_ensemble.tar.gz"
DATASET_DIR = "BTO_Pm-3m_5atoms_400K_3x3x3_ensemble"
URL = ("https://github.com/camml-lab/e3response/raw/3a49fc03c27c9ef7392b6b789bc412d3ecfb8808/"
       "data/bto/" + ARCHIVE_NAME)
SHA256 = "e20a79d193bf17ead83db6c96e09946b7d907fce9769778a57af0d3e53f5e5f9"
SIZE_BYTES = 1_716_604
N_SNAPSHOTS = 50
N_ATOMS = 135
DATA_ENV = "TEACHLIB_DATA"
CACHE_ENV = "TEACHLIB_CACHE"
CREDIT = ("BaTiO3 DFPT data: L. Bastonero and the camml-lab/e3response authors (GPL-3.0); "
          "workflow: L. Bastonero & N. Marzari, npj Comput. Mater. 10, 55 (2024).")

# (folder in the archive, file name pattern, shape of one file)
_TENSOR_FILES = {
    "born_charges": ("born_charges", "{sid}.npy", (N_ATOMS, 3, 3)),
    "raman_tensors": ("raman_tensors", "{sid}.npy", (N_ATOMS, 3, 3, 3)),
    "dielectric": ("dielectric", "{sid}.npy", (3, 3)),
    "chi2": ("nlo_susceptibilities", "{sid}.npy", (3, 3, 3)),
}
_STRUCTURE_FILE = ("structures/qe", "strcutre_{sid}.scf")  # sic: the archive's spelling
_COMPLETE_MARKER = ".complete"


class DataError(RuntimeError):
    """The BaTiO3 data could not be found, fetched or read; the message says what to do."""


def snapshot_ids() -> list[str]:
    """The 50 snapshot ids, ``["00000", ..., "00049"]``.

    >>> snapshot_ids()[:2], len(snapshot_ids())
    (['00000', '00001'], 50)
    """
    return [f"{i:05d}" for i in range(N_SNAPSHOTS)]


def cache_dir() -> Path:
    """Where downloads and extracted archives are kept (``$TEACHLIB_CACHE`` or ~/.cache)."""
    root = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "teachlib"
    return Path(root) / "batio3"


def sha256_of(path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def missing_files(dataset: Path) -> list[str]:
    """Paths (relative to ``dataset``) that a complete extracted data set has and this lacks."""
    wanted = [f"{_STRUCTURE_FILE[0]}/{_STRUCTURE_FILE[1].format(sid=sid)}" for sid in snapshot_ids()]
    for folder, pattern, _ in _TENSOR_FILES.values():
        wanted += [f"{folder}/{pattern.format(sid=sid)}" for sid in snapshot_ids()]
    return [name for name in wanted if not (dataset / name).is_file()]


def verify_archive(path) -> Path:
    """Check the archive's sha256; raise :class:`DataError` with advice if it differs."""
    path = Path(path)
    actual = sha256_of(path)
    if actual != SHA256:
        raise DataError(
            f"Checksum mismatch for {path}: expected sha256 {SHA256}, got {actual} "
            f"({path.stat().st_size:,} bytes; the right file has {SIZE_BYTES:,}). The file is "
            f"damaged or not the BaTiO3 archive: delete it and download it again from {URL}")
    return path


def extract_archive(archive, target) -> Path:
    """Extract a verified archive into ``target`` safely and atomically; return the data set dir.

    Members are filtered with tarfile's ``data`` filter (no absolute paths, no ``..``, no links
    out of the target, no device files). Extraction goes to a temporary folder beside ``target``
    that is renamed into place only when complete, so an interruption never leaves a
    half-extracted cache behind.
    """
    archive, target = Path(archive), Path(target)
    final = target / DATASET_DIR
    if (final / _COMPLETE_MARKER).exists():
        return final
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=target))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, EOFError, OSError, ValueError) as error:
            raise DataError(
                f"The archive {archive} is corrupt or truncated ({type(error).__name__}: "
                f"{error}). Delete it and download it again from {URL}") from error
        extracted = staging / DATASET_DIR
        missing = missing_files(extracted) if extracted.is_dir() else ["(the whole data set)"]
        if missing:
            raise DataError(
                f"The archive {archive} does not hold the complete BaTiO3 data set "
                f"({len(missing)} files missing, e.g. {missing[:3]}). Delete it and download "
                f"it again from {URL}")
        (extracted / _COMPLETE_MARKER).write_text(SHA256 + "\n")
        if final.exists():  # a stale, incomplete copy from an older version
            shutil.rmtree(final)
        extracted.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def download_archive(destination, url: str | None = None, timeout: float = 60.0,
                     progress: bool = True) -> Path:
    """Download the archive to ``destination`` (a file path), verify it, and return the path.

    ``url`` defaults to :data:`URL`, the canonical address.

    The bytes go to a temporary file that is renamed only after the checksum matched.
    """
    url = url or URL
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or SIZE_BYTES)
            with progress_bar(total=total, unit="B", unit_scale=True, desc="BaTiO3 data",
                              disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        partial.unlink(missing_ok=True)
        raise DataError(
            f"Could not download the BaTiO3 data from {url} ({error}). If this machine is "
            f"offline, download {ARCHIVE_NAME} on another machine and point the environment "
            f"variable {DATA_ENV} (or the folder= argument) at the folder that holds it.") from error
    try:
        verify_archive(partial)
    except DataError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(destination)
    return destination


def locate(folder=None, *, download: bool = True) -> Path:
    """Find (or fetch) the extracted data set; see the module docstring for the order."""
    source, label = (folder, "folder argument") if folder is not None else (os.environ.get(DATA_ENV), f"${DATA_ENV}")
    cache = cache_dir()
    if source:
        return _from_folder(Path(source).expanduser(), label, cache)
    cached = cache / DATASET_DIR
    if (cached / _COMPLETE_MARKER).exists():
        return cached
    archive = cache / ARCHIVE_NAME
    if archive.exists():
        try:
            verify_archive(archive)
        except DataError:
            archive.unlink()  # a damaged cached download: fetch it again
    if not archive.exists():
        if not download:
            raise DataError(f"The BaTiO3 data is not in the cache {cache} and download=False. "
                            f"Set {DATA_ENV} to a folder holding {ARCHIVE_NAME}.")
        download_archive(archive)
    return extract_archive(archive, cache)


def _from_folder(folder: Path, label: str, cache: Path) -> Path:
    if not folder.is_dir():
        raise DataError(f"The {label} points at {folder}, which is not an existing folder. "
                        f"Give the folder that holds {ARCHIVE_NAME} (or the extracted data set).")
    for candidate in (folder, folder / DATASET_DIR):
        if (candidate / "born_charges").is_dir():
            missing = missing_files(candidate)
            if missing:
                raise DataError(
                    f"The data set in {candidate} (from the {label}) is incomplete: "
                    f"{len(missing)} files missing, e.g. {missing[:3]}. Extract {ARCHIVE_NAME} "
                    f"again, or point {DATA_ENV} at the folder holding the archive itself.")
            return candidate
    archive = folder / ARCHIVE_NAME
    if not archive.is_file():
        raise DataError(
            f"The {label} points at {folder}, which holds neither {ARCHIVE_NAME} nor the "
            f"extracted data set ({DATASET_DIR}/). Download the archive from {URL} into it, or "
            f"unset {DATA_ENV} to let teachlib download it into its cache.")
    verify_archive(archive)
    return extract_archive(archive, cache)


def read_qe_structure(path) -> ase.Atoms:
    """Read the CELL_PARAMETERS / ATOMIC_POSITIONS blocks of a Quantum ESPRESSO input (Å).

    ase's espresso reader wants a whole ``pw.x`` input; these files hold only the two blocks.

    >>> import tempfile, pathlib
    >>> text = "CELL_PARAMETERS angstrom\\n4 0 0\\n0 4 0\\n0 0 4\\n\\nATOMIC_POSITIONS angstrom\\nBa 0 0 0\\nTi 2 2 2\\n"
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.scf"; _ = path.write_text(text)
    >>> read_qe_structure(path).get_chemical_formula()
    'BaTi'
    """
    lines = [line.split() for line in Path(path).read_text().splitlines()]
    cell, symbols, positions = [], [], []
    block = None
    for words in lines:
        if not words:
            continue
        keyword = words[0].upper()
        if keyword in ("CELL_PARAMETERS", "ATOMIC_POSITIONS"):
            unit = " ".join(words[1:]).strip("(){} ").lower()
            if unit != "angstrom":
                raise DataError(f"{path}: {keyword} in {unit!r}; only angstrom is supported")
            block = keyword
        elif block == "CELL_PARAMETERS" and len(cell) < 3:
            cell.append([float(w) for w in words[:3]])
        elif block == "ATOMIC_POSITIONS":
            symbols.append(words[0])
            positions.append([float(w) for w in words[1:4]])
    if len(cell) != 3 or not symbols:
        raise DataError(f"{path}: expected CELL_PARAMETERS (3 rows) and ATOMIC_POSITIONS blocks")
    return ase.Atoms(symbols=symbols, positions=positions, cell=cell, pbc=True)


def labels_are_valid(dielectric: np.ndarray, chi2: np.ndarray) -> bool:
    """Whether ε∞ and χ(2) are physical: ε∞'s eigenvalues ≥ 1 and |χ(2)| below 1e3.

    A transparent insulator has ε∞ ≥ 1 in every direction (here ≈ 5.1); the six corrupt
    snapshots have one diagonal element near −64 and χ(2) elements near −3.8e5.

    >>> labels_are_valid(np.eye(3) * 5.1, np.zeros((3, 3, 3)))
    True
    >>> labels_are_valid(np.diag([5.1, -64.0, 5.1]), np.zeros((3, 3, 3)))
    False
    """
    eigenvalues = np.linalg.eigvalsh(0.5 * (dielectric + dielectric.T))
    return bool(eigenvalues.min() >= 1.0 and np.abs(chi2).max() < 1e3)


def load_batio3(folder=None, *, download: bool = True) -> list[ase.Atoms]:
    """The 50 BaTiO3 snapshots with their labels, as :class:`ase.Atoms` (see module docstring).

    Args:
        folder: a folder holding the archive or the extracted data set; default: ``$TEACHLIB_DATA``,
            then the cache, then a download.
        download: whether a download may happen when nothing local is found.

    Raises:
        DataError: with a message that says what went wrong and what to do.
    """
    dataset = locate(folder, download=download)
    snapshots = []
    for sid in snapshot_ids():
        atoms = read_qe_structure(dataset / _STRUCTURE_FILE[0] / _STRUCTURE_FILE[1].format(sid=sid))
        if len(atoms) != N_ATOMS:
            raise DataError(f"snapshot {sid}: {len(atoms)} atoms in the structure, expected {N_ATOMS}")
        labels = {}
        for name, (sub, pattern, shape) in _TENSOR_FILES.items():
            path = dataset / sub / pattern.format(sid=sid)
            try:
                array = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as error:
                raise DataError(f"{path} is not a readable .npy file ({error}); extract the "
                                f"archive again.") from error
            if array.shape != shape:
                raise DataError(f"{path} has shape {array.shape}, expected {shape}")
            labels[name] = array.astype(np.float64)
        atoms.new_array("born_charges", labels["born_charges"])
        atoms.new_array("raman_tensors", labels["raman_tensors"])
        atoms.info.update(
            snapshot_id=sid,
            dielectric=labels["dielectric"],
            chi2=labels["chi2"],
            dielectric_valid=labels_are_valid(labels["dielectric"], labels["chi2"]),
        )
        snapshots.append(atoms)
    return snapshots
