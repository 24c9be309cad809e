"""Helpers shared by the two benchmark workers (peer_worker.py, teachlib_worker.py).

Only the standard library and NumPy: this file is imported by both virtual environments.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np


def max_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    """Resident memory of this process now, MiB (from /proc; NaN where there is none)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return pages * resource.getpagesize() / 2**20


def load_inputs(data_path, split_path):
    """The snapshots (dict of arrays, leading axis = snapshot) and the split (dict of id lists)."""
    with np.load(data_path, allow_pickle=False) as archive:
        data = {key: archive[key] for key in archive.files}
    split = json.loads(Path(split_path).read_text())
    return data, split


def bec_mae(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error over all atoms and all Cartesian components (DESIGN.md's MAE)."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    if predicted.shape != target.shape:
        raise ValueError(f"prediction {predicted.shape} and target {target.shape} differ")
    return float(np.mean(np.abs(predicted - target)))


class Clock:
    """Wall-clock marks since the process started its work."""

    def __init__(self):
        self.start = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.start


def write_result(path, result: dict) -> None:
    Path(path).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}", file=sys.stderr)
