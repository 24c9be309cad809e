"""Pinned npm packages that the HTML book serves itself, so that its pages work offline.

A Jupyter Book page loads MathJax, RequireJS and the widget embed manager from public CDNs by
default; offline, or behind a firewall, formulas stay raw TeX and 3D views stay blank. The
book's Sphinx extension (:mod:`teachlib.viz3d`) serves pinned releases of them from
``_static`` instead. This module fetches each release's tarball from the npm registry over
HTTPS (no ``npm`` program needed), checks it against the sha512 "integrity" that the registry
publishes, and caches it.

>>> sorted(PACKAGES)
['@jupyter-widgets/html-manager', 'mathjax', 'requirejs']
>>> tarball_url("@jupyter-widgets/html-manager")
'https://registry.npmjs.org/@jupyter-widgets/html-manager/-/html-manager-1.0.15.tgz'
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

REGISTRY_ENV = "TEACHLIB_NPM_REGISTRY"

# name -> (version, npm's "integrity" of the tarball)
PACKAGES = {
    "@jupyter-widgets/html-manager": (
        "1.0.15",  # the ipywidgets 8.1 embed manager (widget protocol 2)
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
    ),
    "requirejs": (
        "2.3.8",
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
    ),
    "mathjax": (  # Sphinx's default is mathjax@3 (the newest 3.x) from a CDN
        "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
    ),
}


def tarball_url(name: str) -> str:
    """Where the registry serves the pinned tarball of ``name``."""
    registry = os.environ.get(REGISTRY_ENV, "https://registry.npmjs.org").rstrip("/")
    version = PACKAGES[name][0]
    return f"{registry}/{name}/-/{name.split('/')[-1]}-{version}.tgz"


def integrity(path) -> str:
    """npm's subresource-integrity string (``sha512-<base64>``) of a file."""
    return "sha512-" + base64.b64encode(hashlib.sha512(Path(path).read_bytes()).digest()).decode()


def fetch(name: str, cache) -> Path:
    """The pinned tarball of ``name`` in ``cache``, downloaded and checked if needed.

    Raises:
        RuntimeError: when the registry cannot be reached or the tarball's sha512 differs.
    """
    version, expected = PACKAGES[name]
    cache = Path(cache)
    path = cache / f"{name.replace('@', '').replace('/', '-')}-{version}.tgz"
    if path.exists() and integrity(path) == expected:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    url = tarball_url(name)
    try:
        with urllib.request.urlopen(url, timeout=120) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"Could not download {name}@{version} from {url} ({error}). The HTML build needs it "
            f"once (then it is cached in {cache}); set {REGISTRY_ENV} to a reachable npm "
            f"registry mirror if the default one is blocked.") from error
    if integrity(partial) != expected:
        partial.unlink()
        raise RuntimeError(f"{name}@{version}: the tarball from {url} does not match its pinned sha512")
    partial.replace(path)
    return path
