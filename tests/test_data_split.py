"""The seeded snapshot split shared by chapters 4 and 5."""

from __future__ import annotations

import numpy as np
import pytest

from teachlib.data.split import split_snapshots, training_subset


def test_split_is_a_seeded_partition():
    split = split_snapshots(50, seed=3)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert [len(p) for p in parts] == [40, 5, 5]
    assert set.union(*parts) == set(range(50)) and sum(map(len, parts)) == 50
    assert split == split_snapshots(50, seed=3)
    assert split.test != split_snapshots(50, seed=4).test


def test_split_sizes_are_checked():
    with pytest.raises(ValueError, match="cannot split"):
        split_snapshots(10, seed=0, n_train=8, n_val=3)
    small = split_snapshots(50, seed=0, n_train=10, n_val=5, n_test=5)
    assert len(small.train) + len(small.val) + len(small.test) == 20


def test_training_subsets_are_nested_and_seeded():
    train = split_snapshots(50, seed=0).train
    sizes = [1, 2, 5, 10, 20, 40]
    subsets = [set(training_subset(train, k, seed=7)) for k in sizes]
    for small, large in zip(subsets, subsets[1:]):
        assert small < large
    np.testing.assert_array_equal(sorted(subsets[-1]), train)
    assert training_subset(train, 5, seed=7) != training_subset(train, 5, seed=8)
    with pytest.raises(ValueError, match="size"):
        training_subset(train, 41, seed=0)
