"""Invariants of the pure cores, checked with hypothesis."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.techniques.validator import _metrics, _monitor

KEY = b"k" * 32

submissions = st.dictionaries(
    st.integers(0, 60).map(lambda i: f"t{i}"), st.sampled_from([0.1, 0.5, 0.9]), max_size=40
)


@settings(max_examples=150, deadline=None)
@given(submissions, submissions)
def test_changed_counts_records_added_removed_or_repredicted(
    a: dict[str, float], b: dict[str, float]
) -> None:
    def cell(sub: dict[str, float]) -> _monitor.Cell:
        tokens = list(sub)
        t, r = _monitor.digests(KEY, tokens, [sub[k] for k in tokens], None)
        return _monitor.Cell.of(t, r)

    expected = len(set(a) ^ set(b)) + sum(1 for k in set(a) & set(b) if a[k] != b[k])
    assert _monitor.changed(cell(a), cell(b)) == expected
    assert _monitor.changed(cell(a), cell(a)) == 0


@settings(max_examples=60, deadline=None)
@given(submissions, st.lists(st.booleans(), min_size=40, max_size=40))
def test_monitor_entry_round_trip(sub: dict[str, float], flags: list[bool]) -> None:
    tokens = list(sub)
    t, r = _monitor.digests(KEY, tokens, [sub[k] for k in tokens], ["g"] * len(tokens))
    masks = [np.ones(len(tokens), bool), np.array(flags[: len(tokens)], bool)]
    cells = _monitor.recall(_monitor.remember(t, r, masks))
    for got, want in zip(cells, _monitor.cells_of(t, r, masks), strict=True):
        assert np.array_equal(got.tokens, want.tokens) and np.array_equal(got.records, want.records)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=20, max_size=20),
    st.integers(1, 10),
    st.integers(1, 50),
)
def test_bands_partition_and_respect_the_minimum(
    sizes: list[int], bands: int, minimum: int
) -> None:
    edges = _metrics.fine_edges(0.5, 20, bands)
    bin_sizes = np.zeros(len(edges) - 1, dtype=np.int64)
    bin_sizes[: len(sizes)] = sizes[: len(bin_sizes)]
    ranges = _metrics.band_ranges(bin_sizes, edges, bands, minimum)
    for a, b in ranges:
        assert bin_sizes[a:b].sum() >= minimum
    covered = sum(int(bin_sizes[a:b].sum()) for a, b in ranges)
    if bin_sizes.sum() >= minimum:
        assert covered == bin_sizes.sum()  # no small remainder left out to subtract
    else:
        assert ranges == []
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(ranges))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=5, max_size=80),
    st.sampled_from([0.3, 0.5, 0.7]),
)
def test_histogram_metrics_equal_exact_metrics_at_the_threshold(
    records: list[tuple[int, float]], threshold: float
) -> None:
    labels = np.array([y for y, _ in records], dtype=np.int64)
    scores = np.array([s for _, s in records])
    edges = _metrics.fine_edges(threshold, 20, 10)
    index = _metrics.bin_index(scores, edges)
    sizes = np.bincount(index, minlength=len(edges) - 1)
    pos = np.bincount(index, weights=labels, minlength=len(edges) - 1).astype(float)
    means = np.full(len(edges) - 1, 0.5)
    binned = _metrics.binned_binary(pos, sizes, means, _metrics.threshold_bin(edges, threshold))
    exact = _metrics.exact_binary(labels, scores, threshold)
    for name in ("accuracy", "precision", "recall", "f1"):
        assert abs(float(binned[name]) - exact[name]) < 1e-9
    assert {k: int(binned[k]) for k in ("tn", "fp", "fn", "tp")} == exact["confusion"]


def test_boolean_labels_match_the_usual_spellings() -> None:
    from collabzone.techniques.validator._node_run import _is_positive

    assert _is_positive(True, "1") and _is_positive(True, "true") and not _is_positive(False, "1")
    assert _is_positive(False, "false") and not _is_positive(True, "0")  # False is the positive
    assert _is_positive(">50K", ">50K") and not _is_positive("<=50K", ">50K")
