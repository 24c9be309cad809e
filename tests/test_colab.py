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


# Colab's Python and jax: Colab itself cannot be reached from here, so the install line is
# resolved by pip for its Python (3.12, manylinux x86_64, wheels only) against jax versions
# Colab has shipped (0.7.2 in late 2025) and the newest that supports our pins.
COLAB_PYTHON = "3.12"
COLAB_JAX_VERSIONS = ["0.7.2", "0.10.2"]


def _nglview_requirements(tmp_path) -> list[str]:
    """nglview ships only an sdist: resolve its declared run-time requirements instead."""
    import subprocess
    import sys
    import tarfile

    pin = next(p for p in colab.COLAB_PACKAGES if p.startswith("nglview"))
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    "-d", str(tmp_path), pin], check=True)
    sdist = next(tmp_path.glob("nglview-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        info = next(m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("PKG-INFO"))
        text = tar.extractfile(info).read().decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line]


def test_colab_install_line_resolves_for_colabs_python(tmp_path):
    import json
    import subprocess
    import sys
    import tomllib

    teachlib_deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    packages = [p for p in colab.COLAB_PACKAGES if not p.startswith("nglview")]
    packages += _nglview_requirements(tmp_path) + teachlib_deps
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28, 31, 34, 35, 39)]
    for jax_version in COLAB_JAX_VERSIONS:
        report = tmp_path / f"report-{jax_version}.json"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
             "--report", str(report), "--target", str(tmp_path / "target"), "--python-version", COLAB_PYTHON,
             "--implementation", "cp", *platforms, "--only-binary=:all:",
             *packages, f"jax=={jax_version}", f"jaxlib=={jax_version}"],
            capture_output=True, text=True)
        assert result.returncode == 0, f"jax {jax_version}: {result.stderr[-2000:]}"
        chosen = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                  for item in json.loads(report.read_text())["install"]}
        assert chosen["jax"] == jax_version and chosen["jaxlib"] == jax_version  # Colab's jax untouched
        for pin in packages:
            if "==" in pin:
                name, version = pin.split("==")
                assert chosen[name.lower()] == version
