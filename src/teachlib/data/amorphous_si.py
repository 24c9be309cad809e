"""The book's amorphous-silicon cells (chapter 6), shipped inside teachlib.

Six 512-atom cells melt-quenched with Vink's Stillinger-Weber potential by
``scripts/make_asi.py`` (see ``teachlib/data/asi/PROVENANCE.md`` for the command, the seeds,
the parameters and the structure of each cell).  They are small extxyz files (species,
positions, cell) that pip installs with the package, so no download is needed.

>>> cells = load_asi()
>>> len(cells[0]), bool(cells[0].pbc.all())
(512, True)
"""

from __future__ import annotations

import importlib.resources

FOLDER = ("data", "asi")


def load_asi() -> list:
    """The a-Si cells as ``ase.Atoms`` (512 atoms, periodic), in the order of their seeds."""
    import ase.io

    folder = importlib.resources.files("teachlib").joinpath(*FOLDER)
    paths = sorted((p for p in folder.iterdir() if p.name.endswith(".extxyz")),
                   key=lambda p: int(p.name.split("seed")[1].split(".")[0]))
    return [ase.io.read(str(p)) for p in paths]
