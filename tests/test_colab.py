"""Colab: the set-up cell and the student editions are generated and in sync; stubs hide solutions."""

from __future__ import annotations

from pathlib import Path

import nbformat

from teachlib import book, colab

REPO = Path(__file__).resolve().parents[1]


def test_setup_cells_are_in_sync():
    stale = colab.sync(REPO, check=True)
    assert not stale, f"run `python -m teachlib.colab sync`: {stale}"


def test_student_editions_are_in_sync():
    stale = colab.write_student_editions(REPO, check=True)
    assert not stale, f"run `python -m teachlib.colab students`: {stale}"


def test_student_editions_hide_solutions_and_keep_the_setup_cell():
    for chapter in book.chapters(REPO):
        original = nbformat.read(chapter, as_version=4)
        student = nbformat.read(REPO / "colab" / chapter.name, as_version=4)
        solutions = [c.source for c in original.cells if "solution" in c.metadata.get("tags", [])]
        stubs = [c.source for c in student.cells if "solution" in c.metadata.get("tags", [])]
        assert len(stubs) == len(solutions) >= 2
        for solution, stub in zip(solutions, stubs):
            body = [line.strip() for line in solution.splitlines()
                    if line.strip() and not line.lstrip().startswith(("def ", "@", "#"))]
            assert not any(line in stub for line in body), f"{chapter.name}: a stub shows its solution"
        assert any(colab.TAG in c.metadata.get("tags", []) for c in student.cells)
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
        assert "colab.research.google.com" in student.cells[0].source


def test_setup_cell_installs_only_what_colab_lacks_and_keeps_its_jax():
    source = colab.setup_cell_source(REPO)
    assert source.splitlines()[0].startswith("# Set-up for Google Colab")
    assert 'if "google.colab" in sys.modules:' in source
    install = next(line for line in source.splitlines() if "%pip install" in line)
    assert '"jax=={jax.__version__}"' in install and '"jaxlib=={jaxlib.__version__}"' in install
    assert "flax" not in install and "optax" not in install  # Colab ships them
    assert f"@{colab.git_ref()}" in install and colab.repository_url(REPO) in install
    assert "enable_custom_widget_manager" in source
