"""3D views of atomic structures that work live *and* in the static HTML book.

One function for the chapters, :func:`show`, and one build step, this module used as a
Sphinx extension.

In a live Jupyter or Colab session ``show(atoms)`` is an interactive nglview widget.  In a
notebook executed by papermill for the book, the same output also carries a static picture
(an ``ase``/matplotlib render) and the widget's state; the built HTML page then draws the
interactive view with nglview's own JavaScript served from the book's ``_static`` folder,
fully offline, and shows the picture wherever the view cannot draw (no JavaScript, no WebGL,
a notebook executed without widget state).

Why the build step is needed (measured in a real browser, see ``teachlib.browser_check``):

* nglview 4.0.1 declares ``model_module_version`` "4.0" but bundles widget JavaScript 3.1.5,
  and npm has no ``nglview-js-widgets@4.0``; myst-nb's default embed manager
  (``@jupyter-widgets/html-manager`` from a CDN) looks the module up on that CDN, so the view
  stays blank online and nothing loads offline.
* The fix: serve the bundle that ships inside the installed nglview package (so JavaScript and
  Python always match), plus RequireJS and the html-manager from npm (pinned, sha512
  checked), from ``_static/viz3d/``, and tell RequireJS where ``nglview-js-widgets`` lives
  (``require-config.js`` below).  The manager asks RequireJS for a module by name before it
  tries a CDN, so the unpublished version number no longer matters.
* Jupyter Book 1.x adds *every* ``*.js`` under the book's ``_static/`` to every page, which
  breaks AMD modules (``Mismatched anonymous define()``).  So the files are vendored into a
  separate static folder (default ``_build/viz3d_static``) that this extension adds to
  ``html_static_path`` after Jupyter Book has scanned ``_static``.
* Live, the same version mismatch makes JupyterLab refuse the widget ("version 4.0 is not
  registered, however, 3.1.5 is"); :func:`show` declares the installed version instead.
* Sphinx loads MathJax from a CDN too, so any page with math fails offline; the extension
  vendors MathJax (npm registry, pinned) the same way and sets ``mathjax_path``.

Use in ``_config.yml`` (see ``docs/viz3d_config.yml``)::

    sphinx:
      extra_extensions:
        - teachlib.viz3d

The extension also makes the HTML builder prefer an output's ``text/html`` form over its
live-widget form when an output has both (only :func:`show` produces such outputs), so the
static picture travels with the view.

Example:
    >>> import numpy as np
    >>> from ase import Atoms
    >>> from ase.build import make_supercell
    >>> cell = Atoms("BaTiO3", cell=[4.0, 4.0, 4.0], pbc=True, scaled_positions=[
    ...     [0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])
    >>> view = show(make_supercell(cell, 3 * np.eye(3)))
    >>> view
    <3D view of Ba27O81Ti27 (135 atoms, periodic)>
    >>> sorted(view._repr_mimebundle_())  # live frontends pick the widget, the book the HTML
    ['application/vnd.jupyter.widget-view+json', 'text/html', 'text/plain']
"""

from __future__ import annotations

import base64
import html
import io
import json
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from teachlib import vendor

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"

MATHJAX_ENTRY = "tex-mml-chtml.js"  # Sphinx's default MathJax component

# Runs after require.js and before the html-manager (nb_ipywidgets_js keeps this order).
# It maps module names to the vendored files, relative to its own URL so that pages at any
# depth work.  The html-manager's bundled modules load their icon fonts from the directory
# of their module URL, hence the four @jupyter-widgets entries.
# The inert marker <script> (a type browsers neither fetch nor run) is for pages opened from
# file://: nglview's webpack bundle runs inside an AMD factory, where document.currentScript
# is null, so webpack's "auto" publicPath scans the page's <script src> elements from the
# last one back to the first, keeps the first http(s) URL and, on file:// where there is
# none, the first element's src; an empty src throws "Automatic publicPath is not supported"
# and the view falls back to its picture.  With the marker first, the scan ends at
# nglview's own folder.  Over http(s) the marker changes nothing.
REQUIRE_CONFIG_JS = """\
// teachlib.viz3d: where RequireJS finds the widget modules vendored next to this file.
(function () {
  var here = document.currentScript.src.replace(/[^\\/]*$/, "");
  var marker = document.createElement("script");
  marker.type = "text/x-teachlib-viz3d";  // not JavaScript: never fetched nor run
  marker.src = here + "nglview-js-widgets/index.js";
  document.head.prepend(marker);
  window.require.config({
    paths: {
      "nglview-js-widgets": here + "nglview-js-widgets/index",
      "@jupyter-widgets/base": here + "base",
      "@jupyter-widgets/controls": here + "controls",
      "@jupyter-widgets/html-manager": here + "html-manager",
      "@jupyter-widgets/html-manager/dist": here.slice(0, -1)
    }
  });
})();
"""

# Icon fonts (Font Awesome) that the html-manager's CSS loads from next to embed-amd.js.
_FONTS = (".woff2", ".woff", ".ttf", ".eot", ".svg")

# Hides the static picture once the interactive view has drawn its canvas.
_FALLBACK_CSS = ".teachlib-viz3d:has(canvas) > .teachlib-viz3d-fallback { display: none; }"


# --------------------------------------------------------------------------- the view


class View:
    """A 3D view: an nglview widget (``.widget``) plus a static picture (``.png``).

    Displaying it gives a bundle with the widget (what Jupyter, JupyterLab and Colab show)
    and an HTML form holding the picture and a reference to the widget (what the built book
    shows: the picture until the embedded widget has drawn).
    """

    def __init__(self, atoms, widget, png: bytes | None):
        self.atoms = atoms
        self.widget = widget  # nglview.NGLWidget, or None where nglview is not installed
        self.png = png

    def __repr__(self) -> str:
        kind = "periodic" if self.atoms.pbc.any() else "finite"
        formula = self.atoms.get_chemical_formula()
        return f"<3D view of {formula} ({len(self.atoms)} atoms, {kind})>"

    def _html(self) -> str:
        parts = [f'<div class="teachlib-viz3d"><style>{_FALLBACK_CSS}</style>']
        if self.png is not None:
            src = "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")
            alt = html.escape(f"{self!r} (static picture)")
            parts.append(f'<img class="teachlib-viz3d-fallback" src="{src}" alt="{alt}">')
        if self.widget is not None:
            ref = json.dumps({"version_major": 2, "version_minor": 0,
                              "model_id": self.widget.model_id})
            parts.append(f'<script type="{WIDGET_VIEW_MIME}">{ref}</script>')
        parts.append("</div>")
        return "".join(parts)

    def _repr_mimebundle_(self, include=None, exclude=None):
        data = {"text/plain": repr(self), "text/html": self._html()}
        if self.widget is not None:
            data[WIDGET_VIEW_MIME] = self.widget._repr_mimebundle_()[WIDGET_VIEW_MIME]
        return data


def show(atoms, *, style: str = "ball+stick", unit_cell: bool | None = None,
         height: int = 400, picture: bool = True, rotation: str = "-60x,-20y") -> View:
    """Show atoms in 3D: an nglview widget live, the same view (and a picture) in the book.

    Args:
        atoms: an ``ase.Atoms``, periodic (e.g. a 135-atom BaTiO3 cell) or not (a motif).
        style: NGL representation, e.g. ``"ball+stick"``, ``"spacefill"``, ``"licorice"``.
        unit_cell: draw the cell; default: when ``atoms`` is periodic.
        height: height of the view in pixels.
        picture: also render the static picture (fallback where the view cannot draw).
        rotation: viewing direction of the static picture (``ase`` rotation string).

    Returns:
        A :class:`View`; make it the last expression of a cell to display it.

    Example:
        >>> from ase.build import bulk
        >>> motif = bulk("Si", "diamond", a=5.43, cubic=True)[:8]  # 8 Si, no cell
        >>> motif.pbc = False
        >>> v = show(motif, picture=False)
        >>> v.widget is not None and v.png is None
        True
    """
    atoms = atoms.copy()
    if unit_cell is None:
        unit_cell = bool(atoms.pbc.any())
    widget = _nglview_widget(atoms, style=style, unit_cell=unit_cell, height=height)
    png = _picture(atoms, unit_cell=unit_cell, rotation=rotation, height=height) \
        if picture else None
    return View(atoms, widget, png)


def _nglview_widget(atoms, *, style, unit_cell, height):
    from IPython.utils.capture import capture_output

    try:
        # On import, nglview displays a colour-scheme registry widget that declares the
        # unpublished JS version (see below) and shows as an error box in JupyterLab;
        # this book uses no custom colour schemes, so its display is dropped.
        with capture_output():
            import nglview
    except ImportError:  # the static picture still shows the structure
        return None
    # nglview 4.0.1 declares JS "4.0" but installs and registers JS 3.1.5: JupyterLab then
    # refuses the widget ("version 4.0 is not registered, however, 3.1.5 is"), and a CDN
    # loader (Colab's) finds no 4.0 on npm.  Declaring the installed version fixes
    # JupyterLab (measured) and names a version npm has; where declaration and
    # installation agree, this changes nothing.
    version = _nglview_js_version()
    declared = {"_model_module_version": version, "_view_module_version": version}
    widget = nglview.NGLWidget(**(declared if version else {}))
    # NGL's default representation also fits the camera to the structure; then ours
    widget.add_component(nglview.ASEStructure(atoms), default_representation=True)
    widget.clear_representations()
    widget.add_representation(style, selection="all")
    if unit_cell:
        widget.add_unitcell()
    widget.layout.width = "100%"
    widget.layout.height = f"{height}px"
    return widget


def _nglview_js_version() -> str | None:
    """Version of the nglview JavaScript installed for JupyterLab (its labextension)."""
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path("labextensions", "nglview-js-widgets"):
        package = Path(folder) / "package.json"
        if package.is_file():
            return json.loads(package.read_text())["version"]
    return None


def _picture(atoms, *, unit_cell, rotation, height) -> bytes:
    """A PNG of the structure drawn with ase and matplotlib (Agg, no display needed)."""
    from ase.visualize.plot import plot_atoms
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(height / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    plot_atoms(atoms, ax, rotation=rotation, radii=0.5, show_unit_cell=2 if unit_cell else 0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})  # no timestamp
    return buf.getvalue()


# --------------------------------------------------------------------------- the build step


def install_static(dest) -> Path:
    """Vendor what the offline HTML needs into ``dest``; return ``dest``.

    ``dest`` becomes a Sphinx ``html_static_path`` entry, so that its ``viz3d/`` (widget
    JavaScript) and ``mathjax/`` folders end up in ``_static/`` of the built HTML.  The npm
    tarballs (:data:`teachlib.vendor.PACKAGES`) are downloaded once, checked against their
    pinned sha512 and kept in ``dest/.tarballs``; nglview's bundle is copied from the
    installed nglview package.  Calling it again is cheap and gives the same files.

    Example:
        >>> dest = install_static("_build/viz3d_static")  # doctest: +SKIP
        >>> sorted(p.name for p in (dest / "viz3d").iterdir())  # doctest: +SKIP
        [...'embed-amd.js', 'nglview-js-widgets', 'require-config.js', 'require.js']
    """
    dest = Path(dest)
    tarballs = dest / ".tarballs"
    for folder in (dest / "viz3d", dest / "mathjax"):
        if folder.exists():
            shutil.rmtree(folder)
    out = dest / "viz3d"

    _extract(vendor.fetch("@jupyter-widgets/html-manager", tarballs), "package/dist/",
             out, lambda rel: rel == "embed-amd.js" or rel.endswith(_FONTS))
    _extract(vendor.fetch("requirejs", tarballs), "package/", out,
             lambda rel: rel == "require.js")
    (out / "require-config.js").write_text(REQUIRE_CONFIG_JS)
    ngl = _nglview_nbextension()
    (out / "nglview-js-widgets").mkdir(parents=True)
    for f in sorted(ngl.iterdir()):
        if f.name in ("index.js", "index.js.LICENSE.txt") or f.suffix == ".png":
            shutil.copyfile(f, out / "nglview-js-widgets" / f.name)

    # MathJax's combined TeX component and the parts it loads on demand (fonts, TeX
    # extensions, menu, accessibility), not the other combined bundles.
    _extract(vendor.fetch("mathjax", tarballs), "package/es5/", dest / "mathjax",
             lambda rel: "/" in rel or rel == MATHJAX_ENTRY)
    return dest


def _extract(tarball: Path, prefix: str, out: Path, keep) -> None:
    """Write the regular files under ``prefix`` of ``tarball`` that ``keep`` accepts to ``out``.

    ``keep`` gets the path relative to ``prefix``; paths that could leave ``out`` (absolute,
    or with ``..``) are refused.
    """
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            rel = member.name.removeprefix(prefix)
            if not (member.isfile() and member.name.startswith(prefix) and keep(rel)):
                continue
            parts = PurePosixPath(rel).parts
            if PurePosixPath(rel).is_absolute() or ".." in parts:
                raise RuntimeError(f"{tarball.name}: refusing to extract {member.name}")
            target = out.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())


def _nglview_nbextension() -> Path:
    """The folder of nglview's bundled widget JavaScript (``nglview-js-widgets/index.js``)."""
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path("nbextensions", "nglview-js-widgets"):
        if (Path(folder) / "index.js").is_file():
            return Path(folder)
    raise RuntimeError("nglview's JavaScript (nbextensions/nglview-js-widgets/index.js) was "
                       "not found in the Jupyter data paths; is nglview installed here?")


def setup(app):
    """Sphinx extension: vendor the JavaScript and point myst-nb at it (see module docs)."""
    app.add_config_value("viz3d_static_dir", "", "html")
    app.connect("config-inited", _configure)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


def _configure(app, config):
    dest = (Path(app.confdir) / config.viz3d_static_dir if config.viz3d_static_dir
            else Path(app.outdir).parent / "viz3d_static")
    install_static(dest)
    config.html_static_path = [*config.html_static_path, str(dest.resolve())]
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"  # relative: served from _static
    # Loaded, in this order, on pages whose notebook holds widget state.
    config.nb_ipywidgets_js = {
        "viz3d/require.js": {},
        "viz3d/require-config.js": {},
        "viz3d/embed-amd.js": {},
    }
    # In the HTML, prefer text/html (picture + widget reference) over the bare widget.
    # myst-nb's base priorities: widget-view 10, text/html 30, image/png 50 (lower wins).
    config.nb_mime_priority_overrides = [
        *config.nb_mime_priority_overrides, ("html", WIDGET_VIEW_MIME, 35)]


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m teachlib.viz3d", description=(
        "Vendor the JavaScript of the static 3D views (the Sphinx extension does this "
        "itself; use this to fill the cache ahead of an offline build)."))
    parser.add_argument("dest", nargs="?", default="_build/viz3d_static")
    print(install_static(parser.parse_args(argv).dest))


if __name__ == "__main__":
    _main()
