"""Query monitor and canonical forms: properties over many inputs."""

from __future__ import annotations

import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.techniques.sql._canonical import canonical_predicate
from collabzone.techniques.sql._monitor import (
    EntitySet,
    check_differencing,
    decode_set,
    encode_set,
    record,
)

hashes = st.sets(st.integers(min_value=0, max_value=2**64 - 1), max_size=300)


@given(hashes)
def test_encode_decode_round_trip(members: set[int]) -> None:
    assert decode_set(encode_set(members)) == frozenset(members)


@settings(max_examples=60)
@given(
    base=st.sets(st.integers(0, 10**9), min_size=20, max_size=200),
    extra=st.sets(st.integers(10**9 + 1, 2 * 10**9), max_size=12),
    k=st.integers(2, 10),
)
def test_differencing_refused_exactly_when_gap_is_small(
    base: set[int], extra: set[int], k: int
) -> None:
    earlier = [{"entities": record([EntitySet.of(base)]), "requester": "a"}]
    reasons = check_differencing([EntitySet.of(base | extra)], earlier, min_group_size=k)
    should_refuse = 0 < len(extra) < k
    assert bool(reasons) == should_refuse
    if reasons:
        assert reasons[0].code == "DIFFERENCING"


def test_union_of_rows_is_compared_with_an_earlier_total() -> None:
    total = set(range(100))
    groups = [EntitySet.of(range(0, 60)), EntitySet.of(range(60, 98))]  # two people cut
    earlier = [{"entities": record([EntitySet.of(total)])}]
    assert check_differencing(groups, earlier, min_group_size=5)
    assert not check_differencing(groups, earlier, min_group_size=2)  # gap 2 is not < 2


def _where(sql: str) -> str:
    tree = sqlglot.parse_one(f"SELECT 1 FROM t WHERE {sql}", read="duckdb")
    return canonical_predicate(tree.args["where"].this)


@given(
    st.permutations(["a > 1", "b = 'x'", "c IN (3, 2)", "d BETWEEN 1 AND 5"]),
    st.booleans(),
)
def test_canonical_predicate_ignores_order_and_flips(parts: list[str], flip: bool) -> None:
    text = " AND ".join(parts)
    if flip:
        text = text.replace("a > 1", "1 < a").replace("c IN (3, 2)", "c IN (2, 3, 2)")
    assert _where(text) == _where("a > 1 AND b = 'x' AND c IN (2, 3) AND d >= 1 AND d <= 5")


def test_canonical_predicate_distinguishes_meaning() -> None:
    assert _where("a > 1") != _where("a >= 1")
    assert _where("NOT a >= 30") == _where("a < 30")
    assert _where("a = 1 OR b = 2") != _where("a = 1 AND b = 2")
