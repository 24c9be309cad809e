"""The offline browser check (teachlib/browser_check.py): it fails where it must, and it
passes on the built book.

Marked ``browser``: needs Debian's ``chromium`` and the ``playwright`` package.  Without a
Chromium these tests skip, except under CI (``CI=true``), where that is an error.

``test_built_book`` checks the book built in this test session from the chapters it ran
(the ``html`` fixture, ``_build/html``) and keeps the screenshots in ``_build/screenshots``.
To check a book built earlier without running anything: ``python -m teachlib.browser_check
_build/html --screenshots _build/screenshots``.
"""

import base64
import io
import os
from pathlib import Path

import pytest

from teachlib import browser_check

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium():
    pytest.importorskip("playwright", reason="the browser check needs playwright")
    try:
        return browser_check.find_chromium()
    except FileNotFoundError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(err))


VIEW = '<script type="application/vnd.jupyter.widget-view+json">' \
       '{"model_id": "m", "version_major": 2, "version_minor": 0}</script>'


def _png() -> str:
    """A small red PNG, base64, for pages that need a valid picture."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 40), "red").save(buf, "png")
    return base64.b64encode(buf.getvalue()).decode()


PNG = _png()
# WebGL: a white background with a red rectangle (a uniform canvas would count as blank)
DRAW = """<script>
  const gl = document.querySelector('canvas').getContext('webgl');
  gl.clearColor(1, 1, 1, 1); gl.clear(gl.COLOR_BUFFER_BIT);
  gl.enable(gl.SCISSOR_TEST); gl.scissor(50, 50, 100, 50);
  gl.clearColor(0.8, 0.1, 0.1, 1); gl.clear(gl.COLOR_BUFFER_BIT);
</script>"""

# page -> (body, what its problems must mention; empty: the page must pass)
PAGES = {
    "good.html": (f'<div class="widget-subarea"><canvas width="300" height="150"></canvas></div>'
                  f'{VIEW}{DRAW}', []),
    "blank.html": (f'<div class="widget-subarea"><canvas width="300" height="150"></canvas></div>'
                   f'{VIEW}', ["widget view 1 is blank"]),
    "unrendered.html": (VIEW, ["widget view 1 was not rendered"]),
    "picture_only.html": (f'<div class="teachlib-viz3d"><img src="data:image/png;base64,{PNG}">'
                          f'<div class="widget-subarea"><div>NGL failed</div></div>{VIEW}</div>',
                          ["drew no canvas"]),
    "broken_image.html": ('<img src="missing.png">', ["HTTP 404", "broken image"]),
    "console_error.html": ('<script>console.error("boom")</script>', ["console error: boom"]),
    "page_error.html": ('<script>null.x</script>', ["page error"]),
    "outside.html": ('<script src="https://cdn.example.org/lib.js"></script>',
                     ["request to the outside network (blocked): https://cdn.example.org"]),
    "figure_text.html": ('<div class="cell_output"><pre>&lt;Figure size 640x480 with 1 Axes&gt;'
                         '</pre></div>', ["figure missing"]),
    "known_harmless.html": ("<script>const THEBE_JS_URL = 1;</script>"
                            "<script>const THEBE_JS_URL = 1;</script>", []),
    "index.html": ('<meta http-equiv="Refresh" content="0; url=good.html" />', []),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    for name, (body, _) in PAGES.items():
        (root / name).write_text(f"<!DOCTYPE html><html><head><title>{name}</title></head>"
                                 f"<body>{body}</body></html>")
    return root


def test_check_fails_where_it_must(chromium, site, tmp_path):
    reports = browser_check.check_site(site, screenshots=tmp_path, view_timeout_s=3)
    by_page = {r.page: r for r in reports}
    assert sorted(by_page) == sorted(PAGES)
    for page, (_, expected) in PAGES.items():
        problems = " | ".join(by_page[page].problems)
        if not expected:
            assert by_page[page].problems == [], f"{page}: {problems}"
        for text in expected:
            assert text in problems, f"{page}: expected {text!r} in {problems!r}"
    # WebGL works here (SwiftShader), and the drawn view was measured and kept
    assert by_page["good.html"].views[1] > 0.05  # 100x50 of 300x150 pixels
    assert (tmp_path / "good.view1.png").exists() and (tmp_path / "good.png").exists()


@pytest.mark.book
def test_built_book(chromium, html):
    reports = browser_check.check_site(html, screenshots=html.parent / "screenshots")
    failed = {r.page: r.problems for r in reports if r.problems}
    assert not failed, "\n".join(f"{page}: {p}" for page, ps in failed.items() for p in ps)
    assert sum(len(r.views) for r in reports) >= 1, "the book shows no 3D view"
