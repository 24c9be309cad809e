"""Data sets of the book.

- :func:`load_batio3`: 50 DFPT snapshots of BaTiO3 with Born charges and Raman tensors (ch. 4, 5).
"""

from teachlib.data.batio3 import CREDIT, DataError, load_batio3

__all__ = ["CREDIT", "DataError", "load_batio3"]
