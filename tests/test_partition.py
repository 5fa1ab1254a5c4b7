"""Partitioners: disjoint, exact cover, minimum sizes, determinism (hypothesis properties)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsim.data import partition as part
from fedsim.errors import DataError

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def labelled(draw, min_n=1):
    """A label array (arbitrary class ids, possibly few classes) and a node count it can serve."""
    n = draw(st.integers(min_n, 300))
    num_classes = draw(st.integers(1, 12))
    labels = np.asarray(draw(st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n)), dtype=np.int64)
    nodes = draw(st.integers(1, min(n, 16)))
    return labels, nodes, draw(st.integers(0, 2**32 - 1))


def assert_exact_cover(parts, n):
    joined = np.concatenate(parts)
    assert joined.shape[0] == n, "samples lost or duplicated"
    assert np.array_equal(np.sort(joined), np.arange(n))
    for p in parts:
        assert p.dtype == np.int64 and np.all(np.diff(p) > 0), "each part is sorted, without repeats"


@SETTINGS
@given(labelled())
def test_iid_covers_with_balanced_sizes(case):
    labels, nodes, seed = case
    parts = part.iid(labels, nodes, seed)
    assert len(parts) == nodes
    assert_exact_cover(parts, labels.shape[0])
    sizes = [p.shape[0] for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert all(np.array_equal(a, b) for a, b in zip(parts, part.iid(labels, nodes, seed)))


@SETTINGS
@given(labelled(), st.floats(0.01, 10.0), st.integers(1, 20))
def test_dirichlet_covers_and_respects_min_samples(case, alpha, min_samples):
    labels, nodes, seed = case
    if nodes * min_samples > labels.shape[0]:
        with pytest.raises(DataError, match="at least"):
            part.dirichlet(labels, nodes, alpha, seed, min_samples=min_samples)
        return
    parts = part.dirichlet(labels, nodes, alpha, seed, min_samples=min_samples)
    assert len(parts) == nodes
    assert_exact_cover(parts, labels.shape[0])
    assert min(p.shape[0] for p in parts) >= min_samples
    again = part.dirichlet(labels, nodes, alpha, seed, min_samples=min_samples)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_dirichlet_small_alpha_skews_labels_and_large_alpha_does_not():
    labels = np.repeat(np.arange(10), 200)

    def mean_dominance(alpha):
        parts = part.dirichlet(labels, 8, alpha, seed=3, min_samples=10)
        return np.mean([np.bincount(labels[p], minlength=10).max() / p.shape[0] for p in parts])

    assert mean_dominance(0.05) > 0.6  # nodes dominated by one class
    assert mean_dominance(100.0) < 0.2  # close to the uniform 0.1


def test_dirichlet_repair_guarantees_minimum_when_draws_never_satisfy_it():
    # With alpha tiny, a node almost never gets 40 of 100 samples by chance: the repair must act.
    labels = np.zeros(100, dtype=np.int64)
    parts = part.dirichlet(labels, 2, 1e-3, seed=0, min_samples=40, max_tries=3)
    assert sorted(p.shape[0] for p in parts) == [40, 60]  # topped up to exactly the minimum
    assert_exact_cover(parts, 100)


@SETTINGS
@given(labelled(), st.integers(1, 5))
def test_shards_cover_and_give_each_node_its_shards(case, spn):
    labels, nodes, seed = case
    n = labels.shape[0]
    if nodes * spn > n:
        with pytest.raises(DataError, match="shards"):
            part.shards(labels, nodes, spn, seed)
        return
    parts = part.shards(labels, nodes, spn, seed)
    assert_exact_cover(parts, n)
    shard = n // (nodes * spn)
    assert all(shard * spn <= p.shape[0] <= (shard + 1) * spn for p in parts)
    assert all(np.array_equal(a, b) for a, b in zip(parts, part.shards(labels, nodes, spn, seed)))


def test_shards_limit_each_node_to_few_classes():
    labels = np.repeat(np.arange(10), 100)
    parts = part.shards(labels, 10, 2, seed=1)
    assert all(len(np.unique(labels[p])) <= 2 for p in parts)


@SETTINGS
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=200))
def test_natural_takes_exactly_the_named_sources(sources):
    names = ["c", "a", "b"]
    parts = part.natural(sources, names)
    src = np.asarray(sources)
    for name, p in zip(names, parts):
        assert np.array_equal(p, np.flatnonzero(src == name))
    assert sum(p.shape[0] for p in parts) == int((src != "d").sum())


@SETTINGS
@given(labelled(min_n=2), st.floats(0.05, 0.95))
def test_stratified_split_sizes_disjoint_and_stratified(case, fraction):
    labels, _, seed = case
    n = labels.shape[0]
    train, test = part.stratified_split(labels, fraction, seed)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
    assert train.shape[0] >= 1 and test.shape[0] >= 1
    assert test.shape[0] == min(max(int(round(n * fraction)), 1), n - 1)
    classes = np.unique(labels)
    for c in classes:
        count, in_test = int((labels == c).sum()), int((labels[test] == c).sum())
        # Each class is split in proportion, up to rounding: within 1 of its own share at the
        # cut-off, and the cut-off moves by at most one sample per class to hit the exact total.
        assert abs(in_test - count * test.shape[0] / n) <= 1 + len(classes)
    again = part.stratified_split(labels, fraction, seed)
    assert np.array_equal(test, again[1])


def test_stratified_split_seed_changes_the_split_and_tuple_seeds_are_streams():
    labels = np.repeat(np.arange(4), 50)
    a = part.stratified_split(labels, 0.2, 0)[1]
    assert not np.array_equal(a, part.stratified_split(labels, 0.2, 1)[1])
    assert not np.array_equal(part.stratified_split(labels, 0.2, (0, 1))[1], part.stratified_split(labels, 0.2, (0, 2))[1])


def test_bad_requests_say_what_is_wrong():
    with pytest.raises(DataError, match="3 samples across 5 nodes"):
        part.iid(np.zeros(3), 5, 0)
    with pytest.raises(DataError, match="alpha must be > 0"):
        part.dirichlet(np.zeros(30), 2, 0.0, 0)
    with pytest.raises(DataError, match="test_fraction"):
        part.stratified_split(np.zeros(10), 1.5, 0)
