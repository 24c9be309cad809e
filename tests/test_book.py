"""The runner's contract (DESIGN.md, "one contract"), on a small fake book of three chapters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from teachlib import book

REPO = Path(__file__).resolve().parents[1]


def chapter(cells: list[str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter"),
                nbformat.v4.new_code_cell('PROFILE = "quick"\nSEED = 0\nOUTPUT_DIR = "outputs/x"',
                                          metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells]
    return nb


@pytest.fixture
def fake_book(tmp_path):
    root = tmp_path / "fakebook"
    (root / "book").mkdir(parents=True)
    (root / "_toc.yml").write_text(textwrap.dedent("""\
        format: jb-book
        root: book/intro
        chapters:
          - file: book/01_ok
          - file: book/02_broken
          - file: book/03_unreached
    """))
    (root / "_config.yml").write_text("title: Fake\nexecute:\n  execute_notebooks: force\n")
    (root / "book" / "intro.md").write_text("# Fake book\n")
    nbformat.write(chapter(["""
        import os, teachlib
        teachlib.record(OUTPUT_DIR, answer=42, seed_seen=SEED, rate=RATE, env_profile=float(os.environ["TEACHLIB_PROFILE"] == PROFILE))
        print("chapter one ran")
    """, """
        import matplotlib.pyplot as plt
        plt.plot([0, 1], [1, 0])
        plt.show()
    """]), root / "book" / "01_ok.ipynb")
    nbformat.write(chapter(["""
        import teachlib
        teachlib.record(OUTPUT_DIR, before_failure=1.5)
        raise RuntimeError("this chapter's claim does not hold")
    """]), root / "book" / "02_broken.ipynb")
    nbformat.write(chapter(["print('never')"]), root / "book" / "03_unreached.ipynb")
    return root


def test_run_keeps_matplotlib_figures(fake_book, tmp_path):
    book.run(["01"], profile="quick", out=tmp_path, parameters={"RATE": 1}, root=fake_book,
             log_output=False)
    executed = nbformat.read(tmp_path / "01_ok.ipynb", as_version=4)
    images = [o for c in executed.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1  # plt.show() in a chapter must leave its figure in the notebook


def test_chapters_in_toc_order_and_selection(fake_book):
    assert [p.stem for p in book.chapters(fake_book)] == ["01_ok", "02_broken", "03_unreached"]
    assert [p.stem for p in book.select(fake_book, ["3", "01_ok"])] == ["03_unreached", "01_ok"]
    assert [p.stem for p in book.select(fake_book, ["02"])] == ["02_broken"]
    with pytest.raises(SystemExit, match="no chapter '07'"):
        book.select(fake_book, ["07"])


def test_real_book_chapters_follow_the_naming_contract():
    stems = [p.stem for p in book.chapters(REPO)]
    assert stems and stems[0] == "01_symmetry"
    assert all(s[:2].isdigit() and s[2] == "_" for s in stems)
    assert [int(s[:2]) for s in stems] == sorted(int(s[:2]) for s in stems)


def test_run_writes_metrics_even_when_a_chapter_fails(fake_book, tmp_path):
    out = tmp_path / "runs"
    with pytest.raises(book.ChapterFailed, match="02_broken"):
        book.run(profile="full", out=out, parameters={"SEED": 7, "RATE": 0.5}, root=fake_book, log_output=False)
    summary = json.loads((out / "metrics.json").read_text())
    assert list(summary) == ["01_ok", "02_broken"]  # stopped at the first failure
    ok = summary["01_ok"]
    assert ok["status"] == "ok" and ok["profile"] == "full" and ok["seed"] == 7 and ok["wall_s"] > 0
    assert ok["metrics"] == {"answer": 42, "seed_seen": 7, "rate": 0.5, "env_profile": 1.0}
    broken = summary["02_broken"]
    assert broken["status"] == "failed" and "claim does not hold" in broken["error"]
    assert broken["metrics"] == {"before_failure": 1.5}
    assert (out / "01_ok.ipynb").exists() and (out / "01_ok" / "metrics.json").exists()
    executed = nbformat.read(out / "01_ok.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata["tags"]
    assert f'OUTPUT_DIR = "{out / "01_ok"}"' in injected[0].source
    assert not (out / "03_unreached.ipynb").exists()


def test_command_line_contract(fake_book, tmp_path):
    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "teachlib.book", "run", "1", "--profile", "quick", "--out", str(out),
         "-p", "SEED", "3", "-p", "RATE", "1e-3", "--root", str(fake_book)],
        capture_output=True, text=True, env=os.environ | {"TEACHLIB_PROGRESS": "off"})
    assert result.returncode == 0, result.stderr
    entry = json.loads((out / "metrics.json").read_text())["01_ok"]
    assert entry["seed"] == 3 and entry["metrics"]["rate"] == 0.001 and entry["profile"] == "quick"
    assert "chapter one ran" in result.stdout + result.stderr  # the notebook's output is logged
    failing = subprocess.run(
        [sys.executable, "-m", "teachlib.book", "run", "02", "--out", str(out), "--root", str(fake_book)],
        capture_output=True, text=True, env=os.environ | {"TEACHLIB_PROGRESS": "off"})
    assert failing.returncode == 1 and "02_broken failed" in failing.stderr
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["01_ok"]["status"] == "ok" and summary["02_broken"]["status"] == "failed"  # merged


def test_parse_parameters():
    assert book.parse_parameters([("SEED", "7"), ("X", "[1, 2]"), ("S", "'07'")]) == {"SEED": 7, "X": [1, 2], "S": "07"}


def test_clean_strips_outputs(tmp_path):
    nb = chapter(["print(1)"])
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[-1].execution_count = 3
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    assert book.strip_outputs(path) and not book.strip_outputs(path)
    assert nbformat.read(path, as_version=4).cells[-1].outputs == []


def test_committed_notebooks_have_no_outputs():
    for path in sorted((REPO / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs]
        assert not with_outputs, f"{path.name} is committed with outputs in cells {with_outputs}: run `python -m teachlib.book clean`"


def test_every_chapter_has_the_contract_cells():
    for path in book.chapters(REPO):
        nb = nbformat.read(path, as_version=4)
        tagged = lambda tag: [c for c in nb.cells if tag in c.metadata.get("tags", [])]  # noqa: E731
        parameters = tagged("parameters")
        assert len(parameters) == 1, f"{path.name}: one cell tagged 'parameters'"
        for name in ("PROFILE", "SEED", "OUTPUT_DIR"):
            assert f"{name} = " in parameters[0].source, f"{path.name}: parameter {name}"
        assert f'settings("{path.stem}", PROFILE)' in "".join(c.source for c in nb.cells), \
            f"{path.name}: sizes must come from teachlib.profiles.settings"
        assert "teachlib.record(" in nb.cells[-1].source, f"{path.name}: the last cell records the claims"
        assert "assert " in nb.cells[-1].source, f"{path.name}: the last cell asserts the claims"
        solutions = tagged("solution")
        assert len(solutions) >= 2, f"{path.name}: at least two exercises with solutions"
        for cell in solutions:
            assert "hide-cell" in cell.metadata["tags"], f"{path.name}: solutions are folded (hide-cell)"
            previous = nb.cells[nb.cells.index(cell) - 1]
            assert previous.cell_type == "markdown" and "{exercise}" in previous.source, \
                f"{path.name}: a solution follows its exercise"


def test_build_shows_profile_and_seed_and_hides_injected_cell(fake_book, tmp_path):
    out = tmp_path / "runs"
    book.run(["01"], profile="quick", out=out, parameters={"SEED": 11, "RATE": 1}, root=fake_book, log_output=False)
    html = book.build(out, root=fake_book, output=tmp_path / "site")
    page = (html / "book" / "01_ok.html").read_text()
    assert "<strong>quick</strong> profile with seed <strong>11</strong>" in page
    assert str(out / "01_ok") not in page  # papermill's injected parameters are hidden
    assert "chapter one ran" in page  # outputs are shown, not re-executed away
    unexecuted = (html / "book" / "02_broken.html").read_text()
    assert "was not executed for this build" in unexecuted


def test_reference_tables_are_generated_and_in_sync():
    from teachlib import report

    stale = report.write(REPO, check=True)
    assert not stale, f"run `python -m teachlib.book tables`: {stale}"


def test_reference_records_a_run(fake_book, tmp_path):
    from teachlib import report

    out = tmp_path / "runs"
    book.run(["01"], profile="quick", out=out, parameters={"SEED": 2, "RATE": 1}, root=fake_book, log_output=False)
    (fake_book / "_config.yml").write_text("title: Fake\nrepository:\n  url: https://github.com/x/y\n")
    report.record_reference(out, fake_book, machine="test machine")
    reference = report.load(fake_book)
    assert reference["quick"]["01_ok"]["seed"] == 2 and reference["quick"]["01_ok"]["machine"] == "test machine"
    assert reference["quick"]["01_ok"]["metrics"]["answer"] == 42
    figures = (fake_book / report.GENERATED_DIR / "reference_figures.md").read_text()
    assert "| `answer` | 42 | — |" in figures and "seed 2" in figures
    timings = (fake_book / report.GENERATED_DIR / "timings.md").read_text()
    assert "colab/01_ok.ipynb" in timings and "02_broken` | not measured yet" in timings
