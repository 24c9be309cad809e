"""teachlib/viz3d.py: the view's outputs, the static picture, and the vendoring step.

What a browser makes of the outputs is tested in tests/test_browser.py.
"""

import base64
import io
import json
import sys
import tarfile
from types import SimpleNamespace

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, make_supercell

from teachlib import viz3d


def batio3_supercell():
    cell = Atoms("BaTiO3", cell=[4.0, 4.0, 4.0], pbc=True,
                 scaled_positions=[[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])
    return make_supercell(cell, 3 * np.eye(3))  # 135 atoms


def si_motif():
    si = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    d = si.get_distances(0, range(len(si)), mic=True, vector=True)
    order = np.argsort(np.linalg.norm(d, axis=1))[:9]  # an atom and its 8 nearest neighbours
    return Atoms(["Si"] * 9, positions=d[order])


def ngl_messages(view):
    """The calls the embedded view replays (setSize: from the layout, not of interest)."""
    return [m["methodName"] for m in view.widget._ngl_msg_archive if m["methodName"] != "setSize"]


def test_periodic_cell_gives_widget_html_and_picture():
    view = viz3d.show(batio3_supercell())
    bundle = view._repr_mimebundle_()
    model_id = view.widget.model_id
    assert bundle[viz3d.WIDGET_VIEW_MIME]["model_id"] == model_id
    html = bundle["text/html"]
    assert 'class="teachlib-viz3d"' in html and "data:image/png;base64," in html
    assert json.dumps(model_id) in html  # the widget reference the embed manager renders
    # the widget state holds the whole structure and the unit cell
    assert ngl_messages(view) == ["loadFile", "removeAllRepresentations", "addRepresentation",
                                  "addRepresentation"]
    pdb = view.widget._ngl_msg_archive[0]["args"][0]["data"]
    assert pdb.count("ATOM ") == 135 and pdb.startswith("CRYST1")
    assert view.widget._ngl_msg_archive[3]["args"] == ["unitcell"]


def test_motif_has_no_unit_cell_and_a_png_picture():
    view = viz3d.show(si_motif(), style="spacefill")
    assert ngl_messages(view) == ["loadFile", "removeAllRepresentations", "addRepresentation"]
    assert view.widget._ngl_msg_archive[2]["args"] == ["spacefill"]
    assert view.png.startswith(b"\x89PNG")
    assert repr(view) == "<3D view of Si9 (9 atoms, finite)>"


def test_picture_is_deterministic():
    atoms = si_motif()
    assert viz3d.show(atoms).png == viz3d.show(atoms).png


def test_without_nglview_the_picture_still_shows(monkeypatch):
    monkeypatch.setitem(sys.modules, "nglview", None)  # import nglview -> ImportError
    view = viz3d.show(si_motif())
    bundle = view._repr_mimebundle_()
    assert view.widget is None and viz3d.WIDGET_VIEW_MIME not in bundle
    src = bundle["text/html"].split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(src) == view.png


def test_sphinx_extension_points_myst_nb_at_the_vendored_files(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(viz3d, "install_static", calls.append)
    config = SimpleNamespace(viz3d_static_dir="", html_static_path=["_static"],
                             nb_mime_priority_overrides=(), mathjax_path="https://cdn/x.js")
    app = SimpleNamespace(outdir=str(tmp_path / "_build" / "html"))
    viz3d._configure(app, config)
    assert calls == [tmp_path / "_build" / "viz3d_static"]
    assert config.html_static_path == ["_static", str(tmp_path / "_build" / "viz3d_static")]
    assert list(config.nb_ipywidgets_js) == [
        "viz3d/require.js", "viz3d/require-config.js", "viz3d/embed-amd.js"]
    assert config.mathjax_path == "mathjax/tex-mml-chtml.js"
    # text/html (30) now beats the bare widget view in the HTML builder
    assert config.nb_mime_priority_overrides == [("html", viz3d.WIDGET_VIEW_MIME, 35)]


def make_tarball(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_extract_keeps_the_layout_and_refuses_to_leave_the_folder(tmp_path):
    good = tmp_path / "good.tgz"
    make_tarball(good, {"package/es5/a.js": b"a", "package/es5/x/b.js": b"b", "package/c": b"c"})
    viz3d._extract(good, "package/es5/", tmp_path / "out", lambda rel: True)
    assert sorted(p.relative_to(tmp_path / "out").as_posix()
                  for p in (tmp_path / "out").rglob("*.js")) == ["a.js", "x/b.js"]
    bad = tmp_path / "bad.tgz"
    make_tarball(bad, {"package/es5/../../evil.js": b"x"})
    with pytest.raises(RuntimeError, match="refusing"):
        viz3d._extract(bad, "package/es5/", tmp_path / "out", lambda rel: True)
    assert not (tmp_path / "evil.js").exists()


def test_npm_tarball_is_checked_against_its_pinned_sha512(tmp_path, monkeypatch):
    from teachlib import vendor

    fake = tmp_path / "registry" / "requirejs" / "-" / "requirejs-2.3.8.tgz"
    fake.parent.mkdir(parents=True)
    make_tarball(fake, {"package/require.js": b"// not the real one"})
    monkeypatch.setenv(vendor.REGISTRY_ENV, (tmp_path / "registry").as_uri())  # a registry serving the wrong file
    with pytest.raises(RuntimeError, match="does not match its pinned sha512"):
        vendor.fetch("requirejs", tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())  # nothing unchecked is kept
    monkeypatch.setenv(vendor.REGISTRY_ENV, "http://127.0.0.1:9")
    with pytest.raises(RuntimeError, match="Could not download requirejs@2.3.8"):
        vendor.fetch("requirejs", tmp_path / "cache")


@pytest.mark.browser  # fetches from the npm registry, like the book build
def test_install_static_vendors_the_pinned_files(tmp_path):
    dest = viz3d.install_static(tmp_path)
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    for name in ["viz3d/require.js", "viz3d/require-config.js", "viz3d/embed-amd.js",
                 "viz3d/nglview-js-widgets/index.js", "mathjax/tex-mml-chtml.js",
                 "mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff"]:
        assert name in files
    assert (dest / "viz3d/nglview-js-widgets/index.js").read_bytes() == \
        (viz3d._nglview_nbextension() / "index.js").read_bytes()
    before = {f: (dest / f).read_bytes() for f in files if not f.startswith(".tarballs")}
    viz3d.install_static(tmp_path)  # again: the same files
    assert before == {f: (dest / f).read_bytes() for f in before}


def test_widget_declares_the_installed_javascript_version():
    # nglview 4.0.1 would declare "4.0", which no frontend has (JupyterLab registers the
    # installed 3.1.5 and refuses the widget); show() declares what is installed.
    installed = viz3d._nglview_js_version()
    assert installed is not None  # nglview's labextension is installed with it
    state = viz3d.show(si_motif(), picture=False).widget.get_state()
    assert state["_model_module_version"] == state["_view_module_version"] == installed
