"""Reading a provider's CSV or Parquet file into a validated table, all or nothing.

The owner declares every column (name, type, class, optional value domain) in a small
spec (YAML, TOML or a dict). The file must match it exactly; the first problem found is
reported with the file, line and column, and never with the offending value (it may be
personal data). Nothing is stored unless every check passes.

Limits come first: a byte-level pass (:mod:`collabzone.ingest_scan`) refuses an overlong
line by its number before a parser sees it, and the header's width before any per-column
work (every check is linear in the columns). Blank lines are skipped and reported through
``notice``; a file without a header line (``header: false`` in the spec, or
``collabzone dataset add --no-header``) has the spec's columns in the spec's order.
The spec itself is parsed in :mod:`collabzone.ingest_spec` (re-exported here).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from collabzone.errors import InvalidInputError
from collabzone.ingest_scan import Progress, scan_lines
from collabzone.ingest_spec import (
    DatasetSpec,
    Limits,
    duplicate_names,
    load_spec_document,
    parse_spec,
)
from collabzone.model import Column, ColumnType

__all__ = [
    "DatasetSpec",
    "Limits",
    "Progress",
    "load_spec_document",
    "parse_spec",
    "read_csv",
    "read_file",
    "read_parquet",
]

DUCKDB_TYPES = {
    ColumnType.STRING: "VARCHAR",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.FLOAT: "DOUBLE",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.DATE: "DATE",
    ColumnType.TIMESTAMP: "TIMESTAMP",
}


def _fail(
    path: Path, message: str, line: int | None = None, column: str | None = None
) -> InvalidInputError:
    where = str(path.name)
    if line is not None:
        where += f", line {line}"
    if column is not None:
        where += f", column {column!r}"
    return InvalidInputError(f"{where}: {message}; nothing was stored")


def _check_encoding(path: Path) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise _fail(
                    path,
                    "is not valid UTF-8 (save the file as UTF-8)",
                    line + chunk[: exc.start].count(b"\n"),
                ) from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise _fail(path, "ends in a truncated UTF-8 character", line) from None


def _read_header(path: Path, spec: DatasetSpec) -> list[str]:
    """The header's names (lines are already known to be within the line limit)."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    if not first.strip():
        raise _fail(path, "is empty (expected a header line and data rows)")
    try:
        header = next(csv.reader(io.StringIO(first), delimiter=spec.delimiter))
    except csv.Error:
        raise _fail(path, "the header is not a valid CSV line", 1) from None
    if len(header) > spec.limits.max_columns:
        raise _fail(
            path, f"has {len(header)} columns, over the limit of {spec.limits.max_columns}", 1
        )
    header = [h.strip() for h in header]
    dupes = duplicate_names(header)
    if dupes:
        raise _fail(
            path, f"the header names column(s) {', '.join(map(repr, dupes))} more than once", 1
        )
    return header


def _match_columns(path: Path, found: list[str], spec: DatasetSpec) -> None:
    if len(found) > spec.limits.max_columns:
        raise _fail(path, f"has {len(found)} columns, over the limit of {spec.limits.max_columns}")
    declared = [c.name for c in spec.columns]
    declared_set, found_set = set(declared), set(found)
    unknown = [c for c in found if c not in declared_set]
    if unknown:
        raise _fail(
            path, f"column(s) {', '.join(map(repr, unknown))} are not declared in the spec", 1
        )
    missing = [c for c in declared if c not in found_set]
    if missing:
        raise _fail(
            path, f"declared column(s) {', '.join(map(repr, missing))} are missing from the file", 1
        )


_REJECT_MESSAGES = {
    "CAST": "value does not match the declared type {type}",
    "MISSING COLUMNS": "row has fewer fields than the header (ragged row)",
    "TOO MANY COLUMNS": "row has more fields than the header (ragged row)",
    "UNQUOTED VALUE": "badly quoted field",
    "LINE SIZE OVER MAXIMUM": "line is too long",
    "INVALID ENCODING": "is not valid UTF-8",
    "INVALID UNICODE": "is not valid UTF-8",
}


def read_csv(
    path: Path,
    spec: DatasetSpec,
    *,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> pa.Table:
    """Validate and read a CSV file into an Arrow table typed as the spec says.

    ``progress(step, fraction, rows)`` hears both passes over the file (see
    :data:`collabzone.ingest_scan.Progress`); ``notice`` hears what was skipped without being
    an error (blank lines).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise _fail(path, "is empty (expected a header line and data rows)")
    if size > spec.limits.max_file_bytes:
        raise _fail(path, f"is {size} bytes, over the limit of {spec.limits.max_file_bytes}")
    scan = scan_lines(path, spec.limits.max_line_bytes, progress)
    if spec.header:
        try:
            header = _read_header(path, spec)
        except UnicodeDecodeError:
            _check_encoding(path)  # raises, naming the line
            raise
        if scan.lines - scan.blank <= 1:
            raise _fail(path, "has a header but no data rows", 2)
    else:
        header = [c.name for c in spec.columns]  # the spec's order is the file's
        if scan.lines == scan.blank:
            raise _fail(path, "has no data rows")

    _match_columns(path, header, spec)
    by_name = {c.name: c for c in spec.columns}
    # integers are read as text and checked strictly: DuckDB's own cast rounds "3.5" to 4
    types = {
        name: "VARCHAR"
        if by_name[name].type is ColumnType.INTEGER
        else DUCKDB_TYPES[by_name[name].type]
        for name in header
    }
    con = duckdb.connect(config={"enable_external_access": True})
    try:
        try:
            raw = _arrow_with_progress(
                con,
                "SELECT * FROM read_csv(?, header=?, auto_detect=false, "
                "delim=?, quote='\"', escape='\"', columns=?, store_rejects=true, strict_mode=true, "
                "max_line_size=?)",
                [
                    str(path),
                    spec.header,
                    spec.delimiter,
                    types,
                    max(spec.limits.max_line_bytes + 2, 1 << 20),
                ],
                progress,
                scan.lines - scan.blank - (1 if spec.header else 0),
            )
        except duckdb.Error as exc:
            _check_encoding(path)  # a bad byte is the usual cause: name its line
            raise _fail(path, f"could not be parsed as CSV ({type(exc).__name__})") from None
        reject = _first(
            con,
            "SELECT line_byte_position, column_name, error_type FROM reject_errors "
            "ORDER BY line_byte_position LIMIT 1",
        )
        if reject is not None:
            position, column, error_type = reject
            if "UNICODE" in str(error_type) or "ENCODING" in str(error_type):
                _check_encoding(path)  # the UTF-8 pass names the first bad line exactly
            template = _REJECT_MESSAGES.get(str(error_type), "malformed row ({kind})")
            column_spec = by_name.get(column) if column else None
            message = template.format(
                type=column_spec.type.value if column_spec else "?", kind=str(error_type).lower()
            )
            line = _line_at_byte(path, int(position))
            raise _fail(path, message, line, column if error_type == "CAST" else None)

        if spec.strip_spaces:
            raw = _strip_spaces(raw)
        expected = scan.lines - scan.blank - (1 if spec.header else 0)
        if not scan.quotes and raw.num_rows != expected:
            # without quotes every non-blank line is one row: a difference is a lost row
            raise _fail(path, f"{expected} data lines gave {raw.num_rows} rows")

        def locate(row: int) -> int:
            return _line_of_record(path, row, spec.delimiter, header=spec.header)

        table = _validate_arrow(con, raw, path, spec, header, locate)
        if notice is not None and (text := scan.blank_notice(path.name)):
            notice(text)
        return table
    finally:
        con.close()


def _arrow_with_progress(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list[Any],
    progress: Progress | None,
    rows: int,
) -> pa.Table:
    """Run ``sql`` to an Arrow table; with ``progress``, the query runs on a worker thread
    while this one polls DuckDB's own progress (``query_progress``, made for this)."""
    if progress is None:
        return con.sql(sql, params=params).to_arrow_table()
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["table"] = con.sql(sql, params=params).to_arrow_table()
        except BaseException as exc:  # handed back to the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=run, name="collabzone-ingest", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
            percent = con.query_progress()
            if percent >= 0:
                progress("parsing", percent / 100, int(rows * percent / 100))
    except BaseException:  # Ctrl-C or a failing callback: stop the query before leaving
        con.interrupt()
        worker.join()
        raise
    if "error" in result:
        raise result["error"]
    progress("parsing", 1.0, rows)
    return result["table"]


def _strip_spaces(table: pa.Table) -> pa.Table:
    """Trim whitespace around every text field (``strip_spaces: true``: files such as UCI's
    ``adult.data`` separate fields with ", ", so each value would start with a space)."""
    for index, column in enumerate(table.columns):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            table = table.set_column(
                index, table.column_names[index], pc.utf8_trim_whitespace(column)
            )
    return table


def _line_at_byte(path: Path, position: int) -> int:
    """The physical line holding byte ``position`` (error path only: reads up to it)."""
    newlines = 0
    with path.open("rb") as handle:
        while position > 0 and (chunk := handle.read(min(position, 1 << 20))):
            newlines += chunk.count(b"\n")
            position -= len(chunk)
    return newlines + 1


def _line_of_record(path: Path, row: int, delimiter: str, *, header: bool = True) -> int:
    """The physical line where data row ``row`` (0-based, as DuckDB numbers them: blank lines
    skipped, a quoted field may span lines) starts. Error path only: it rereads the file."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        if header:
            next(reader, None)
        start, seen = reader.line_num + 1, -1
        for record in reader:
            if record:  # a blank line reads as []
                seen += 1
                if seen == row:
                    return start
            start = reader.line_num + 1
    return row + (2 if header else 1)


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
            f"{_quote(name)} IS NOT NULL AND (TRY_CAST(trim({_quote(name)}) AS BIGINT) IS NULL OR "
            f"(CAST(TRY_CAST(trim({_quote(name)}) AS BIGINT) AS VARCHAR) <> trim({_quote(name)}) "
            f"AND NOT regexp_full_match({_quote(name)}, '\\s*[+-]?[0-9]+\\s*')))",
            "value does not match the declared type integer",
        )
        for name in integers
    ]
    _raise_first_bad(con, path, checks, locate)
    return {name: f"CAST(trim({_quote(name)}) AS BIGINT)" for name in integers}


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
    first_bad = _first(con, f"SELECT {aggregates} FROM staged")
    for (name, _, message), bad in zip(checks, first_bad or (), strict=False):
        if bad is not None:
            raise _fail(path, message, locate(int(bad)), name)


def read_parquet(path: Path, spec: DatasetSpec) -> pa.Table:
    """Validate and read a Parquet file, casting each column to the declared type."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    con = duckdb.connect()
    try:
        try:
            found = [
                r[0]
                for r in con.execute(
                    "DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]
                ).fetchall()
            ]
        except duckdb.Error:
            raise _fail(path, "is not a readable Parquet file") from None
        # DuckDB renames a repeated name (x, x_1): the file's own schema has the real names
        try:
            raw_names = list(pq.read_schema(path).names)
        except (OSError, pa.ArrowException):
            raise _fail(path, "is not a readable Parquet file") from None
        dupes = sorted({h for h in raw_names if raw_names.count(h) > 1})
        if dupes:
            raise _fail(path, f"names column(s) {', '.join(map(repr, dupes))} more than once")
        _match_columns(path, found, spec)
        con.execute("CREATE TABLE raw AS SELECT * FROM read_parquet(?)", [str(path)])
        if _first(con, "SELECT count(*) FROM raw") == (0,):
            raise _fail(path, "has no data rows")
        for column in spec.columns:
            ident = _quote(column.name)
            condition = f"TRY_CAST({ident} AS {DUCKDB_TYPES[column.type]}) IS NULL"
            if column.type is ColumnType.INTEGER:
                # a fractional value must not be rounded into an integer column
                condition += f" OR TRY_CAST({ident} AS DOUBLE) <> TRY_CAST({ident} AS BIGINT)"
            bad = _first(
                con,
                f"SELECT min(rowid) FROM raw WHERE {ident} IS NOT NULL AND ({condition})",
            )
            if bad and bad[0] is not None:
                raise _fail(
                    path,
                    f"value does not match the declared type {column.type.value}",
                    int(bad[0]) + 1,
                    column.name,
                )
        casts = ", ".join(
            f"CAST({_quote(c.name)} AS {DUCKDB_TYPES[c.type]}) AS {_quote(c.name)}"
            for c in spec.columns
        )
        con.execute(f"CREATE TABLE staged AS SELECT {casts} FROM raw ORDER BY rowid")
        return _validate_staged(con, path, spec, found, lambda row: row + 1)
    finally:
        con.close()


def _first(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The first row of a query, consuming the whole result (DuckDB 2 wants results finished)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _checks(spec: DatasetSpec, typed: dict[str, str]) -> list[tuple[str, str, str]]:
    """(column, bad-row SQL condition, message) for every per-value rule of the spec.

    ``typed`` maps a column to the SQL expression of its typed value when the staged column
    still holds text (CSV integers that Arrow could not cast strictly)."""
    checks: list[tuple[str, str, str]] = []
    for column in spec.columns:
        ident = typed.get(column.name, _quote(column.name))
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
        raise _fail(path, "has no data rows")
    if count > spec.limits.max_rows:
        raise _fail(path, f"has {count} rows, over the limit of {spec.limits.max_rows}")


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


def _validate_arrow(
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
        flags = _first(
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
    return _validate_staged(con, path, spec, order, locate, typed=typed)


def _validate_staged(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: DatasetSpec,
    order: list[str],
    locate: Callable[[int], int],
    typed: dict[str, str] | None = None,
) -> pa.Table:
    """Checks on the ``staged`` table, raising at the first bad row; returns the typed rows."""
    typed = typed or {}
    rows = _first(con, "SELECT count(*) FROM staged")
    _check_count(path, spec, int(rows[0]) if rows else 0)
    _raise_first_bad(con, path, _checks(spec, typed), locate)
    select = ", ".join(
        f"{typed[c.name]} AS {_quote(c.name)}" if c.name in typed else _quote(c.name)
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


def _check_unique(
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
            first = _first(
                con,
                "SELECT min(i) FROM (SELECT i, row_number() OVER (PARTITION BY v ORDER BY i) AS r"
                " FROM _cz_values WHERE v IS NOT NULL) WHERE r = 2",
            )
        finally:
            con.close()
        row = int(first[0]) if first and first[0] is not None else 0
        raise _fail(
            path, "value repeats an earlier row but the column is declared unique", locate(row),
            column.name,
        )  # fmt: skip


def read_file(
    path: Path,
    spec: DatasetSpec,
    *,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> pa.Table:
    """Read a CSV or Parquet file (by extension) under ``spec`` (see :func:`read_csv`)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        if not spec.header:
            raise InvalidInputError("a Parquet file names its columns: drop --no-header")
        table = read_parquet(Path(path), spec)
        _check_unique(table, Path(path), spec, lambda row: row + 1)
        return table
    if suffix in (".csv", ".txt", ".tsv", ".data"):
        table = read_csv(Path(path), spec, progress=progress, notice=notice)
        _check_unique(
            table, Path(path), spec,
            lambda row: _line_of_record(Path(path), row, spec.delimiter, header=spec.header),
        )  # fmt: skip
        return table
    raise InvalidInputError(
        f"{Path(path).name}: unsupported file type {suffix!r} (use .csv, .tsv, .txt, .data or "
        ".parquet)"
    )
