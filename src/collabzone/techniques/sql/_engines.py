"""Engines: the governed tree is written once and transpiled for each engine.

DuckDB runs it by default (the zone's connection). The same rewritten AST is generated
for PostgreSQL or Spark SQL by SQLGlot, so a governed query keeps its rules on every
engine: the threshold, the bounds and the allowed columns are in the tree, not in Python.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from collabzone.errors import InvalidInputError

ENGINES = {"duckdb": "duckdb", "postgres": "postgres", "postgresql": "postgres", "spark": "spark"}


def transpile(tree: exp.Expression, engine: str = "duckdb") -> str:
    """The SQL text of ``tree`` for ``engine`` (duckdb, postgres or spark)."""
    dialect = ENGINES.get(engine.lower())
    if dialect is None:
        raise InvalidInputError(f"unknown engine {engine!r}; use one of duckdb, postgres, spark")
    return tree.sql(dialect=dialect)


def run_postgres(
    sql: str, conninfo: str, *, schema: str, timeout_s: float = 30.0
) -> list[tuple[Any, ...]]:
    """Run governed SQL on PostgreSQL in a read-only transaction with a statement timeout."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=False) as con:
        with con.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(
                "SELECT set_config('statement_timeout', %s, true)", (str(int(timeout_s * 1000)),)
            )
            cur.execute("SELECT set_config('search_path', %s, true)", (schema,))
            cur.execute(sql.encode("utf-8"))
            rows = cur.fetchall()
        con.rollback()
    return [tuple(r) for r in rows]
