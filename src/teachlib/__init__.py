"""teachlib: the small JAX library that the book builds up chapter by chapter.

Each module holds one idea and is first met in one chapter:

================================  ===============================================  =======
module                            holds                                            chapter
================================  ===============================================  =======
``teachlib.profiles``             quick/full profile -> concrete sizes             all
``teachlib.record``               one call that records a chapter's key figures    all
``teachlib.symmetry``             random O(3) elements, permutations, checkers     1
``teachlib.tensors``              Cartesian tensors <-> irreps (BEC, Raman, ...)   2
``teachlib.graphs``               periodic neighbour lists, padded graphs          3
``teachlib.layers``               radial basis, harmonics, interaction block       3
``teachlib.models``               equivariant GNN with node/edge/graph heads       3, 4
``teachlib.train``                the one optax training loop of the book          1 on
``teachlib.data``                 data loaders (BaTiO3 DFPT set), seeded splits    4
``teachlib.metrics``              MAE/RMSE per species and irrep, sum rules        4
``teachlib.baselines``            five baselines for per-atom response tensors     4
``teachlib.response``             double-headed response model; save/load          4
``teachlib.conventions``          index and unit conventions, checked on the data  5
``teachlib.derivative_response``  Z* and Raman tensors as derivatives of P, X      5
``teachlib.silicon``              Stillinger-Weber (Vink) MD, a-Si structure       6
``teachlib.motifs``               local motifs, Gram features, rank-3 recovery     6
``teachlib.vae``                  the Gram VAE, in-filling and its baselines       6
``teachlib.book``                 run chapters with papermill, build the HTML      --
================================  ===============================================  =======
"""

__version__ = "0.1.0"

from teachlib.record import record  # noqa: E402,F401
from teachlib import profiles, progress  # noqa: E402,F401


def load_model(path):
    """Load a trained response model saved by chapter 4 (``OUTPUT_DIR/model``).

    Returns a :class:`teachlib.response.ResponseModel`; its ``.predict(atoms)`` gives
    ``{"born_charges": (n, 3, 3), "raman_tensors": (n, 3, 3, 3)}`` for any ``ase.Atoms`` of
    Ba, Ti and O, in the structure's atom order. See :func:`teachlib.response.load_model`.
    """
    from teachlib.response import load_model as load  # imports JAX only when needed

    return load(path)
