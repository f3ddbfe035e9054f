"""A fake zone whose datasets are tables in the machine's PostgreSQL (one schema per test)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from collabzone.remote_tables import Location, PostgresTable
from tests.sql.sql_support import Ctx, FakeZone

URL = os.environ.get("COLLABZONE_TEST_POSTGRES_URL", "")
_PG_TYPES = {pa.string(): "text", pa.int64(): "bigint", pa.float64(): "double precision"}


def conninfo() -> str:
    return URL.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def pg_schema(tables: dict[str, pa.Table], unique: dict[str, str] | None = None) -> Iterator[str]:
    """A fresh schema holding ``tables`` (dropped afterwards); ``unique``: table -> column
    with a unique index."""
    import psycopg

    schema = f"cz_remote_{secrets.token_hex(4)}"
    with psycopg.connect(conninfo(), autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
        for name, table in tables.items():
            cols = ", ".join(f'"{f.name}" {_PG_TYPES[f.type]}' for f in table.schema)
            con.execute(f'CREATE TABLE "{schema}"."{name}" ({cols})')
            with con.cursor() as cur, cur.copy(f'COPY "{schema}"."{name}" FROM STDIN') as copy:
                for row in table.to_pylist():
                    copy.write_row(list(row.values()))
        for name, column in (unique or {}).items():
            con.execute(f'CREATE UNIQUE INDEX ON "{schema}"."{name}" ("{column}")')
    try:
        yield schema
    finally:
        with psycopg.connect(conninfo(), autocommit=True) as con:
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')


@dataclass
class RemoteCtx(Ctx):
    """The fake zone's context, with its datasets left in PostgreSQL."""

    warehouses: dict[str, Any] = field(default_factory=dict)

    def warehouse(self, dataset: str) -> Any:
        return self.warehouses.get(dataset)


@dataclass
class RemoteZone(FakeZone):
    schema: str = ""
    remote: tuple[str, ...] = ()
    opener: Callable[[str], Any] | None = None
    """dataset -> its warehouse table (default: PostgreSQL, the table named so in ``schema``)."""

    def as_party(self, name: str) -> Ctx:  # type: ignore[override]
        base = super().as_party(name)
        opener = self.opener or (
            lambda d: PostgresTable(Location("postgres", (self.schema, d), conninfo()))
        )
        return RemoteCtx(base.zone, base.party, {d: opener(d) for d in self.remote})


def remote_copy(
    zone: FakeZone,
    schema: str = "",
    remote: tuple[str, ...] | None = None,
    opener: Callable[[str], Any] | None = None,
) -> RemoteZone:
    """The same catalogue and agreements as ``zone``, its datasets read from ``schema``
    (or from what ``opener`` gives)."""
    return RemoteZone(
        datasets=zone.datasets,
        agreements=zone.agreements,
        tables=zone.tables,
        schema=schema,
        remote=tuple(zone.datasets) if remote is None else remote,
        opener=opener,
    )


def normalised(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload with numbers rounded (engines differ in the last bits of a float)."""

    def cell(v: Any) -> Any:
        if isinstance(v, float | Decimal):
            return round(float(v), 6)
        return v

    out = dict(payload)
    out["rows"] = sorted((tuple(cell(v) for v in r) for r in payload["rows"]), key=repr)
    return out
