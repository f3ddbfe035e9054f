"""Transpiling the governed tree: every engine's SQL keeps the threshold and the bounds."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from collabzone.errors import InvalidInputError
from collabzone.techniques.sql import transpile
from collabzone.techniques.sql._technique import compile_for
from tests.sql.sql_support import FakeZone

SQL = (
    "SELECT b.segment, COUNT(*) AS n FROM bank b JOIN shop s ON b.pid = s.pid "
    "WHERE b.age BETWEEN 20 AND 60 GROUP BY b.segment ORDER BY n DESC LIMIT 3"
)


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_governed_tree_survives_transpiling(fake_zone: FakeZone, engine: str) -> None:
    ctx = fake_zone.as_party("analyst")
    tree = compile_for({"sql": SQL}, ctx).rewritten()
    text = transpile(tree, engine)
    back = sqlglot.parse_one(text, read=engine if engine != "postgres" else "postgres")
    thresholds = [
        node
        for node in back.find_all(exp.GTE)
        if isinstance(node.expression, exp.Literal) and node.expression.this == "5"
    ]
    assert thresholds, text  # the minimum group size is in every engine's SQL
    assert "COUNT(DISTINCT" in text.upper()
    ctx.close()


def test_unknown_engine() -> None:
    with pytest.raises(InvalidInputError):
        transpile(sqlglot.parse_one("SELECT 1"), "oracle-ish")
