"""The same governed query gives the same released rows on DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from collabzone.techniques.sql import transpile
from collabzone.techniques.sql._engines import run_postgres
from collabzone.techniques.sql._execute import execute
from collabzone.techniques.sql._technique import compile_for
from tests.sql.sql_support import FakeZone, make_fake_zone

URL = os.environ.get("COLLABZONE_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="COLLABZONE_TEST_POSTGRES_URL is not set"),
]
_PG_TYPES = {pa.string(): "text", pa.int64(): "bigint", pa.float64(): "double precision"}


def _conninfo() -> str:
    assert URL is not None
    return URL.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[FakeZone, str]]:
    import psycopg

    zone = make_fake_zone()
    schema = f"cz_sql_test_{secrets.token_hex(4)}"
    with psycopg.connect(_conninfo(), autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
        for name, table in zone.tables.items():
            cols = ", ".join(f'"{f.name}" {_PG_TYPES[f.type]}' for f in table.schema)
            con.execute(f'CREATE TABLE "{schema}"."{name}" ({cols})')
            with con.cursor() as cur, cur.copy(f'COPY "{schema}"."{name}" FROM STDIN') as copy:
                for row in table.to_pylist():
                    copy.write_row(list(row.values()))
    try:
        yield zone, schema
    finally:
        with psycopg.connect(_conninfo(), autocommit=True) as con:
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _norm(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def cell(v: Any) -> Any:
        if isinstance(v, float | Decimal):
            return round(float(v), 6)
        return v

    return sorted((tuple(cell(v) for v in r) for r in rows), key=repr)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT segment, COUNT(*) AS n, AVG(balance) AS avg_balance FROM bank GROUP BY segment",
        "SELECT b.segment, s.shop_segment, COUNT(DISTINCT b.pid), SUM(s.spend) FROM bank b "
        "JOIN shop s ON b.pid = s.pid WHERE b.age BETWEEN 25 AND 70 AND b.region IN "
        "('north', 'east') GROUP BY b.segment, s.shop_segment ORDER BY 3 DESC, 1, 2 LIMIT 4",
        "SELECT region, SUM(converted) FROM bank WHERE segment <> 'gold' GROUP BY region "
        "HAVING COUNT(*) > 20",
        "SELECT COUNT(*) FROM bank WHERE segment = 'new'",
    ],
)
def test_same_released_rows_on_duckdb_and_postgres(loaded: tuple[FakeZone, str], sql: str) -> None:
    zone, schema = loaded
    ctx = zone.as_party("analyst")
    compiled = compile_for({"sql": sql}, ctx)
    assert not compiled.reasons
    tree = compiled.rewritten()
    duck = execute(ctx.connection(), transpile(tree, "duckdb"), timeout_s=30, max_rows=None)
    duck_rows = [tuple(r.values()) for r in duck.to_pylist()]
    pg_rows = run_postgres(transpile(tree, "postgres"), _conninfo(), schema=schema)
    assert _norm(pg_rows) == _norm(duck_rows)
    assert duck.num_rows == len(pg_rows)
    ctx.close()


def test_postgres_run_is_read_only(loaded: tuple[FakeZone, str]) -> None:
    import psycopg

    _, schema = loaded
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        run_postgres('CREATE TABLE "x" (a int)', _conninfo(), schema=schema)
