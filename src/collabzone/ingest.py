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
The spec itself is parsed in :mod:`collabzone.ingest_spec` (re-exported here), and the
values are checked against it in :mod:`collabzone.ingest_checks`.
"""

from __future__ import annotations

import codecs
import csv
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from collabzone.errors import InvalidInputError
from collabzone.ingest_checks import (
    check_unique,
    fail,
    first_row,
    quote_ident,
    validate_arrow,
    validate_staged,
)
from collabzone.ingest_scan import Progress, scan_lines
from collabzone.ingest_spec import (
    DatasetSpec,
    Limits,
    duplicate_names,
    load_spec_document,
    parse_spec,
)
from collabzone.model import ColumnType

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


def _check_encoding(path: Path) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise fail(
                    path,
                    "is not valid UTF-8 (save the file as UTF-8)",
                    line + chunk[: exc.start].count(b"\n"),
                ) from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise fail(path, "ends in a truncated UTF-8 character", line) from None


def _read_header(path: Path, spec: DatasetSpec) -> list[str]:
    """The header's names (lines are already known to be within the line limit)."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    if not first.strip():
        raise fail(path, "is empty (expected a header line and data rows)")
    try:
        header = next(csv.reader(io.StringIO(first), delimiter=spec.delimiter))
    except csv.Error:
        raise fail(path, "the header is not a valid CSV line", 1) from None
    if len(header) > spec.limits.max_columns:
        raise fail(
            path, f"has {len(header)} columns, over the limit of {spec.limits.max_columns}", 1
        )
    header = [h.strip() for h in header]
    dupes = duplicate_names(header)
    if dupes:
        raise fail(
            path, f"the header names column(s) {', '.join(map(repr, dupes))} more than once", 1
        )
    return header


def _match_columns(path: Path, found: list[str], spec: DatasetSpec) -> None:
    if len(found) > spec.limits.max_columns:
        raise fail(path, f"has {len(found)} columns, over the limit of {spec.limits.max_columns}")
    declared = [c.name for c in spec.columns]
    declared_set, found_set = set(declared), set(found)
    unknown = [c for c in found if c not in declared_set]
    if unknown:
        raise fail(
            path, f"column(s) {', '.join(map(repr, unknown))} are not declared in the spec", 1
        )
    missing = [c for c in declared if c not in found_set]
    if missing:
        raise fail(
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
        raise fail(path, "is empty (expected a header line and data rows)")
    if size > spec.limits.max_file_bytes:
        raise fail(path, f"is {size} bytes, over the limit of {spec.limits.max_file_bytes}")
    scan = scan_lines(path, spec.limits.max_line_bytes, progress)
    if spec.header:
        try:
            header = _read_header(path, spec)
        except UnicodeDecodeError:
            _check_encoding(path)  # raises, naming the line
            raise
        if scan.lines - scan.blank <= 1:
            raise fail(path, "has a header but no data rows", 2)
    else:
        header = [c.name for c in spec.columns]  # the spec's order is the file's
        if scan.lines == scan.blank:
            raise fail(path, "has no data rows")

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
            raise fail(path, f"could not be parsed as CSV ({type(exc).__name__})") from None
        reject = first_row(
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
            raise fail(path, message, line, column if error_type == "CAST" else None)

        if spec.strip_spaces:
            raw = _strip_spaces(raw)
        expected = scan.lines - scan.blank - (1 if spec.header else 0)
        if not scan.quotes and raw.num_rows != expected:
            # without quotes every non-blank line is one row: a difference is a lost row
            raise fail(path, f"{expected} data lines gave {raw.num_rows} rows")

        def locate(row: int) -> int:
            return _line_of_record(path, row, spec.delimiter, header=spec.header)

        table = validate_arrow(con, raw, path, spec, header, locate)
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
            raise fail(path, "is not a readable Parquet file") from None
        # DuckDB renames a repeated name (x, x_1): the file's own schema has the real names
        try:
            raw_names = list(pq.read_schema(path).names)
        except (OSError, pa.ArrowException):
            raise fail(path, "is not a readable Parquet file") from None
        dupes = sorted({h for h in raw_names if raw_names.count(h) > 1})
        if dupes:
            raise fail(path, f"names column(s) {', '.join(map(repr, dupes))} more than once")
        _match_columns(path, found, spec)
        con.execute("CREATE TABLE raw AS SELECT * FROM read_parquet(?)", [str(path)])
        if first_row(con, "SELECT count(*) FROM raw") == (0,):
            raise fail(path, "has no data rows")
        for column in spec.columns:
            ident = quote_ident(column.name)
            condition = f"TRY_CAST({ident} AS {DUCKDB_TYPES[column.type]}) IS NULL"
            if column.type is ColumnType.INTEGER:
                # a fractional value must not be rounded into an integer column
                condition += f" OR TRY_CAST({ident} AS DOUBLE) <> TRY_CAST({ident} AS BIGINT)"
            bad = first_row(
                con,
                f"SELECT min(rowid) FROM raw WHERE {ident} IS NOT NULL AND ({condition})",
            )
            if bad and bad[0] is not None:
                raise fail(
                    path,
                    f"value does not match the declared type {column.type.value}",
                    int(bad[0]) + 1,
                    column.name,
                )
        casts = ", ".join(
            f"CAST({quote_ident(c.name)} AS {DUCKDB_TYPES[c.type]}) AS {quote_ident(c.name)}"
            for c in spec.columns
        )
        con.execute(f"CREATE TABLE staged AS SELECT {casts} FROM raw ORDER BY rowid")
        return validate_staged(con, path, spec, found, lambda row: row + 1)
    finally:
        con.close()


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
        check_unique(table, Path(path), spec, lambda row: row + 1)
        return table
    if suffix in (".csv", ".txt", ".tsv", ".data"):
        table = read_csv(Path(path), spec, progress=progress, notice=notice)
        check_unique(
            table, Path(path), spec,
            lambda row: _line_of_record(Path(path), row, spec.delimiter, header=spec.header),
        )  # fmt: skip
        return table
    raise InvalidInputError(
        f"{Path(path).name}: unsupported file type {suffix!r} (use .csv, .tsv, .txt, .data or "
        ".parquet)"
    )
