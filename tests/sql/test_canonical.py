"""Canonical forms of predicates: properties over many inputs."""

from __future__ import annotations

import sqlglot
from hypothesis import given
from hypothesis import strategies as st

from collabzone.techniques.sql._canonical import canonical_predicate


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
