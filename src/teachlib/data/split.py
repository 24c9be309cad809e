"""Seeded splits of a set of snapshots into training, validation and test sets.

Chapters 4 and 5 compare models on *exactly* the same split, so the split is a pure function
of the number of snapshots, the sizes and the seed:

>>> split = split_snapshots(50, seed=0)
>>> len(split.train), len(split.val), len(split.test)
(40, 5, 5)
>>> split == split_snapshots(50, seed=0)
True
>>> sorted(set(split.train) | set(split.val) | set(split.test)) == list(range(50))
True

A learning curve trains on nested subsets of the training set; the same seed gives the same
subsets, and a smaller subset is always contained in a larger one:

>>> small = training_subset(split.train, 5, seed=1)
>>> set(small) <= set(training_subset(split.train, 20, seed=1))
True
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """Indices of the snapshots in each set (sorted tuples of ints, disjoint)."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]


def split_snapshots(n_snapshots: int, *, seed: int, n_train: int = 40, n_val: int = 5,
                    n_test: int | None = None) -> Split:
    """Shuffle ``range(n_snapshots)`` with ``seed`` and cut it into train / val / test.

    Args:
        n_snapshots: how many snapshots there are (50 for BaTiO3).
        seed: the chapter's ``SEED``; the split is a pure function of it.
        n_train, n_val: sizes of the training and validation sets.
        n_test: size of the test set; by default all the snapshots left over.

    Raises:
        ValueError: when the sizes do not fit in ``n_snapshots`` or a set would be empty.
    """
    n_test = n_snapshots - n_train - n_val if n_test is None else n_test
    if min(n_train, n_val, n_test) < 1 or n_train + n_val + n_test > n_snapshots:
        raise ValueError(f"cannot split {n_snapshots} snapshots into train={n_train}, "
                         f"val={n_val}, test={n_test} (each at least 1)")
    order = np.random.default_rng(seed).permutation(n_snapshots)
    cut = np.cumsum([n_train, n_val, n_test])
    train, val, test = (tuple(sorted(int(i) for i in part))
                        for part in np.split(order[:cut[-1]], cut[:-1]))
    return Split(train, val, test)


def training_subset(train, size: int, *, seed: int) -> tuple[int, ...]:
    """The first ``size`` of ``train`` in a seeded random order: nested for growing ``size``.

    Raises:
        ValueError: if ``size`` is not between 1 and ``len(train)``.
    """
    train = np.asarray(train)
    if not 1 <= size <= len(train):
        raise ValueError(f"a training subset needs 1 <= size <= {len(train)}, got {size}")
    order = np.random.default_rng(seed).permutation(len(train))
    return tuple(sorted(int(i) for i in train[order[:size]]))
