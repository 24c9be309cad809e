"""Progress bars that suit where the code runs.

In a live Jupyter or Colab session a widget bar (``tqdm.auto``); in a terminal a normal bar;
in headless runs (the book's runner, CI, pytest) a plain-text bar that redraws at most every
``TEACHLIB_PROGRESS_INTERVAL`` seconds (default 10) so that logs and executed notebooks stay
short. Set ``TEACHLIB_PROGRESS=off`` to silence every bar, ``text`` to force the plain one.

>>> total = 0
>>> for i in progress_bar(range(3), disable=True):
...     total += i
>>> total
3
"""

from __future__ import annotations

import os
import sys

MODE_ENV = "TEACHLIB_PROGRESS"
INTERVAL_ENV = "TEACHLIB_PROGRESS_INTERVAL"


def mode() -> str:
    """``"off"``, ``"text"`` (headless) or ``"auto"`` (interactive)."""
    chosen = os.environ.get(MODE_ENV, "").lower()
    if chosen in ("off", "text", "auto"):
        return chosen
    return "auto" if _interactive() else "text"


def _interactive() -> bool:
    if os.environ.get("CI") or "PYTEST_CURRENT_TEST" in os.environ or "PAPERMILL_EXECUTION" in os.environ:
        return False
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def progress_bar(iterable=None, **kwargs):
    """A ``tqdm`` bar over ``iterable`` (or a manual one with ``total=``), chosen by :func:`mode`."""
    how = mode()
    if how == "off":
        kwargs["disable"] = True
    if how == "auto":
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

        kwargs.setdefault("mininterval", float(os.environ.get(INTERVAL_ENV, 10)))
        kwargs.setdefault("ascii", True)
        kwargs.setdefault("ncols", 100)
        kwargs.setdefault("file", sys.stdout)
    return tqdm(iterable, **kwargs)
