"""Run the book's chapters headless and build its HTML: ``python -m teachlib.book``.

::

    python -m teachlib.book run [CHAPTER ...] --profile quick|full --out DIR [-p NAME VALUE ...]
    python -m teachlib.book build --from DIR
    python -m teachlib.book clean            # strip outputs from the committed notebooks
    python -m teachlib.book reference --from DIR   # keep a run's figures as the book's reference
    python -m teachlib.book tables           # regenerate book/generated/ (e.g. after adding a chapter)

``run`` executes the named chapters (a stem like ``04_bec_raman`` or a number like ``4``; none:
all, in ``_toc.yml`` order) with papermill, each in a fresh kernel, with the parameters
``PROFILE``, ``SEED`` and ``OUTPUT_DIR = DIR/<stem>/`` (plus any ``-p NAME VALUE``, parsed as a
YAML literal). The executed notebook is ``DIR/<stem>.ipynb``. ``DIR/metrics.json`` gets one
entry per chapter, ``{"status", "profile", "seed", "wall_s", "metrics"}``, where ``metrics`` is
what the chapter recorded with :func:`teachlib.record`; it is written after every chapter, also
when one fails, and the run stops at the first failing chapter.

``build`` renders ``_build/html`` with Jupyter Book from those executed notebooks, without
executing anything again; each chapter page says which profile and seed produced it.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from teachlib.record import FILENAME as METRICS_FILE
from teachlib.record import read as read_metrics
from teachlib.progress import progress_bar

STAGING = Path("_build") / ".book-src"
BANNER_TAG = "teachlib-run-info"


# --------------------------------------------------------------------------------- chapters --
def find_root(start=None) -> Path:
    """The book's root folder: the first of ``start``, the cwd and its parents, and the
    repository that holds this package, that has a ``_toc.yml``."""
    candidates = [Path(start)] if start else []
    cwd = Path.cwd().resolve()
    candidates += [cwd, *cwd.parents, Path(__file__).resolve().parents[2]]
    for candidate in candidates:
        if (candidate / "_toc.yml").is_file():
            return candidate
    raise FileNotFoundError("no _toc.yml found: run this from the book's repository, or pass --root")


def chapters(root) -> list[Path]:
    """Chapter notebooks in ``_toc.yml`` order (only ``.ipynb`` files named ``NN_name``)."""
    root = Path(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("file", "root") and isinstance(value, str):
                    files.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    found = []
    for name in files:
        path = root / (name if name.endswith(".ipynb") else name + ".ipynb")
        if path.is_file() and path.stem[:2].isdigit():
            found.append(path)
    return found


def select(root, names) -> list[Path]:
    """The chapters named by stem (``04_bec_raman``) or number (``04``, ``4``); all if none."""
    every = chapters(root)
    if not names:
        return every
    chosen = []
    for name in names:
        matches = [p for p in every if p.stem == name or (name.isdigit() and int(p.stem[:2]) == int(name))]
        if not matches:
            known = ", ".join(p.stem for p in every)
            raise SystemExit(f"error: no chapter {name!r}; chapters: {known}")
        chosen += [m for m in matches if m not in chosen]
    return chosen


# ---------------------------------------------------------------------------------- running --
def parse_parameters(pairs) -> dict:
    """``[("SEED", "7"), ("NAME", "'x'")]`` -> ``{"SEED": 7, "NAME": "x"}`` (YAML literals).

    >>> parse_parameters([("SEED", "7"), ("RATE", "1e-3"), ("TAG", "abc"), ("ON", "true")])
    {'SEED': 7, 'RATE': 0.001, 'TAG': 'abc', 'ON': True}
    """
    parsed = {}
    for name, value in pairs or []:
        literal = yaml.safe_load(value)
        if isinstance(literal, str):  # YAML reads 1e-3 as a string; numbers are nicer
            try:
                literal = float(literal) if any(c in literal for c in ".eE") else literal
            except ValueError:
                pass
        parsed[name] = literal
    return parsed


def read_summary(out) -> dict:
    path = Path(out) / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_summary(out, summary: dict) -> None:
    path = Path(out) / "metrics.json"
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(summary, indent=2) + "\n")
    partial.replace(path)


def run(names=(), *, profile: str = "quick", out="_build/runs", parameters=None, root=None,
        kernel_name: str = "python3", log_output: bool = True) -> dict:
    """Run chapters with papermill; return the summary written to ``out/metrics.json``.

    Raises:
        ChapterFailed: after writing ``metrics.json``, when a chapter fails.
    """
    import papermill

    root = find_root(root)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if log_output:
        _echo_notebook_output()
    parameters = dict(parameters or {})
    if profile not in ("quick", "full"):
        raise SystemExit(f"error: --profile must be quick or full, not {profile!r}")
    seed = parameters.pop("SEED", 0)
    summary = read_summary(out)
    todo = select(root, names)
    env = {"TEACHLIB_PROFILE": profile, "TEACHLIB_PROGRESS": os.environ.get("TEACHLIB_PROGRESS", "text"),
           "PYTHONHASHSEED": "0",
           # figures inline in the executed notebook (plt.show() under "Agg" drops them)
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        for notebook in progress_bar(todo, desc=f"chapters ({profile})", unit="chapter"):
            stem = notebook.stem
            output_dir = out / stem
            if (output_dir / METRICS_FILE).exists():
                (output_dir / METRICS_FILE).unlink()  # metrics are this run's only
            print(f"\n=== {stem}: profile {profile}, seed {seed} -> {out / (stem + '.ipynb')}", flush=True)
            start = time.perf_counter()
            entry = {"status": "ok", "profile": profile, "seed": seed}
            try:
                papermill.execute_notebook(
                    str(notebook), str(out / f"{stem}.ipynb"),
                    parameters={"PROFILE": profile, "SEED": seed, "OUTPUT_DIR": str(output_dir), **parameters},
                    kernel_name=kernel_name, cwd=str(notebook.parent), progress_bar=False,
                    log_output=log_output, request_save_on_cell_execute=False)
            except BaseException as error:  # a failing cell, a dead kernel, Ctrl-C
                entry.update(status="failed", error=f"{type(error).__name__}: {error}"[:4000])
            entry["wall_s"] = round(time.perf_counter() - start, 1)
            entry["metrics"] = read_metrics(output_dir)
            summary[stem] = entry
            write_summary(out, summary)
            _hide_injected_parameters(out / f"{stem}.ipynb")
            print(f"=== {stem}: {entry['status']} in {entry['wall_s']} s; metrics {entry['metrics']}", flush=True)
            if entry["status"] != "ok":
                raise ChapterFailed(stem, entry["error"])
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return summary


def _echo_notebook_output() -> None:
    """Print what the notebooks print (papermill logs it at INFO level) to stdout."""
    logger = logging.getLogger("papermill")
    if not any(getattr(h, "teachlib", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("    | %(message)s"))
        handler.teachlib = True
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


class ChapterFailed(RuntimeError):
    """A chapter raised; ``metrics.json`` has already been written."""

    def __init__(self, chapter, error):
        super().__init__(f"chapter {chapter} failed: {error}")
        self.chapter = chapter


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` so the HTML hides it."""
    import nbformat

    if not path.exists():
        return
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


# --------------------------------------------------------------------------------- building --
def build(source, *, root=None, output=None, builder: str = "html") -> Path:
    """Render the book from the executed notebooks in ``source`` into ``_build/html``.

    Copies the book into ``_build/.book-src``, puts each executed notebook in place of its
    source (plus a line saying which profile and seed produced it), turns execution off, and
    runs ``jupyter-book build``. Chapters missing from ``source`` are shown unexecuted, with a
    note saying so.
    """
    root = find_root(root)
    source = Path(source).resolve()
    if not source.is_dir():
        raise SystemExit(f"error: {source} does not exist; run `python -m teachlib.book run --out {source}` first")
    summary = read_summary(source)
    staging = root / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "book", "requirements.txt"):
        if not (root / name).exists():
            continue
        if (root / name).is_dir():
            shutil.copytree(root / name, staging / name)
        else:
            shutil.copy2(root / name, staging / name)
    config = yaml.safe_load((staging / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    (staging / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    for notebook in chapters(root):
        stem = notebook.stem
        executed = source / f"{stem}.ipynb"
        target = staging / notebook.relative_to(root)
        if executed.exists():
            shutil.copy2(executed, target)
        _add_run_banner(target, summary.get(stem), executed.exists())

    output = Path(output or root).resolve()
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(staging), "--path-output", str(output),
               "--builder", builder, "--all"]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    html = output / "_build" / "html"
    if (source / "metrics.json").exists():
        shutil.copy2(source / "metrics.json", html / "metrics.json")
    print(f"The book is in {html / 'index.html'}")
    return html


def _add_run_banner(path: Path, entry: dict | None, executed: bool) -> None:
    """Insert, after the title cell, a note of how this page's outputs were produced."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if BANNER_TAG not in c.metadata.get("tags", [])]
    if not executed or entry is None:
        text = ("```{note}\nThis chapter was not executed for this build of the book: it shows "
                "no outputs. Run it with `python -m teachlib.book run`.\n```")
    else:
        text = (f"```{{admonition}} How this page was produced\n:class: tip\n"
                f"Executed headless by `python -m teachlib.book run` under the **{entry.get('profile')}** "
                f"profile with seed **{entry.get('seed')}** (status: {entry.get('status')}, "
                f"{entry.get('wall_s')} s of wall time).\n```")
    banner = nbformat.v4.new_markdown_cell(text, metadata={"tags": [BANNER_TAG]})
    position = next((i + 1 for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), 0)
    nb.cells.insert(position, banner)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


# ---------------------------------------------------------------------------------- cleaning --
def strip_outputs_in_memory(nb) -> None:
    """Remove outputs, execution counts and execution metadata from a notebook object."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)


def strip_outputs(path) -> bool:
    """Remove outputs and execution counts from a notebook file; True if it changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    before = copy.deepcopy(nb)
    strip_outputs_in_memory(nb)
    if nb != before:
        nbformat.write(nb, path)
        return True
    return False


# -------------------------------------------------------------------------------------- CLI --
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m teachlib.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute chapters headless with papermill")
    p_run.add_argument("chapters", nargs="*", help="stems or numbers; none: all, in _toc.yml order")
    p_run.add_argument("--profile", default="quick", choices=["quick", "full"])
    p_run.add_argument("--out", default="_build/runs", help="folder for executed notebooks and metrics.json")
    p_run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help="a notebook parameter, VALUE parsed as a YAML literal (e.g. -p SEED 7)")
    p_run.add_argument("--root", help="the book's root folder (default: found from the cwd)")
    p_build = sub.add_parser("build", help="render the HTML from executed notebooks")
    p_build.add_argument("--from", dest="source", default="_build/runs", help="the --out folder of `run`")
    p_build.add_argument("--root")
    p_clean = sub.add_parser("clean", help="strip outputs from the book's notebooks")
    p_clean.add_argument("--root")
    p_ref = sub.add_parser("reference", help="record a run's figures and timings as the book's reference")
    p_ref.add_argument("--from", dest="source", default="_build/runs", help="the --out folder of `run`")
    p_ref.add_argument("--machine", help="where it ran (default: CPU model, cores, accelerator)")
    p_ref.add_argument("--root")
    p_tables = sub.add_parser("tables", help="regenerate the tables of book/generated/ from the reference runs")
    p_tables.add_argument("--root")
    args = parser.parse_args(argv)

    if args.command == "run":
        try:
            run(args.chapters, profile=args.profile, out=args.out,
                parameters=parse_parameters(args.parameter), root=args.root)
        except ChapterFailed as error:
            print(f"\nerror: {error}\n(metrics written to {Path(args.out) / 'metrics.json'})", file=sys.stderr)
            return 1
    elif args.command == "build":
        build(args.source, root=args.root)
    elif args.command == "reference":
        from teachlib import report

        path = report.record_reference(args.source, find_root(args.root), machine=args.machine)
        print(f"recorded in {path}; tables regenerated in {report.GENERATED_DIR}")
    elif args.command == "tables":
        from teachlib import report

        for path in report.write(find_root(args.root)):
            print(f"updated {path}")
    elif args.command == "clean":
        root = find_root(args.root)
        for notebook in sorted((root / "book").glob("*.ipynb")):
            if strip_outputs(notebook):
                print(f"stripped {notebook.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
