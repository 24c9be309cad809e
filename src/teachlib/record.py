r"""Record a chapter's key figures with one call.

Every chapter ends with ``teachlib.record(OUTPUT_DIR, name=value, ...)``.  The values go to
``OUTPUT_DIR/metrics.json`` (merged with what the chapter recorded before), where the book's
runner collects them into ``DIR/metrics.json``; inside a notebook each value is also *glued*
(myst-nb) under its name, so the prose can show the computed number instead of hard-coding it:
``{glue:text}`\`bec_test_mae:.3f\``.

Names are snake_case; values are plain numbers (``inf`` allowed, for "never").

>>> import tempfile
>>> out = tempfile.mkdtemp()
>>> record(out, gram_invariance_error=3e-16, augmentation_factor_needed=float("inf"))
{'gram_invariance_error': 3e-16, 'augmentation_factor_needed': inf}
>>> read(out)["augmentation_factor_needed"]
inf
>>> record(out, infill_error_A=0.42)
{'infill_error_A': 0.42}
"""

from __future__ import annotations

import json
import math
import numbers
import re
from pathlib import Path

import numpy as np

FILENAME = "metrics.json"
# snake_case, optionally ending in the unit suffix ``_A`` (ångström) that DESIGN.md's metric
# names use (``reconstruction_error_A``, ``infill_error_A``).
_NAME = re.compile(r"^[a-z][a-z0-9_]*?(_A)?$")


def _as_number(name: str, value) -> float | int:
    if isinstance(value, bool):
        raise TypeError(f"metric {name!r} is a bool; record a number (e.g. 0 or 1)")
    if isinstance(value, numbers.Integral):
        return int(value)
    try:
        array = np.asarray(value)
    except Exception as error:  # pragma: no cover - exotic objects
        raise TypeError(f"metric {name!r} is not a number: {value!r}") from error
    if array.shape != () or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"metric {name!r} must be one number, got {type(value).__name__} "
                        f"of shape {array.shape}")
    number = array.item()
    if isinstance(number, complex):
        raise TypeError(f"metric {name!r} is complex: {number}")
    if math.isnan(number):
        raise ValueError(f"metric {name!r} is NaN: the chapter computed nothing meaningful")
    return number


def read(output_dir) -> dict:
    """The metrics recorded so far in ``output_dir`` (empty if none)."""
    path = Path(output_dir) / FILENAME
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def record(output_dir, **metrics) -> dict:
    """Record ``metrics`` in ``output_dir/metrics.json`` and glue them for the prose.

    Args:
        output_dir: the chapter's ``OUTPUT_DIR``; created if missing.
        **metrics: ``name=value`` pairs; names snake_case, values numbers.

    Returns:
        The metrics just recorded, as plain Python numbers.
    """
    clean = {}
    for name, value in metrics.items():
        if not _NAME.match(name):
            raise ValueError(f"metric name {name!r} is not snake_case")
        clean[name] = _as_number(name, value)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    merged = read(output_dir) | clean
    (output_dir / FILENAME).write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    _glue(clean)
    return clean


def _glue(metrics: dict) -> None:
    """Glue each metric for myst-nb, when running inside a notebook kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    if get_ipython() is None or type(get_ipython()).__name__ != "ZMQInteractiveShell":
        return
    try:
        from myst_nb import glue
    except ImportError:  # pragma: no cover - myst-nb is only needed to build the HTML
        return
    for name, value in metrics.items():
        glue(name, value, display=False)
