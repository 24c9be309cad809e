"""The HTML book, built from the chapters executed in this test session (tests/test_chapters.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from teachlib import book

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.book


def test_front_matter_and_every_chapter_are_pages(html):
    for page in ["index.html", "book/intro.html", "book/notation.html", "book/troubleshooting.html",
                 "book/bibliography.html"] + [f"book/{p.stem}.html" for p in book.chapters(REPO)]:
        assert (html / page).is_file(), page


@pytest.mark.parametrize("stem", [p.stem for p in book.chapters(REPO)])
def test_chapter_page_has_figures_launch_button_and_run_info(html, stem):
    page = (html / "book" / f"{stem}.html").read_text()
    images = re.findall(r'<img[^>]+src="([^"]+)"', page)
    assert images, f"{stem}: no figures"
    for src in images:
        if not src.startswith("data:"):
            assert (html / "book" / src.split("?")[0]).resolve().is_file(), f"{stem}: broken image {src}"
    assert "colab.research.google.com/github/" in page and f"book/{stem}.ipynb" in page
    assert "How this page was produced" in page and "<strong>quick</strong> profile" in page
    assert "injected-parameters" not in page
    assert "Traceback" not in page


def test_pages_load_nothing_from_the_internet(html):
    for page in html.rglob("*.html"):
        text = page.read_text()
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', text)
        assert not remote, f"{page.relative_to(html)} loads {remote}"
    assert (html / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()


def test_performance_appendix_shows_the_generated_benchmark_table(html):
    page = (html / "book" / "appendix_performance.html").read_text()
    generated = (REPO / "book" / "generated" / "peer_benchmark.md").read_text()
    assert "<table" in page and "peer / teachlib" in page
    measured = re.search(r"Measured (\d{4}-\d\d-\d\d)", generated).group(1)
    assert measured in page  # the date, machine and numbers come from the included file
