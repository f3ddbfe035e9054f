"""The one-pass split of a release (``disclosure._split``) against the general path.

Every release is audited twice, once as shipped and once with the one pass switched off,
over random histories that mix the cases the one pass handles (everyone known, one cell
each; a fresh or growing space) and the ones it must hand to the general path (a person
in two cells, or twice in one, found by one thread or by both when the universe's blocks
run on two threads; cells whose people are not sorted). The partitions, counts and
findings must be the same.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone import disclosure
from collabzone.disclosure import _space, _split
from collabzone.model import Column

COLUMNS = {
    "c": Column.model_validate(
        {"name": "c", "type": "integer", "class": "dimension", "nullable": False,
         "domain": {"min": 0, "max": 4}}
    )
}  # fmt: skip

release = st.tuples(
    st.lists(st.integers(-1, 3), min_size=60, max_size=60),  # each person's cell, or none
    st.integers(0, 4),  # the condition's literal
    st.one_of(st.none(), st.tuples(st.integers(0, 59), st.integers(0, 3))),  # a second cell
)
Spec = tuple[list[int], int, tuple[int, int] | None]


def _canonical(space: disclosure.Space) -> tuple[list[Any], list[int]]:
    """The partition as sorted classes of units (entity hashes, then phantom indices), and
    the people of each covered atom in that order."""
    labels = np.concatenate((space.entity_labels, space.phantom_labels))
    names = [("e", int(h)) for h in space.entities.tolist()] + [
        ("p", i) for i in range(space.phantom_labels.size)
    ]
    classes: dict[int, list[tuple[str, int]]] = {}
    for label, name in zip(labels.tolist(), names, strict=True):
        classes.setdefault(label, []).append(name)
    order = sorted(classes, key=lambda lab: sorted(classes[lab]))
    people = [int(space.people[lab]) for lab in order if space.covered[lab]]
    return [sorted(classes[lab]) for lab in order], people


def _cells(spec: Spec, ids: np.ndarray, shuffled: bool = False) -> disclosure.ReleasedCells:
    """Cells 0..3 of people by their cell number; ``twice`` adds a person to another (or
    to the same cell again). Each cell's people sorted, or in the order of ``ids``."""
    of, low, twice = spec
    cell_of = np.asarray(of)
    groups = [np.flatnonzero(cell_of == c).tolist() for c in range(4)]
    if twice is not None:
        groups[twice[1]].append(twice[0])
    members = [ids[g] if shuffled else np.sort(ids[g]) for g in groups]
    return disclosure.ReleasedCells(
        members=members, condition_sql=f'"c" >= {low}', condition_literals={"c": [low]}
    )


def _both(
    history: list[Spec], monkeypatch: pytest.MonkeyPatch, shuffled: bool = False
) -> list[bool]:
    """Audit ``history`` both ways; whether the one pass did each release."""
    ids = disclosure.mix64(np.arange(60, dtype=np.uint64))
    con = duckdb.connect()
    one_pass = _split.split_release
    taken: list[bool] = []

    def counted(*args: Any) -> Any:
        out = one_pass(*args)
        taken[-1] = taken[-1] or out is not None
        return out

    fast, general = disclosure.Space(), disclosure.Space()
    for spec in history:
        cells = _cells(spec, ids, shuffled)
        taken.append(False)
        monkeypatch.setattr(_space, "split_release", counted)
        a = disclosure.audit(fast, cells, COLUMNS, con, min_size=3)
        monkeypatch.setattr(_space, "split_release", lambda *args: None)
        b = disclosure.audit(general, cells, COLUMNS, con, min_size=3)
        assert a.finding == b.finding
        assert _canonical(a.space) == _canonical(b.space)
        assert np.array_equal(a.space.entities, b.space.entities)
        fast, general = a.space, b.space
    con.close()
    return taken


@settings(max_examples=40, deadline=None)
@given(st.lists(release, min_size=1, max_size=5))
def test_one_pass_split_equals_the_general_path(
    history: list[Spec],
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        taken = _both(history, patch)
    _assert_taken_when_it_applies(history, taken)


@settings(max_examples=25, deadline=None)
@given(st.lists(release, min_size=1, max_size=4))
def test_one_pass_split_in_two_halves_equals_the_general_path(
    history: list[Spec],
) -> None:
    """The same with the universe in blocks of four people, found and written as two
    halves on two threads (a person in two cells is caught by the thread whose half of
    the universe holds them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_split, "_THREADED_FROM", 2)
        patch.setattr(_split, "_BLOCK", 4)
        taken = _both(history, patch)
    _assert_taken_when_it_applies(history, taken)


@settings(max_examples=25, deadline=None)
@given(st.lists(release, min_size=1, max_size=4), st.sampled_from([4, 10**9]))
def test_one_pass_split_of_unsorted_cells_equals_the_general_path(
    history: list[Spec], block: int
) -> None:
    """The same with each cell's people in no particular order (found with less locality,
    and written by one thread: the halves of the universe no longer part them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_split, "_THREADED_FROM", 2)
        patch.setattr(_split, "_BLOCK", block)
        taken = _both(history, patch, shuffled=True)
    _assert_taken_when_it_applies(history, taken)


def _assert_taken_when_it_applies(history: list[Spec], taken: list[bool]) -> None:
    """The one pass did every release with each person in one cell, once anyone was seen."""
    seen = False
    for (of, _, twice), done in zip(history, taken, strict=True):
        seen = seen or any(c >= 0 for c in of) or twice is not None
        if twice is None and seen:
            assert done


def test_a_person_in_two_halves_or_twice_in_one_goes_to_the_general_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    universe = np.sort(disclosure.mix64(np.arange(40, dtype=np.uint64)))
    labels = np.zeros(40, dtype=np.int64)
    phantoms = [np.zeros(0, dtype=np.int64)] * 2
    no_phantoms = np.zeros(0, dtype=np.int64)
    split = _split.split_release
    monkeypatch.setattr(_split, "_THREADED_FROM", 2)
    monkeypatch.setattr(_split, "_BLOCK", 4)  # eight blocks, four per thread
    disjoint = [universe[:20], universe[20:]]
    done = split(universe, labels, no_phantoms, 1, disjoint, phantoms)
    assert done is not None and sorted(done.people.tolist()) == [20, 20]
    assert done.entity_labels.tolist() == [1] * 20 + [2] * 20
    assert split(universe, labels, no_phantoms, 1, [universe[:21], universe[20:]],
                 phantoms) is None  # fmt: skip
    everyone = [universe[::2], universe[1::2]]  # each cell in both halves of the universe
    assert split(universe, labels, no_phantoms, 1, everyone, phantoms) is not None
    assert split(universe, labels, no_phantoms, 1, [universe[::2], universe[1::3]],
                 phantoms) is None  # fmt: skip
    twice_in_one = np.sort(np.append(universe[:10], universe[3]))
    assert split(universe, labels, no_phantoms, 1, [twice_in_one], phantoms[:1]) is None
    backwards = [universe[:20][::-1], universe[20:][::-1]]
    done = split(universe, labels, no_phantoms, 1, backwards, phantoms)
    assert done is not None and done.entity_labels.tolist() == [1] * 20 + [2] * 20
    monkeypatch.setattr(_split, "_THREADED_FROM", 10**9)
    assert split(universe, labels, no_phantoms, 1, [universe[:21], universe[20:]],
                 phantoms) is None  # fmt: skip
    outsider = np.sort(np.append(universe[:5], np.uint64(12345)))
    assert split(universe, labels, no_phantoms, 1, [outsider], phantoms[:1]) is None
    assert np.array_equal(labels, np.zeros(40, dtype=np.int64))  # never written in place
