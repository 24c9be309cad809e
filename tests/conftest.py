"""Shared fixtures: the BaTiO3 archive, a private data cache, and the chapters run once per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI must be deterministic); run with
# HYPOTHESIS_PROFILE=explore to search new random examples locally.
settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

REPO = Path(__file__).resolve().parents[1]


def bto_folder() -> Path | None:
    """The folder with the BaTiO3 archive: $TEACHLIB_DATA, else ../shared/data/bto beside the repo."""
    for candidate in (os.environ.get("TEACHLIB_DATA"), REPO.parent / "shared" / "data" / "bto"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def bto_dir() -> Path:
    folder = bto_folder()
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide the BaTiO3 data (TEACHLIB_DATA=../shared/data/bto)")
        pytest.skip("no BaTiO3 data: set TEACHLIB_DATA to the folder holding the archive")
    return folder


@pytest.fixture(scope="session")
def batio3(bto_dir, tmp_path_factory):
    """The 50 snapshots, loaded once per session into a private cache."""
    from teachlib.data import load_batio3

    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("TEACHLIB_CACHE")
    os.environ["TEACHLIB_CACHE"] = str(cache)
    try:
        return load_batio3(bto_dir)
    finally:
        if old is None:
            os.environ.pop("TEACHLIB_CACHE")
        else:
            os.environ["TEACHLIB_CACHE"] = old


@pytest.fixture(scope="session")
def book_runs(bto_dir) -> dict:
    reuse = os.environ.get("TEACHLIB_REUSE_RUNS")
    if reuse:
        return json.loads((Path(reuse) / "metrics.json").read_text())
    out = REPO / "_build" / "test-runs"
    os.environ.setdefault("TEACHLIB_DATA", str(bto_dir))
    from teachlib import book

    try:
        return book.run(profile="quick", out=out, parameters={"SEED": 0}, root=REPO)
    except book.ChapterFailed:
        return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="session")
def html(book_runs) -> Path:
    from teachlib import book

    runs = Path(os.environ.get("TEACHLIB_REUSE_RUNS") or REPO / "_build" / "test-runs")
    return book.build(runs, root=REPO)


@pytest.fixture
def x64():
    """Run a test in float64 (``jax_enable_x64``) and restore the previous setting after it."""
    import jax

    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
