"""Profiles: one word (``"quick"`` or ``"full"``) that sets every size in a chapter.

``quick`` is for CI and laptops (two CPU cores, the whole book in about ten minutes, real
training with honestly looser thresholds); ``full`` is the classroom / GPU setting.  A chapter
never hard-codes an epoch count or a subset size: it asks this module::

    >>> cfg = settings("01_symmetry", "quick")
    >>> cfg.profile
    'quick'
    >>> resolve("full")
    'full'

The profile a chapter runs under is the ``PROFILE`` parameter of its notebook (set by the
runner, ``python -m teachlib.book run --profile ...``), unless the environment variable
``TEACHLIB_PROFILE`` is set: then the environment wins, so that any executor (Jupyter Book's
own included) can choose the profile without touching the notebooks.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

PROFILES = ("quick", "full")
ENV_VAR = "TEACHLIB_PROFILE"

# Concrete sizes per chapter and profile.  Keep every number a chapter depends on here, so that
# an instructor sees in one place what "quick" and "full" mean.
SETTINGS: dict[str, dict[str, dict]] = {
    "01_symmetry": {
        "quick": dict(
            n_atoms=6,
            n_train=256,
            n_test=1024,
            augmentation_factors=[1, 4, 16, 64, 256],
            train_sizes=[64, 256, 1024],
            steps=3000,
            batch_size=128,
            hidden=(128, 128),
            learning_rate=2e-3,
            n_seeds=2,
        ),
        "full": dict(
            n_atoms=6,
            n_train=256,
            n_test=4096,
            augmentation_factors=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
            train_sizes=[64, 128, 256, 512, 1024, 2048],
            steps=12000,
            batch_size=256,
            hidden=(256, 256),
            learning_rate=2e-3,
            n_seeds=5,
        ),
    },
    "02_irreps": {
        # double precision throughout; sizes of the demonstrations only
        "quick": dict(layer_irreps="16x0e + 16x1o + 16x2e", n_vectors=256, sphere_grid=48,
                      n_rotations=4),
        "full": dict(layer_irreps="32x0e + 32x1o + 32x2e", n_vectors=4096, sphere_grid=120,
                     n_rotations=32),
    },
    "03_equivariant_gnn": {
        # a small network on one BaTiO3 cell in quick; the chapter-4 default in full
        "quick": dict(cutoff=4.0, hidden_irreps="16x0e + 8x1o + 8x1e + 4x2e + 4x2o",
                      n_layers=2, lmax=2, n_basis=8, radial_hidden=(16,), readout_mul=4,
                      n_rotations=2),
        "full": dict(cutoff=5.0, hidden_irreps="32x0e + 16x1o + 16x1e + 8x2e + 8x2o",
                     n_layers=3, lmax=2, n_basis=8, radial_hidden=(32,), readout_mul=8,
                     n_rotations=8),
    },
}


def resolve(profile: str | None = None) -> str:
    """The profile to run under: ``$TEACHLIB_PROFILE`` if set, else ``profile``, else quick.

    Raises:
        ValueError: for anything but ``"quick"`` or ``"full"``.

    >>> resolve("quick")
    'quick'
    """
    chosen = os.environ.get(ENV_VAR) or profile or "quick"
    if chosen not in PROFILES:
        source = f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "PROFILE"
        raise ValueError(f"{source} is {chosen!r}; choose one of {PROFILES}.")
    return chosen


def settings(chapter: str, profile: str | None = None) -> SimpleNamespace:
    """Concrete sizes for ``chapter`` (its notebook stem, e.g. ``"04_bec_raman"``).

    Returns a namespace with the chapter's numbers plus ``profile``.

    Raises:
        KeyError: for a chapter that has no entry in :data:`SETTINGS`.
    """
    profile = resolve(profile)
    if chapter not in SETTINGS:
        raise KeyError(f"no profile settings for chapter {chapter!r}; known: {sorted(SETTINGS)}")
    return SimpleNamespace(profile=profile, **SETTINGS[chapter][profile])
