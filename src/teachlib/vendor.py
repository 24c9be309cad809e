"""JavaScript that the HTML book needs offline, fetched once from the npm registry.

A Jupyter Book page loads MathJax (and, for 3D views, widget code) from public CDNs by
default; offline, or behind a firewall, formulas stay raw TeX and views stay blank. The book's
build (:func:`teachlib.book.build`) copies pinned releases of those packages into its
``_static`` folder instead. Each package tarball is downloaded from the npm registry over HTTPS
(no ``npm`` needed), checked against its pinned sha512 integrity, cached, and only the files
the pages load are extracted.

>>> PACKAGES["mathjax"].version
'3.2.2'
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY_ENV = "TEACHLIB_NPM_REGISTRY"


@dataclass(frozen=True)
class NpmPackage:
    """A pinned npm release and the files of it the book serves."""

    name: str
    version: str
    integrity: str  # npm's "sha512-<base64>" of the tarball
    files: tuple[str, ...]  # paths (files or folders) inside the tarball's package/ folder

    @property
    def tarball_url(self) -> str:
        registry = os.environ.get(REGISTRY_ENV, "https://registry.npmjs.org").rstrip("/")
        return f"{registry}/{self.name}/-/{self.name.split('/')[-1]}-{self.version}.tgz"


PACKAGES = {
    "mathjax": NpmPackage(
        name="mathjax",
        version="3.2.2",
        integrity="sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        files=("es5/tex-mml-chtml.js", "es5/input/tex/extensions", "es5/output/chtml/fonts/woff-v2",
               "es5/a11y", "es5/ui", "LICENSE"),
    ),
}

# Vendored files go to ``<html>/vendor/`` through Sphinx's ``html_extra_path`` (not ``_static``:
# Jupyter Book adds every script found in ``_static`` to every page). ``mathjax_path`` is
# relative to ``_static``.
EXTRA_DIR = "_vendor"
MATHJAX_PATH = "../vendor/mathjax/es5/tex-mml-chtml.js"


def cache_dir() -> Path:
    root = os.environ.get("TEACHLIB_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "teachlib"
    return Path(root) / "npm"


def _integrity_of(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def fetch(package: NpmPackage) -> Path:
    """The package's tarball in the cache, downloaded and integrity-checked if needed."""
    target = cache_dir() / f"{package.name.replace('/', '__')}-{package.version}.tgz"
    if target.exists() and _integrity_of(target) == package.integrity:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(package.tarball_url, timeout=120) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"Could not download {package.name}@{package.version} from {package.tarball_url} ({error}). "
            f"The HTML build needs it once (then it is cached in {cache_dir()}); set "
            f"{REGISTRY_ENV} to a reachable npm registry mirror if the default is blocked.") from error
    actual = _integrity_of(partial)
    if actual != package.integrity:
        partial.unlink()
        raise RuntimeError(f"{package.name}@{package.version}: integrity mismatch (expected "
                           f"{package.integrity}, got {actual}); refusing to use it")
    partial.replace(target)
    return target


def install(package: NpmPackage, destination) -> Path:
    """Extract the package's listed files into ``destination/<name>/``; return that folder."""
    destination = Path(destination) / package.name
    tarball = fetch(package)
    with tempfile.TemporaryDirectory() as scratch:
        with tarfile.open(tarball) as tar:
            tar.extractall(scratch, filter="data")
        root = Path(scratch) / "package"
        for name in package.files:
            source, target = root / name, destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)
    return destination


def install_static(book_source) -> dict:
    """Vendor every package into ``book_source/_vendor/vendor/``; return the Sphinx settings
    that serve and use them."""
    vendor = Path(book_source) / EXTRA_DIR / "vendor"
    for package in PACKAGES.values():
        install(package, vendor)
    return {"html_extra_path": [EXTRA_DIR], "mathjax_path": MATHJAX_PATH}
