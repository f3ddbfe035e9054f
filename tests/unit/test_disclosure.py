"""The disclosure audit's primitives against brute force, over many random histories."""

from __future__ import annotations

import itertools
from typing import Any

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone import disclosure
from collabzone.model import Column

sets_of_units = st.lists(st.sets(st.integers(0, 29), min_size=1), min_size=1, max_size=6)


def _signatures(history: list[set[int]], n: int) -> dict[tuple[bool, ...], set[int]]:
    out: dict[tuple[bool, ...], set[int]] = {}
    for unit in range(n):
        out.setdefault(tuple(unit in s for s in history), set()).add(unit)
    return out


@settings(max_examples=150, deadline=None)
@given(sets_of_units, st.integers(1, 6))
def test_atoms_match_brute_force_and_small_ones_are_found(history: list[set[int]], k: int) -> None:
    n = 30
    labels, covered = disclosure.fresh(n)
    accepted: list[set[int]] = []
    for cell in history:
        codes = np.full(n, -1)
        codes[list(cell)] = 0
        step = disclosure.refine(labels, covered, codes)
        finding = disclosure.check(
            step.labels, step.covered, np.ones(n), touched=step.touched, min_size=k
        )
        candidate = [*accepted, cell]
        atoms = _signatures(candidate, n)
        previous = _signatures(accepted, n)
        changed = [
            members for sig, members in atoms.items()
            if any(sig) and members not in previous.values()
        ]  # fmt: skip
        assert finding.safe == all(len(m) >= k for m in changed)
        # the partition itself equals the signature classes
        assert sorted(map(sorted, atoms.values())) == sorted(
            sorted(np.flatnonzero(step.labels == lab).tolist()) for lab in np.unique(step.labels)
        )
        if finding.safe:
            labels, covered, accepted = step.labels, step.covered, candidate


@settings(max_examples=100, deadline=None)
@given(sets_of_units, st.integers(2, 5))
def test_no_linear_combination_of_accepted_cells_isolates_fewer_than_k(
    history: list[set[int]], k: int
) -> None:
    """What the audit promises: any +-1 combination of accepted cells covers 0 or >= k."""
    n = 30
    labels, covered = disclosure.fresh(n)
    accepted: list[set[int]] = []
    for cell in history:
        codes = np.full(n, -1)
        codes[list(cell)] = 0
        step = disclosure.refine(labels, covered, codes)
        if disclosure.check(
            step.labels, step.covered, np.ones(n), touched=step.touched, min_size=k
        ).safe:
            labels, covered = step.labels, step.covered
            accepted.append(cell)
    vectors = [np.isin(np.arange(n), list(c)).astype(int) for c in accepted]
    for coefficients in itertools.product((-1, 0, 1), repeat=len(vectors)):
        if not any(coefficients):
            continue
        combined = sum(c * v for c, v in zip(coefficients, vectors, strict=True))
        support = int(np.count_nonzero(combined))
        assert support == 0 or support >= k


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 4)), max_size=40))
def test_membership_codes_group_units_by_their_set_of_cells(pairs: list[tuple[int, int]]) -> None:
    units = np.array([u for u, _ in pairs], dtype=np.int64)
    cells = np.array([c for _, c in pairs], dtype=np.int64)
    codes = disclosure.membership_codes(10, units, cells)
    sets = {u: frozenset(c for v, c in pairs if v == u) for u in range(10)}
    for a in range(10):
        assert (codes[a] == -1) == (not sets[a])
        for b in range(10):
            if sets[a] and sets[b]:
                assert (codes[a] == codes[b]) == (sets[a] == sets[b])


def test_jitter_is_sticky_and_bounded() -> None:
    jitter = disclosure.Jitter(b"key", 5)
    content = np.arange(1000, dtype=np.uint64)
    first, again = jitter.offsets(content), jitter.offsets(content.copy())
    assert (first == again).all() and first.min() >= 0 and first.max() <= 5
    assert len(set(first.tolist())) == 6  # every raise is used
    assert (disclosure.Jitter(b"other", 5).offsets(content) != first).any()


# -- phantoms: every satisfiable region of the released conditions gets a point -----------

AGE = Column.model_validate(
    {"name": "age", "type": "integer", "class": "dimension", "domain": {"min": 0, "max": 9}}
)
COLOUR = Column.model_validate(
    {"name": "colour", "type": "string", "class": "dimension", "domain": ["r", "g", "b"]}
)
COLUMNS = {"age": AGE, "colour": COLOUR}
conditions = st.one_of(
    st.tuples(
        st.just("age"), st.sampled_from([">", ">=", "<", "<=", "=", "<>"]), st.integers(-1, 10)
    ),
    st.tuples(st.just("colour"), st.sampled_from(["=", "<>"]), st.sampled_from(["r", "g", "b"])),
    st.tuples(st.just("colour"), st.just("IS"), st.just("NULL")),
)


def _sql(condition: tuple[str, str, Any]) -> str:
    column, op, value = condition
    if op == "IS":
        return f'"{column}" IS NULL'
    literal = f"'{value}'" if isinstance(value, str) else str(value)
    return f'"{column}" {op} {literal}'


def _holds(condition: tuple[str, str, Any], record: dict[str, Any]) -> bool:
    column, op, value = condition
    x = record[column]
    if op == "IS":
        return x is None
    if x is None:
        return False
    return {">": x > value, ">=": x >= value, "<": x < value, "<=": x <= value,
            "=": x == value, "<>": x != value}[op]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(conditions, min_size=1, max_size=2), min_size=1, max_size=4))
def test_phantoms_cover_exactly_the_satisfiable_regions(releases: list[list[Any]]) -> None:
    """Each release is one cell (an AND of conditions, with no people): the atoms of the
    phantoms must be the signatures some possible record (age 0..9 or NULL, colour r/g/b
    or NULL) would have."""
    con = duckdb.connect()
    space = disclosure.Space()
    records = [{"age": a, "colour": c} for a in [*range(10), None] for c in ["r", "g", "b", None]]
    for release in releases:
        literals: dict[str, list[Any]] = {}
        for column, op, value in release:
            literals.setdefault(column, []).extend([] if op == "IS" else [value])
        cells = disclosure.ReleasedCells(
            members=[np.zeros(0, dtype=np.uint64)],
            condition_sql=" AND ".join(_sql(c) for c in release),
            condition_literals=literals,
        )
        space = disclosure.audit(space, cells, COLUMNS, con, min_size=1).space
    expected = {tuple(all(_holds(c, r) for c in rel) for rel in releases) for r in records}
    found = set()
    shape = space.shape
    names = [d.column for d in space.attributes]
    reps = [d.representatives() for d in space.attributes]
    for flat in range(space.regions):
        index = np.unravel_index(flat, shape) if shape else ()
        record = {"age": 0, "colour": "r"}  # columns no release used are unconstrained
        record.update({n: reps[i][index[i]] for i, n in enumerate(names)})
        found.add(tuple(all(_holds(c, record) for c in rel) for rel in releases))
    assert found == expected  # every possible region has a phantom, no impossible one
    labels_by_signature: dict[tuple[bool, ...], set[int]] = {}
    for flat in range(space.regions):
        index = np.unravel_index(flat, shape) if shape else ()
        record = {"age": 0, "colour": "r"}
        record.update({n: reps[i][index[i]] for i, n in enumerate(names)})
        sig = tuple(all(_holds(c, record) for c in rel) for rel in releases)
        labels_by_signature.setdefault(sig, set()).add(int(space.phantom_labels[flat]))
    assert all(len(v) == 1 for v in labels_by_signature.values())  # one atom per region
    con.close()


def test_space_round_trip_and_remap() -> None:
    con = duckdb.connect()
    members = disclosure.mix64(np.arange(50, dtype=np.uint64))
    cells = disclosure.ReleasedCells(
        members=[members[:30], members[30:]],
        group_columns=("colour",),
        own_values=[("r",), ("g",)],
        token_sets={"key": [members[:30], members[30:]]},
    )
    space = disclosure.audit(
        disclosure.Space(), cells, COLUMNS | {"key": COLOUR}, con, min_size=5
    ).space
    again = disclosure.Space.from_bytes(space.to_bytes())
    assert again.shape == space.shape and (again.phantom_labels == space.phantom_labels).all()
    renamed = again.remapped(members, members + np.uint64(1))
    assert set(renamed.entities.tolist()) == set((members + np.uint64(1)).tolist())
    # the same people under their new names fall in the same atoms
    old = dict(zip(again.entities.tolist(), again.entity_labels.tolist(), strict=True))
    new = dict(zip(renamed.entities.tolist(), renamed.entity_labels.tolist(), strict=True))
    assert all(old[int(m)] == new[int(m) + 1] for m in members)
    con.close()


def _stream_format(space: disclosure.Space, magic: bytes, codec: str) -> bytes:
    """``space`` in the one-stream layout of formats 4 (zstd) and 5 (LZ4)."""
    import json

    import pyarrow as pa

    arrays = {"entities": space.entities, "entity_labels": space.entity_labels,
              "covered": space.covered, "people": space.people,
              "phantom_labels": space.phantom_labels}  # fmt: skip
    meta = {
        "attributes": [d.to_json() for d in space.attributes],
        "tokens": [], "releases": space.releases, "cells": space.cells, "format": 5,
        "arrays": [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape)}
                   for n, a in arrays.items()],
    }  # fmt: skip
    header = json.dumps(meta).encode("utf-8")
    raw = b"".join([len(header).to_bytes(8, "little"), header,
                    *(a.tobytes() for a in arrays.values())])  # fmt: skip
    return magic + len(raw).to_bytes(8, "little") + pa.compress(raw, codec=codec, asbytes=True)


def test_a_space_stored_in_the_earlier_formats_still_reads() -> None:
    con = duckdb.connect()
    members = disclosure.mix64(np.arange(40, dtype=np.uint64))
    cells = disclosure.ReleasedCells(
        members=[members[:20], members[20:]], group_columns=("colour",),
        own_values=[("r",), ("g",)],
    )  # fmt: skip
    space = disclosure.audit(disclosure.Space(), cells, COLUMNS, con, min_size=5).space
    assert space.to_bytes().startswith(b"CZAS6")
    for magic, codec in ((b"CZAS4", "zstd"), (b"CZAS5", "lz4")):
        again = disclosure.Space.from_bytes(_stream_format(space, magic, codec))
        assert (again.entities == space.entities).all()
        assert (again.entity_labels == space.entity_labels).all()
        assert again.entity_labels.dtype == np.int64
        assert again.cells == space.cells == 2
    current = disclosure.Space.from_bytes(space.to_bytes())
    assert current.entity_labels.dtype == np.int64  # stored as 32 bits, read back widened
    assert (current.entity_labels == space.entity_labels).all()
    assert (current.phantom_labels == space.phantom_labels).all()
    con.close()


# -- one rule for people and for empty regions ---------------------------------------------


def _history(cells_per_release: list[list[set[int]]], n: int, k: int) -> list[bool]:
    """Feed releases of explicit cells through the primitives; each step's verdict."""
    from collabzone.disclosure._atoms import membership_codes_sparse, refine_sparse
    from collabzone.disclosure._derive import small_atoms

    labels = np.zeros(n, dtype=np.int64)
    covered = np.zeros(1, dtype=np.bool_)
    people = np.array([n], dtype=np.int64)
    verdicts = []
    for release in cells_per_release:
        units = np.array([u for cell in release for u in sorted(cell)], dtype=np.int64)
        which = np.array([i for i, cell in enumerate(release) for _ in cell], dtype=np.int64)
        coded = membership_codes_sparse(units, which)
        step = refine_sparse(
            labels, covered, people, np.bincount(labels, minlength=covered.size),
            coded.units, coded.codes, np.ones(coded.units.size, dtype=np.bool_),
        )  # fmt: skip
        finding = small_atoms(
            step, min_size=k, jitter=None, content=lambda w: np.zeros(w.size, dtype=np.uint64)
        )
        verdicts.append(finding.safe)
        if finding.safe:
            labels, covered, people = step.labels, step.covered, step.people
    return verdicts


SEGMENT = Column.model_validate(
    {"name": "segment", "type": "string", "class": "dimension", "domain": ["a", "b", "c", "d"],
     "nullable": False}
)  # fmt: skip
TIER = Column.model_validate(
    {"name": "tier", "type": "string", "class": "dimension", "domain": ["x", "y", "z"],
     "nullable": False}
)  # fmt: skip


def _marginals(crossing: int) -> list[bool]:
    """Segments, then tiers, over 10 people per crossing and ``crossing`` in (d, z)."""
    who = [(s, t) for s in "abcd" for t in "xyz" for _ in range(10) if (s, t) != ("d", "z")]
    who += [("d", "z")] * crossing
    ids = disclosure.mix64(np.arange(len(who), dtype=np.uint64))
    con = duckdb.connect()
    space, verdicts = disclosure.Space(), []
    for column, values in (("segment", "abcd"), ("tier", "xyz")):
        position = 0 if column == "segment" else 1
        cells = disclosure.ReleasedCells(
            members=[np.sort(ids[[i for i, p in enumerate(who) if p[position] == v]])
                     for v in values],
            group_columns=(column,),
            own_values=[(v,) for v in values],
        )  # fmt: skip
        audit = disclosure.audit(space, cells, {"segment": SEGMENT, "tier": TIER}, con,
                                 min_size=5)  # fmt: skip
        verdicts.append(audit.finding.safe)
        if audit.finding.safe:
            space = audit.space
    con.close()
    return verdicts


def test_a_crossing_of_marginals_is_refused_alike_whether_empty_or_holding_two() -> None:
    """The refusal-oracle attack on marginals: the tier table is released or refused the
    same way whether the victim's crossing (d, z) is empty or holds people under the
    minimum, so the verdict tells nothing; a crossing of 10 passes."""
    assert _marginals(0) == _marginals(1) == _marginals(2) == [True, False]
    assert _marginals(10) == [True, True]


def test_three_sets_and_total_minus_groups_fail_even_when_the_hidden_group_is_small() -> None:
    a, b, c = set(range(20)), set(range(20, 40)), {40}
    assert _history([[a | c], [b | c], [a | b]], 41, 5) == [True, False, False]
    groups = [set(range(0, 20)), set(range(20, 40))]
    assert _history([groups, [set(range(41))]], 41, 5) == [True, False]


def test_small_atoms_of_people_are_refused_even_when_no_one_is_derivable_alone() -> None:
    """Dinur-Nissim: random halves of 30 people, each alone in its atom after a few
    answers. No single person is a linear combination of answers, yet with each person
    counting 0 or 1 the answers pin them down: small atoms of people are refused."""
    rng = np.random.default_rng(3)
    halves = [[set(rng.choice(30, size=15, replace=False).tolist())] for _ in range(12)]
    verdicts = _history(halves, 30, 5)
    assert verdicts[0] and not all(verdicts)
    labels_sizes = []  # what was accepted never cuts anyone into a group under 5
    accepted = [h[0] for ok, h in zip(verdicts, halves, strict=True) if ok]
    for person in range(30):
        same = [p for p in range(30) if all((p in c) == (person in c) for c in accepted)]
        labels_sizes.append(len(same))
    assert min(labels_sizes) >= 5 or all(
        not any(person in c for c in accepted) for person in range(30) if labels_sizes[person] < 5
    )


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.sets(st.integers(0, 14), min_size=1), min_size=1, max_size=3),
                min_size=1, max_size=4), st.integers(2, 4))  # fmt: skip
def test_accepted_releases_never_isolate_fewer_than_k(
    releases: list[list[set[int]]], k: int
) -> None:
    """Brute force: no +-1 combination of accepted cells covers 1 .. k-1 people."""
    n = 15
    verdicts = _history(releases, n, k)
    accepted = [
        cell for ok, release in zip(verdicts, releases, strict=True) if ok for cell in release
    ]
    vectors = [np.isin(np.arange(n), list(c)).astype(int) for c in accepted]
    for coefficients in itertools.product((-1, 0, 1), repeat=min(len(vectors), 8)):
        combined = sum(c * v for c, v in zip(coefficients, vectors, strict=False))
        if isinstance(combined, int):
            continue
        support = int(np.count_nonzero(combined))
        assert support == 0 or support >= k


@given(
    universe=st.lists(st.integers(0, 2**64 - 1), max_size=60, unique=True),
    runs=st.lists(st.lists(st.integers(0, 2**64 - 1), max_size=30), max_size=5),
    pick=st.lists(st.integers(0, 59), max_size=40),
)
@settings(max_examples=200, deadline=None)
def test_galloping_lookup_agrees_with_searchsorted(
    universe: list[int], runs: list[list[int]], pick: list[int]
) -> None:
    """Sorted runs (cells), repeated keys, keys in and out of the universe, unsorted input."""
    from collabzone.disclosure._lookup import positions

    hashes = np.array(sorted(universe), dtype=np.uint64)
    chosen = [universe[i] for i in pick if i < len(universe)]
    cells = [np.array(sorted(run + chosen[: len(run)]), dtype=np.uint64) for run in runs]
    cells.append(np.array(pick, dtype=np.uint64))  # one unsorted run as well
    keys = np.concatenate(cells) if cells else np.zeros(0, dtype=np.uint64)
    np.testing.assert_array_equal(positions(hashes, keys), np.searchsorted(hashes, keys))


def test_galloping_lookup_in_two_threads_agrees_with_searchsorted() -> None:
    from collabzone.disclosure._lookup import positions

    rng = np.random.default_rng(11)
    universe = np.sort(rng.integers(0, 2**63, 300_000, dtype=np.uint64))
    cells = [np.sort(rng.choice(universe, 40_000)) for _ in range(6)]
    keys = np.concatenate(cells)
    np.testing.assert_array_equal(positions(universe, keys), np.searchsorted(universe, keys))
