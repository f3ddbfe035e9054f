"""Checking the values of an ingested table against its spec, in DuckDB SQL, all or nothing.

Every per-value rule of the spec (type, nullability, text length, declared domain,
uniqueness) becomes a "bad row" SQL condition; one scan answers whether any value breaks
a rule, and only then are the rows staged to name the first bad one by file, line and
column (never by its value: it may be personal data). Split from :mod:`collabzone.ingest`,
which reads the files and calls these checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collabzone.errors import InvalidInputError
from collabzone.ingest_spec import DatasetSpec
from collabzone.model import Column, ColumnType


def fail(
    path: Path, message: str, line: int | None = None, column: str | None = None
) -> InvalidInputError:
    where = str(path.name)
    if line is not None:
        where += f", line {line}"
    if column is not None:
        where += f", column {column!r}"
    return InvalidInputError(f"{where}: {message}; nothing was stored")


def _check_integers(
    con: duckdb.DuckDBPyConnection, path: Path, spec: DatasetSpec, locate: Callable[[int], int]
) -> dict[str, str]:
    """Refuse integer columns (staged as text) holding anything but digits; return the SQL
    that types each one as BIGINT, applied when the validated table is read out."""
    integers = [c.name for c in spec.columns if c.type is ColumnType.INTEGER]
    checks = [
        (
            name,
            # the round trip settles the common case cheaply; only values that do not print
            # back the same (leading zeros, "+5", "3.5") reach the regular expression
            f"{quote_ident(name)} IS NOT NULL AND (TRY_CAST(trim({quote_ident(name)}) AS BIGINT) IS NULL OR "
            f"(CAST(TRY_CAST(trim({quote_ident(name)}) AS BIGINT) AS VARCHAR) <> trim({quote_ident(name)}) "
            f"AND NOT regexp_full_match({quote_ident(name)}, '\\s*[+-]?[0-9]+\\s*')))",
            "value does not match the declared type integer",
        )
        for name in integers
    ]
    _raise_first_bad(con, path, checks, locate)
    return {name: f"CAST(trim({quote_ident(name)}) AS BIGINT)" for name in integers}


def _raise_first_bad(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    checks: list[tuple[str, str, str]],
    locate: Callable[[int], int],
) -> None:
    """Evaluate every (column, bad-row condition, message) in one scan of ``staged``; raise
    for the first check (in order) that some row fails, at its first failing row."""
    if not checks:
        return
    aggregates = ", ".join(f"min(rowid) FILTER (WHERE {cond})" for _, cond, _ in checks)
    first_bad = first_row(con, f"SELECT {aggregates} FROM staged")
    for (name, _, message), bad in zip(checks, first_bad or (), strict=False):
        if bad is not None:
            raise fail(path, message, locate(int(bad)), name)


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The first row of a query, consuming the whole result (DuckDB 2 wants results finished)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _checks(spec: DatasetSpec, typed: dict[str, str]) -> list[tuple[str, str, str]]:
    """(column, bad-row SQL condition, message) for every per-value rule of the spec.

    ``typed`` maps a column to the SQL expression of its typed value when the staged column
    still holds text (CSV integers that Arrow could not cast strictly)."""
    checks: list[tuple[str, str, str]] = []
    for column in spec.columns:
        ident = typed.get(column.name, quote_ident(column.name))
        if column.type is ColumnType.FLOAT:
            checks.append(
                (
                    column.name,
                    f"isnan({ident}) OR isinf({ident})",
                    "NaN or infinite numbers are not allowed",
                )
            )
        if not column.nullable:
            checks.append(
                (
                    column.name,
                    f"{ident} IS NULL",
                    "value is missing but the column is declared not nullable",
                )
            )
        if column.type is ColumnType.STRING:
            checks.append(
                (
                    column.name,
                    f"length({ident}) > {spec.limits.max_string_length}",
                    f"text longer than {spec.limits.max_string_length} characters",
                )
            )
        checks.extend(_domain_checks(column, ident))
    return checks


def _check_count(path: Path, spec: DatasetSpec, count: int) -> None:
    if count == 0:
        raise fail(path, "has no data rows")
    if count > spec.limits.max_rows:
        raise fail(path, f"has {count} rows, over the limit of {spec.limits.max_rows}")


def _strict_integers(table: pa.Table, spec: DatasetSpec) -> pa.Table | None:
    """Cast the text integer columns with Arrow's strict parser (fast path); None when some
    value needs the SQL rules (signs, spaces) or is bad (the slow path then names it)."""
    for column in spec.columns:
        if column.type is not ColumnType.INTEGER:
            continue
        index = table.schema.get_field_index(column.name)
        try:
            typed = pc.cast(table.column(index), pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        table = table.set_column(index, column.name, typed)
    return table


def validate_arrow(
    con: duckdb.DuckDBPyConnection,
    raw: pa.Table,
    path: Path,
    spec: DatasetSpec,
    order: list[str],
    locate: Callable[[int], int],
) -> pa.Table:
    """Validate a CSV read as Arrow. The happy path never materialises a DuckDB table: one
    scan answers "is any value bad?"; only when one is, the rows are staged to find where."""
    _check_count(path, spec, raw.num_rows)
    typed_table = _strict_integers(raw, spec)
    checks = _checks(spec, {})
    if typed_table is not None and checks:
        con.register("candidate", typed_table)
        flags = first_row(
            con,
            "SELECT " + ", ".join(f"bool_or({cond})" for _, cond, _ in checks) + " FROM candidate",
        )
        con.unregister("candidate")
        if not any(flags or ()):
            return typed_table.select([c.name for c in spec.columns])
    elif typed_table is not None:
        return typed_table.select([c.name for c in spec.columns])
    con.register("raw_rows", raw)
    con.execute("CREATE TABLE staged AS SELECT * FROM raw_rows")
    typed = _check_integers(con, path, spec, locate)
    return validate_staged(con, path, spec, order, locate, typed=typed)


def validate_staged(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: DatasetSpec,
    order: list[str],
    locate: Callable[[int], int],
    typed: dict[str, str] | None = None,
) -> pa.Table:
    """Checks on the ``staged`` table, raising at the first bad row; returns the typed rows."""
    typed = typed or {}
    rows = first_row(con, "SELECT count(*) FROM staged")
    _check_count(path, spec, int(rows[0]) if rows else 0)
    _raise_first_bad(con, path, _checks(spec, typed), locate)
    select = ", ".join(
        f"{typed[c.name]} AS {quote_ident(c.name)}" if c.name in typed else quote_ident(c.name)
        for c in spec.columns
    )
    # a plain scan keeps file order (DuckDB's preserve_insertion_order is on): no sort needed
    return con.sql(f"SELECT {select} FROM staged").to_arrow_table()


def _domain_checks(column: Column, ident: str) -> list[tuple[str, str, str]]:
    domain = column.domain
    if domain is None:
        return []
    if isinstance(domain, list):
        if not domain:
            raise InvalidInputError(f"spec column {column.name!r}: an empty domain allows no value")
        literals = ", ".join(_literal(v) for v in domain)
        return [
            (
                column.name,
                f"{ident} IS NOT NULL AND {ident} NOT IN ({literals})",
                "value is outside the column's declared domain",
            )
        ]
    out = []
    for bound, op in (("min", "<"), ("max", ">")):
        if bound in domain:
            out.append(
                (
                    column.name,
                    f"{ident} {op} {_literal(domain[bound])}",
                    f"value is {'below' if op == '<' else 'above'} the declared domain {bound}",
                )
            )
    return out


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float) and math.isfinite(value):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def check_unique(
    table: pa.Table, path: Path, spec: DatasetSpec, locate: Callable[[int], int]
) -> None:
    """Refuse a column declared ``unique`` whose values repeat, naming the first repeat."""
    for column in spec.columns:
        if not column.unique:
            continue
        values = table.column(column.name)
        if pc.count_distinct(values, mode="only_valid").as_py() == pc.count(values).as_py():
            continue
        con = duckdb.connect()
        try:
            rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
            con.register("_cz_values", pa.table({"v": values, "i": rows}))
            first = first_row(
                con,
                "SELECT min(i) FROM (SELECT i, row_number() OVER (PARTITION BY v ORDER BY i) AS r"
                " FROM _cz_values WHERE v IS NOT NULL) WHERE r = 2",
            )
        finally:
            con.close()
        row = int(first[0]) if first and first[0] is not None else 0
        raise fail(
            path, "value repeats an earlier row but the column is declared unique", locate(row),
            column.name,
        )  # fmt: skip
