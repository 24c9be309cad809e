"""Reference runs: the measured figures and timings that the book's tables show.

Prose never types a number the code computes. Figures of a *full*-profile run (classroom or
GPU hardware) cannot be recomputed during a quick CI build, so they are measured once and kept
with their provenance in ``book/reference_runs.json``::

    python -m teachlib.book reference --from _build/runs      # after a `run`

which records every chapter of that run (profile, seed, wall time, metrics, date, machine) and
regenerates the markdown tables that the instructor page and the appendix include
(``book/generated/*.md``). A test fails when those tables are out of date.

>>> summary = {"01_symmetry": {"status": "ok", "profile": "quick", "seed": 0, "wall_s": 61.2,
...                            "metrics": {"gram_invariance_error": 1.1e-14}}}
>>> reference = add_runs({}, summary, machine="laptop", measured="2026-11-25")
>>> reference["quick"]["01_symmetry"]["wall_s"]
61.2
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
from pathlib import Path

REFERENCE_FILE = Path("book") / "reference_runs.json"
GENERATED_DIR = Path("book") / "generated"
PROFILES = ("quick", "full")


def cpu_model(default: str | None = None) -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else ``default``, else the platform's)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default or platform.processor() or platform.machine()


def describe_machine() -> str:
    """A one-line description: CPU model, cores, and the accelerator jax sees (if any)."""
    cpu = cpu_model()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        import jax

        devices = jax.devices()
        accelerator = "CPU only" if devices[0].platform == "cpu" else f"{devices[0].device_kind} ({devices[0].platform})"
    except Exception:  # pragma: no cover - jax missing or broken
        accelerator = "CPU only"
    return f"{cpu}, {cores} cores, {accelerator}"


def load(root) -> dict:
    path = Path(root) / REFERENCE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def add_runs(reference: dict, summary: dict, *, machine: str, measured: str | None = None) -> dict:
    """Return ``reference`` with every successful chapter of a run's ``summary`` recorded."""
    measured = measured or datetime.date.today().isoformat()
    updated = json.loads(json.dumps(reference))
    for stem, entry in summary.items():
        if entry.get("status") != "ok":
            continue
        updated.setdefault(entry["profile"], {})[stem] = {
            "seed": entry["seed"], "wall_s": entry["wall_s"], "metrics": entry["metrics"],
            "measured": measured, "machine": machine}
    return updated


def _number(value) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e6):
        return str(int(value))
    return f"{value:.3g}"


def timings_table(reference: dict, chapters: list[str], colab_links: dict[str, str]) -> str:
    """Markdown: each chapter's wall time in each profile, with where it was measured."""
    lines = ["| chapter | quick profile | full profile | student edition |", "|---|---|---|---|"]
    for stem in chapters:
        cells = []
        for profile in PROFILES:
            entry = reference.get(profile, {}).get(stem)
            cells.append("not measured yet" if entry is None else
                         f"{entry['wall_s'] / 60:.1f} min ({entry['machine']}, {entry['measured']})")
        lines.append(f"| `{stem}` | {cells[0]} | {cells[1]} | [open in Colab]({colab_links[stem]}) |")
    return "\n".join(lines) + "\n"


def figures_table(reference: dict, chapters: list[str]) -> str:
    """Markdown: every recorded metric of each chapter, quick and full side by side."""
    sections = []
    for stem in chapters:
        entries = {p: reference.get(p, {}).get(stem) for p in PROFILES}
        names = sorted({n for e in entries.values() if e for n in e["metrics"]})
        if not names:
            sections.append(f"**`{stem}`**: not measured yet.\n")
            continue
        head = [f"{p}: seed {e['seed']}, {e['measured']}, {e['machine']}" if e else f"{p}: not measured yet"
                for p, e in entries.items()]
        lines = [f"**`{stem}`** — " + "; ".join(head), "", "| metric | quick | full |", "|---|---|---|"]
        for name in names:
            values = [(_number(e["metrics"][name]) if e and name in e["metrics"] else "—") for e in entries.values()]
            lines.append(f"| `{name}` | {values[0]} | {values[1]} |")
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def render(root) -> dict[Path, str]:
    """The generated markdown files and their text, from the reference file and the chapters."""
    from teachlib.book import chapters
    from teachlib.colab import colab_url

    root = Path(root)
    reference = load(root)
    stems = [p.stem for p in chapters(root)]
    links = {stem: colab_url(f"colab/{stem}.ipynb", root) for stem in stems}
    return {
        root / GENERATED_DIR / "timings.md": timings_table(reference, stems, links),
        root / GENERATED_DIR / "reference_figures.md": figures_table(reference, stems),
    }


def write(root, *, check: bool = False) -> list[Path]:
    """Write the generated tables; return those that changed (with ``check``, would change)."""
    changed = []
    for path, text in render(root).items():
        if path.exists() and path.read_text() == text:
            continue
        changed.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return changed


def record_reference(runs_dir, root, *, machine: str | None = None) -> Path:
    """Add a run's chapters to ``book/reference_runs.json`` and regenerate the tables."""
    root = Path(root)
    summary = json.loads((Path(runs_dir) / "metrics.json").read_text())
    reference = add_runs(load(root), summary, machine=machine or describe_machine())
    path = root / REFERENCE_FILE
    path.write_text(json.dumps(reference, indent=2, sort_keys=True) + "\n")
    write(root)
    return path
