"""Each rewrite rule against its fixture file of input / expected SQL (SQLGlot style).

A fixture block is a ``# {json context}`` line, the input SQL and the expected SQL, then a
blank line. Run with ``--regen-sql-fixtures`` never: expected SQL is reviewed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from collabzone.techniques.sql.rules._context import OwnTable, Quantity, RewriteContext, SumBound
from collabzone.techniques.sql.rules.bind_template import bind_template
from collabzone.techniques.sql.rules.bound_contributions import bound_contributions
from collabzone.techniques.sql.rules.bound_joined_tables import bound_joined_tables
from collabzone.techniques.sql.rules.clamp_values import clamp_values
from collabzone.techniques.sql.rules.enforce_min_group_size import enforce_min_group_size
from collabzone.techniques.sql.rules.enforce_min_list_size import enforce_min_list_size
from collabzone.techniques.sql.rules.limit_rows import limit_rows

FIXTURES = Path(__file__).parent / "fixtures"
RULES = {
    "enforce_min_group_size": enforce_min_group_size,
    "enforce_min_list_size": enforce_min_list_size,
    "bound_contributions": bound_contributions,
    "limit_rows": limit_rows,
    "clamp_values": clamp_values,
    "bound_joined_tables": bound_joined_tables,
}


def _blocks(path: Path) -> list[tuple[dict[str, Any], str, str]]:
    out = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        lines = [line for line in block.strip().splitlines() if line.strip()]
        assert lines[0].startswith("# "), f"{path.name}: each block starts with '# {{json}}'"
        out.append((json.loads(lines[0][2:]), lines[1], lines[2]))
    return out


def _context(doc: dict[str, Any]) -> RewriteContext:
    table, column = doc.pop("entity").split(".")
    quantities = tuple(
        Quantity(
            q["name"],
            q["kind"],
            exp.column(exp.to_identifier(q["column"].split(".")[1], quoted=True),
                       table=exp.to_identifier(q["column"].split(".")[0], quoted=True))
            if q.get("column") else None,
            SumBound(*q["bound"]) if q.get("bound") else None,
        )
        for q in doc.pop("quantities", [])
    )  # fmt: skip
    doc["order_by"] = tuple(tuple(o) for o in doc.get("order_by", []))
    doc["output_names"] = tuple(doc.get("output_names", []))
    entity = _column(table, column)
    doc["entities"] = tuple(_column(*e.split(".")) for e in doc.get("entities", []))
    doc["value_bounds"] = {
        tuple(key.split(".")): SumBound(*bound)
        for key, bound in doc.get("value_bounds", {}).items()
    }
    doc["own_tables"] = {
        alias: OwnTable(own["dataset"], tuple(own["keys"]), tuple(own["columns"]))
        for alias, own in doc.get("own_tables", {}).items()
    }
    return RewriteContext(entity=entity, quantities=quantities, **doc)


def _column(table: str, column: str) -> exp.Column:
    return exp.column(
        exp.to_identifier(column, quoted=True), table=exp.to_identifier(table, quoted=True)
    )


CASES = [
    pytest.param(name, *block, id=f"{name}-{i}")
    for name in RULES
    for i, block in enumerate(_blocks(FIXTURES / f"{name}.sql"))
]


@pytest.mark.parametrize(("rule", "doc", "source", "expected"), CASES)
def test_rule_fixture(rule: str, doc: dict[str, Any], source: str, expected: str) -> None:
    tree = sqlglot.parse_one(source, read="duckdb")
    assert isinstance(tree, exp.Select)
    before = tree.sql(dialect="duckdb")
    out = RULES[rule](tree, ctx=_context(dict(doc)))
    assert out.sql(dialect="duckdb") == expected
    assert tree.sql(dialect="duckdb") == before  # trees are copied on write


def test_bind_template_fixture() -> None:
    for doc, source, expected in _blocks(FIXTURES / "bind_template.sql"):
        tree = sqlglot.parse_one(source, read="duckdb")
        assert isinstance(tree, exp.Select)
        out = bind_template(tree, declared=doc["declared"], values=doc["values"])
        assert out.sql(dialect="duckdb") == expected
