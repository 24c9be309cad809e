"""Open every page of the built book in a real, offline browser and check what a reader sees.

Headless Chromium (Debian's ``chromium``; WebGL through SwiftShader, no GPU needed) is driven
by Playwright.  The HTML folder is served from a local HTTP server; every request to another
host is blocked, twice over (DNS rules of the browser, and request interception that records
the URL).  A page fails on:

* a console error or an uncaught JavaScript exception (minus ``KNOWN_HARMLESS``),
* a failed request or an HTTP error (a blocked request to the outside counts),
* a broken image, or a matplotlib figure that reached the page only as its text repr,
* a widget view that was not rendered, a ``teachlib.viz3d`` view that did not draw its 3D
  canvas (the reader sees only the static picture), or a view that drew blank pixels.

Screenshots (the full page, and each view) are written to ``screenshots``.

Usage::

    python -m teachlib.browser_check _build/html --screenshots _build/screenshots

Example:
    >>> reports = check_site("_build/html", screenshots="_build/screenshots")  # doctest: +SKIP
    >>> [r.page for r in reports if r.problems]  # doctest: +SKIP
    []
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import re
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader",  # WebGL on the CPU
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no outside network
]

# Console messages of the pinned toolchain that do not affect readers: (regex, why).
KNOWN_HARMLESS = [
    (r"Identifier 'THEBE_JS_URL' has already been declared",
     "sphinx-thebe 0.3.1 registers its inline config script while the builder is running, "
     "and Sphinx 7.4 then writes it twice into each page; the second `const` throws. Thebe "
     "(live code) is not used by this book."),
]

WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class Report:
    """What one page showed: its problems (empty when it passed) and its views' ink."""

    page: str
    problems: list[str] = field(default_factory=list)
    views: dict[int, float] = field(default_factory=dict)  # view number -> ink (fraction)
    seconds: float = 0.0


def find_chromium() -> str:
    """Path of the Chromium binary: ``$CHROMIUM``, else ``chromium`` on the PATH."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise FileNotFoundError("no Chromium found (Debian: apt-get install chromium), "
                            "or set CHROMIUM to its path")


@contextlib.contextmanager
def serve(folder):
    """Serve ``folder`` on a free port of 127.0.0.1; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # e.g. the browser dropping a connection; failures show up in the browser

    handler = functools.partial(Quiet, directory=str(folder))
    server = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def book_pages(html_dir) -> list[str]:
    """Every HTML page of a built book, relative to ``html_dir`` (asset folders skipped)."""
    html_dir = Path(html_dir)
    pages = [p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")]
    return sorted(p for p in pages if not any(part.startswith("_") for part in p.split("/")))


def ink(png: bytes) -> float:
    """Fraction of pixels that differ from the most common (background) colour.

    >>> from PIL import Image
    >>> im = Image.new("RGB", (10, 10), "white"); im.paste((255, 0, 0), (0, 0, 5, 2))
    >>> buf = io.BytesIO(); im.save(buf, "png"); ink(buf.getvalue())
    0.1
    """
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    flat = pixels.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float((np.abs(flat - background).max(axis=1) > 24).mean())


def check_site(html_dir, *, screenshots=None, pages=None, view_timeout_s: float = 30,
               min_ink: float = 0.003, chromium_args=()) -> list[Report]:
    """Check the pages (default: all) of a built HTML folder; see the module docstring.

    ``min_ink`` is the least fraction of a view's pixels that must differ from its
    background; ``chromium_args`` are added to ``CHROMIUM_ARGS`` (e.g. ``--disable-3d-apis``
    to see what readers without WebGL get).
    """
    from playwright.sync_api import sync_playwright

    html_dir = Path(html_dir)
    if not (html_dir / "index.html").exists():
        raise FileNotFoundError(f"{html_dir}/index.html not found: build the book first")
    shots = Path(screenshots) if screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    reports = []
    with serve(html_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(),
                                     args=[*CHROMIUM_ARGS, *chromium_args])
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        for page_path in pages or book_pages(html_dir):
            target = _redirect(html_dir, page_path)
            if target is not None:  # Jupyter Book's index.html: check only where it leads
                missing = not (html_dir / page_path).parent.joinpath(target).is_file()
                reports.append(Report(page_path, [f"redirect to a missing page: {target}"]
                                      if missing else []))
                continue
            reports.append(_check_page(context, base, page_path, shots, view_timeout_s, min_ink))
        browser.close()
    return reports


def _redirect(html_dir, page_path):
    """Where a page that is only a meta-refresh redirect leads, else None."""
    text = (Path(html_dir) / page_path).read_text(errors="replace")[:2000]
    found = re.search(r'<meta http-equiv="refresh" content="[0-9]+; *url=([^"#?]+)', text, re.I)
    return found.group(1) if found else None


def _check_page(context, base, page_path, shots, view_timeout_s, min_ink) -> Report:
    report = Report(page_path)
    problems = report.problems
    start = time.perf_counter()
    page = context.new_page()

    def on_route(route):
        url = route.request.url
        if urlparse(url).scheme in ("http", "https", "ws", "wss") and \
                urlparse(url).hostname not in LOCAL_HOSTS:
            problems.append(f"request to the outside network (blocked): {url}")
            return route.abort("blockedbyclient")
        return route.continue_()

    def on_console(msg):
        # "Failed to load resource" repeats a request failure, reported with its URL below
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            _add_unless_harmless(problems, f"console error: {msg.text}")

    def on_failed(request):
        blocked = (request.failure or "").startswith("net::ERR_BLOCKED_BY_CLIENT")
        if not (_is_favicon(request.url) or blocked):  # blocked ones are reported above
            problems.append(f"request failed ({request.failure}): {request.url}")

    def on_response(response):
        if response.status >= 400 and not _is_favicon(response.url):
            problems.append(f"HTTP {response.status}: {response.url}")

    page.route("**/*", on_route)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: _add_unless_harmless(problems, f"page error: {exc}"))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)

    page.goto(base + page_path, wait_until="load")
    # Unfold folded cells and load lazy images, so that everything can be looked at.
    page.evaluate("""() => {
        document.querySelectorAll('details').forEach(d => { d.open = true; });
        document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; });
    }""")
    slug = page_path.removesuffix(".html").replace("/", "__")
    n_views = page.locator(WIDGET_VIEW).count()
    if n_views:
        _wait_for_views(page, view_timeout_s)
    page.wait_for_load_state("networkidle")
    problems.extend(_broken_images(page))
    problems.extend(_figures_as_text(page))
    for i in range(n_views):
        problems.extend(_check_view(page, i, report, shots, slug, view_timeout_s, min_ink))
    if shots:
        page.screenshot(path=shots / f"{slug}.png", full_page=True)
    page.close()
    report.problems = [p if n == 1 else f"{p} (x{n})" for p, n in Counter(problems).items()]
    report.seconds = time.perf_counter() - start
    return report


def _wait_for_views(page, timeout_s):
    """Until every widget view is rendered and every viz3d view has a canvas, or timeout."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"""() => {{
            const views = [...document.querySelectorAll('{WIDGET_VIEW}')];
            const rendered = views.every(s => s.previousElementSibling
                && s.previousElementSibling.classList.contains('widget-subarea')
                && s.previousElementSibling.childElementCount > 0);
            const drawn = [...document.querySelectorAll('.teachlib-viz3d')]
                .every(v => v.querySelector('canvas'));
            return rendered && drawn;
        }}""", timeout=timeout_s * 1000)
    except PlaywrightTimeout:  # what is missing is reported view by view
        pass


def _check_view(page, i, report, shots, slug, timeout_s, min_ink) -> list[str]:
    """Problems of the i-th widget view: not rendered, 3D canvas missing, or blank."""
    info = page.evaluate(f"""i => {{
        const s = document.querySelectorAll('{WIDGET_VIEW}')[i];
        const view = s.previousElementSibling;
        const ok = view && view.classList.contains('widget-subarea');
        const target = ok ? (view.querySelector('canvas') || view) : null;
        if (target) target.setAttribute('data-browser-check', 'view-' + i);
        const box = target ? target.getBoundingClientRect() : null;
        return {{rendered: !!ok, viz3d: !!s.closest('.teachlib-viz3d'),
                 canvas: !!(ok && view.querySelector('canvas')),
                 visible: !!(box && box.width > 0 && box.height > 0)}};
    }}""", i)
    name = f"widget view {i + 1}"
    if not info["rendered"]:
        report.views[i + 1] = 0.0
        return [f"{name} was not rendered (its JavaScript did not load or failed)"]
    if info["viz3d"] and not info["canvas"]:
        report.views[i + 1] = 0.0
        return [f"{name}: the 3D view drew no canvas; readers see only the static picture"]
    if not info["visible"]:
        if info["canvas"]:
            return [f"{name}: its 3D canvas has no size on the page"]
        return []  # a widget without looks, e.g. nglview's hidden colour-scheme registry
    target = page.locator(f'[data-browser-check="view-{i}"]')
    target.scroll_into_view_if_needed()
    deadline = time.perf_counter() + timeout_s
    while True:  # WebGL draws asynchronously: look again until ink or timeout
        png = target.screenshot()
        fraction = ink(png)
        if fraction >= min_ink or time.perf_counter() > deadline:
            break
        page.wait_for_timeout(500)
    report.views[i + 1] = fraction
    if shots:
        (shots / f"{slug}.view{i + 1}.png").write_bytes(png)
    if fraction < min_ink:
        return [f"{name} is blank ({fraction:.2%} of its pixels drawn, need {min_ink:.2%})"]
    return []


def _broken_images(page) -> list[str]:
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=30_000)
    broken = page.evaluate("""() => [...document.images]
        .filter(i => i.naturalWidth === 0).map(i => i.currentSrc || i.src)""")
    return [f"broken image: {src[:120]}" for src in broken]


def _figures_as_text(page) -> list[str]:
    texts = page.evaluate("""() => [...document.querySelectorAll('.cell_output pre')]
        .map(p => p.textContent).filter(t => /<Figure size [0-9.]+x[0-9.]+ with/.test(t))""")
    return [f"figure missing, only its text reached the page: {t.strip()[:80]}" for t in texts]


def _add_unless_harmless(problems, message):
    if not any(re.search(pattern, message) for pattern, _ in KNOWN_HARMLESS):
        problems.append(message)


def _is_favicon(url):
    # Chromium asks every site for /favicon.ico by itself; the book links none.
    return urlparse(url).path == "/favicon.ico"


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m teachlib.browser_check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", help="built book, e.g. _build/html")
    parser.add_argument("--screenshots", help="folder for screenshots, e.g. _build/screenshots")
    parser.add_argument("--page", action="append", help="check only this page (repeatable)")
    parser.add_argument("--chromium-arg", action="append", default=[],
                        help="extra Chromium flag, e.g. --chromium-arg=--disable-3d-apis")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    reports = check_site(args.html_dir, screenshots=args.screenshots, pages=args.page,
                         chromium_args=args.chromium_arg)
    for r in reports:
        views = "".join(f" view{i}={f:.1%}" for i, f in r.views.items())
        print(f"{'FAIL' if r.problems else 'ok  '} {r.page} ({r.seconds:.1f} s){views}")
        for problem in r.problems:
            print(f"       {problem}")
    failed = sum(bool(r.problems) for r in reports)
    print(f"{len(reports) - failed} passed, {failed} failed "
          f"({time.perf_counter() - start:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
