"""Invariants of the pure cores, checked with hypothesis."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone import disclosure
from collabzone.techniques.validator import _audit, _metrics

KEY = b"k" * 32
UNITS = 24


def _digests(n: int) -> np.ndarray:
    return disclosure.text_hashes([f"t{i}" for i in range(n)], KEY)


releases = st.lists(
    st.lists(st.frozensets(st.integers(0, UNITS - 1), min_size=1), min_size=1, max_size=3),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(releases, st.frozensets(st.integers(0, UNITS - 1)), st.integers(2, 4))
def test_accepted_releases_never_isolate_a_labelled_record(
    history: list[list[frozenset[int]]], unlabelled: frozenset[int], k: int
) -> None:
    """Whatever the audit lets out, no linear combination of the released label counts
    (sums over the labelled members of each released set) equals one labelled record."""
    units = _digests(UNITS)
    labelled = np.array([i not in unlabelled for i in range(UNITS)])
    state = _audit.State("key")
    released: list[np.ndarray] = []
    for sets in history:
        sent = sorted(set().union(*sets))
        masks = [np.array([i in s for i in sent]) for s in sets]
        added = _audit.add(state, units[sent], labelled[sent], masks, min_size=k)
        if not added.finding.safe:
            continue  # refused: nothing released, nothing remembered
        state = added.state
        released += [np.array([i in s and labelled[i] for i in range(UNITS)]) for s in sets]
    if not released:
        return
    rows = np.array(released, dtype=float)
    rank = np.linalg.matrix_rank(rows)
    for x in np.flatnonzero(labelled):
        one = np.zeros(UNITS)
        one[x] = 1.0
        assert np.linalg.matrix_rank(np.vstack([rows, one])) > rank


@settings(max_examples=60, deadline=None)
@given(releases)
def test_audit_state_round_trip(history: list[list[frozenset[int]]]) -> None:
    units = _digests(UNITS)
    state = _audit.State("key")
    for sets in history:
        sent = sorted(set().union(*sets))
        masks = [np.array([i in s for i in sent]) for s in sets]
        state = _audit.add(state, units[sent], np.ones(len(sent), bool), masks, min_size=1).state
    again = _audit.State.from_bytes(state.to_bytes())
    assert again.key_id == state.key_id and again.releases == state.releases
    for name in ("units", "labels", "weights", "covered"):
        assert np.array_equal(getattr(again, name), getattr(state, name))


def test_three_overlapping_files_are_refused_at_the_second() -> None:
    units = _digests(UNITS)
    a, b, x = list(range(10)), list(range(10, 20)), 23
    state = _audit.State("key")
    first = _audit.add(state, units[[*a, x]], np.ones(11, bool), [np.ones(11, bool)], min_size=5)
    assert first.finding.safe
    second = _audit.add(
        first.state, units[a + b], np.ones(20, bool), [np.ones(20, bool)], min_size=5
    )
    assert not second.finding.safe  # {x} would be an atom of one record


def test_an_atom_of_unlabelled_records_counts_as_small() -> None:
    """Releasing A + U after A would show that U holds no label at all."""
    units = _digests(UNITS)
    labelled = np.array([i < 12 for i in range(UNITS)])
    first = _audit.add(
        _audit.State("key"), units[:12], labelled[:12], [np.ones(12, bool)], min_size=3
    )
    second = _audit.add(first.state, units, labelled, [np.ones(UNITS, bool)], min_size=3)
    assert first.finding.safe and not second.finding.safe


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 40), min_size=20, max_size=20), min_size=1, max_size=4),
    st.integers(1, 10),
    st.integers(1, 50),
)
def test_bands_partition_and_respect_the_minimum_in_every_slice(
    slices: list[list[int]], bands: int, minimum: int
) -> None:
    edges = _metrics.fine_edges(0.5, 20, bands)
    rows = np.zeros((len(slices), len(edges) - 1), dtype=np.int64)
    for row, sizes in zip(rows, slices, strict=True):
        row[: len(sizes)] = sizes[: rows.shape[1]]
    ranges = _metrics.band_ranges(rows, edges, bands, minimum)
    total = int(rows.sum())
    for a, b in ranges:
        per_slice = rows[:, a:b].sum(axis=1)
        assert per_slice.sum() >= minimum
        if len(ranges) > 1:  # no group's or side's share of a band is small
            assert ((per_slice == 0) | (per_slice >= minimum)).all()
    covered = sum(int(rows[:, a:b].sum()) for a, b in ranges)
    if total >= minimum:
        assert covered == total  # no small remainder left out to subtract
    else:
        assert ranges == []
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(ranges))


def _most_bands(rows: np.ndarray, bands: int, minimum: int) -> int:
    """The most bands any partition of the bins into ranges that each respect the minimum in
    every slice can have (brute force over every set of cuts)."""
    n_bins = rows.shape[1]
    most = 0
    for k in range(1, n_bins):
        for cuts in itertools.combinations(range(1, n_bins), k):
            bounds = [0, *cuts, n_bins]
            parts = [rows[:, a:b].sum(axis=1) for a, b in itertools.pairwise(bounds)]
            if len(parts) <= bands and all(
                p.sum() >= minimum and ((p == 0) | (p >= minimum)).all() for p in parts
            ):
                most = max(most, len(parts))
    return most


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 30), min_size=7, max_size=7), min_size=1, max_size=4),
    st.integers(2, 6),
    st.integers(1, 40),
)
def test_bands_are_as_many_as_any_partition_allows(
    slices: list[list[int]], bands: int, minimum: int
) -> None:
    """The greedy cut of an earlier version merged everything into one band (and released an
    AUC of 0.5 by construction) where two or more bands were possible."""
    edges = np.linspace(0.0, 1.0, 8)
    rows = np.array(slices, dtype=np.int64)
    ranges = _metrics.band_ranges(rows, edges, bands, minimum)
    most = _most_bands(rows, bands, minimum)
    if most >= 2:
        assert len(ranges) == most
    elif int(rows.sum()) >= minimum:
        assert ranges == [(0, 7)]


def test_one_band_releases_no_auc() -> None:
    one = _metrics.band_metrics(np.array([30.0]), np.array([100.0]), np.array([0.4]))
    assert np.isnan(one["roc_auc"]) and np.isfinite(one["log_loss"])
    two = _metrics.band_metrics(
        np.array([10.0, 20.0]), np.array([60.0, 40.0]), np.array([0.2, 0.7])
    )
    assert 0.5 < float(two["roc_auc"]) <= 1.0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=5, max_size=80),
    st.sampled_from([0.3, 0.5, 0.7]),
)
def test_part_counts_give_the_exact_metrics_at_the_threshold(
    records: list[tuple[int, float]], threshold: float
) -> None:
    labels = np.array([y for y, _ in records], dtype=np.int64)
    scores = np.array([s for _, s in records])
    above = scores >= threshold
    sizes = (float((~above).sum()), float(above.sum()))
    counts = _metrics.threshold_metrics(
        np.float64(labels[~above].sum()), np.float64(labels[above].sum()), sizes
    )
    exact = _metrics.exact_binary(labels, scores, threshold)
    for name in ("accuracy", "precision", "recall", "f1"):
        assert abs(float(counts[name]) - exact[name]) < 1e-9
    assert {k: int(counts[k]) for k in ("tn", "fp", "fn", "tp")} == exact["confusion"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=1, max_size=10), st.integers(1, 10))
def test_rounded_counts_stay_in_range_and_on_the_grid(counts: list[int], base: int) -> None:
    sizes = np.array([c + 7 for c in counts], dtype=float)
    rounded = _metrics.round_counts(np.array(counts, dtype=float), base, sizes)
    assert ((rounded >= 0) & (rounded <= sizes)).all()
    on_grid = (rounded % base == 0) | (rounded == sizes)
    assert on_grid.all()
    assert (np.abs(rounded - np.array(counts)) <= base).all()


def test_boolean_labels_match_the_usual_spellings() -> None:
    from collabzone.techniques.validator._node_run import _is_positive

    assert _is_positive(True, "1") and _is_positive(True, "true") and not _is_positive(False, "1")
    assert _is_positive(False, "false") and not _is_positive(True, "0")  # False is the positive
    assert _is_positive(">50K", ">50K") and not _is_positive("<=50K", ">50K")


def test_borderline_atoms_are_decided_by_a_content_keyed_jitter() -> None:
    """An atom of k .. k + width labelled records is refused or not at random over its
    members, and always the same way for the same members (asking again draws nothing)."""
    units = disclosure.text_hashes([f"t{i}" for i in range(400)], KEY)
    jitter = disclosure.Jitter(b"node jitter key", 10)
    outcomes = []
    for start in range(0, 390, 13):  # disjoint sets of 13 records: 10 + jitter in [0, 10]
        sent = units[start : start + 13]
        once = _audit.add(
            _audit.State("k"), sent, np.ones(13, bool), [np.ones(13, bool)], min_size=10,
            jitter=jitter,
        )  # fmt: skip
        again = _audit.add(
            _audit.State("k"), sent[::-1], np.ones(13, bool), [np.ones(13, bool)], min_size=10,
            jitter=jitter,
        )  # fmt: skip
        assert once.finding.safe == again.finding.safe
        outcomes.append(once.finding.safe)
    assert 0 < sum(outcomes) < len(outcomes)
