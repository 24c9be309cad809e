"""Data sets of the book.

- :func:`load_batio3`: 50 DFPT snapshots of BaTiO3 with Born charges and Raman tensors (ch. 4, 5).
- :func:`load_asi`: the project's melt-quenched 512-atom amorphous-silicon cells (ch. 6).
"""

from teachlib.data.amorphous_si import load_asi
from teachlib.data.batio3 import CREDIT, DataError, load_batio3

__all__ = ["CREDIT", "DataError", "load_asi", "load_batio3"]
