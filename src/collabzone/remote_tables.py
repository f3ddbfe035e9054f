"""Datasets left where they live: tables in the owner's PostgreSQL warehouse.

An owner grants the zone a read-only role on one table and registers it as a *remote*
dataset. The connection string (with the role's password) is sealed in the zone's data
store under the ``data-at-rest`` key, like a dataset file, and is never shown back: not in
the catalogue, the audit log, an error message or a ``repr``. Governed SQL runs *there*:
the rewritten tree, transpiled by SQLGlot, in a read-only transaction with a statement
timeout; only the governed result comes back.

At registration the zone reads the table's column types and a few counts (rows; non-null
and distinct values of columns the spec declares ``nullable: false`` / ``unique: true``),
never a row. A live table can change after that, so ``unique`` and ``nullable: false``
are accepted only when PostgreSQL itself enforces them (a unique index, a NOT NULL
constraint): DP skips contribution bounding on a unique entity column and must be able to
rely on it for every later query.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collabzone.errors import InvalidInputError
from collabzone.model import Column, ColumnType

if TYPE_CHECKING:
    import pyarrow as pa

REMOTE_SUFFIX = ".remote.enc"
"""Sealed location files end so: ``<dataset>.v<version>.<kind>.remote.enc``."""
KINDS = ("postgres", "spark")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_TYPES: dict[ColumnType, tuple[str, ...]] = {
    ColumnType.STRING: ("text", "character varying", "character", "uuid", "citext"),
    ColumnType.INTEGER: ("smallint", "integer", "bigint"),
    ColumnType.FLOAT: ("real", "double precision", "numeric", "smallint", "integer", "bigint"),
    ColumnType.BOOLEAN: ("boolean",),
    ColumnType.DATE: ("date",),
    ColumnType.TIMESTAMP: ("timestamp without time zone", "timestamp with time zone"),
}
UNREACHABLE = (
    "could not reach the PostgreSQL warehouse or log in (check host, port, database, role "
    "and password; the server's own message is withheld because it can quote the "
    "connection string)"
)


def is_remote(data_file: str) -> bool:
    """Whether a dataset row's ``data_file`` is the sealed location of a remote table."""
    return data_file.endswith(REMOTE_SUFFIX)


def remote_kind(data_file: str) -> str:
    """``postgres`` for ``bank.v1.postgres.remote.enc``."""
    return data_file[: -len(REMOTE_SUFFIX)].rsplit(".", 1)[-1]


def location_file(dataset: str, version: int, kind: str) -> str:
    return f"{dataset}.v{version}.{kind}{REMOTE_SUFFIX}"


def parse_table(text: str) -> tuple[str, str]:
    """``schema.table`` as two plain identifiers (no quotes: nothing to inject)."""
    parts = text.split(".")
    if len(parts) == 1:
        parts = ["public", parts[0]]
    if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
        raise InvalidInputError(
            f"--table {text!r}: write schema.table with plain names (letters, digits, _)"
        )
    return parts[0], parts[1]


def check_url(url: str) -> str:
    if not isinstance(url, str) or not re.match(r"^postgres(ql)?://", url):
        raise InvalidInputError(
            "the PostgreSQL connection must be a URL such as "
            "postgresql://role:password@host:5432/database"
        )
    return url


@dataclass(frozen=True)
class Location:
    """Where a remote dataset lives; ``url`` holds the credentials (never shown)."""

    kind: str
    table: tuple[str, str]
    url: str = field(repr=False)

    def to_bytes(self) -> bytes:
        doc = {"kind": self.kind, "table": list(self.table), "url": self.url}
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> Location:
        doc = json.loads(blob)
        return cls(kind=doc["kind"], table=(doc["table"][0], doc["table"][1]), url=doc["url"])


class PostgresTable:
    """One remote dataset's table, reachable only through governed, read-only queries.

    ``connection_id`` tells whether two datasets can be read in one query (same server,
    database and role); it is a digest, never the connection string.
    """

    kind = "postgres"

    def __init__(self, location: Location) -> None:
        self._url = location.url
        self.relation = location.table
        self.connection_id = hashlib.sha256(location.url.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"PostgresTable({'.'.join(self.relation)})"

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self._url, autocommit=False, connect_timeout=10)
        except psycopg.Error:
            raise InvalidInputError(UNREACHABLE) from None

    def query(self, sql: str, *, timeout_s: float) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of ``sql``, run read-only under a statement timeout.

        A timeout raises ``TimeoutError``; other psycopg errors propagate (the caller maps
        them to data-independent messages).
        """
        import psycopg

        with self._connect() as con:
            try:
                with con.cursor() as cur:
                    cur.execute("SET TRANSACTION READ ONLY")
                    cur.execute(
                        "SELECT set_config('statement_timeout', %s, true)",
                        (str(max(1, int(timeout_s * 1000))),),
                    )
                    try:
                        cur.execute(sql.encode("utf-8"))
                    except psycopg.errors.QueryCanceled:
                        raise TimeoutError from None
                    names = [d.name for d in cur.description or []]
                    rows = [tuple(r) for r in cur.fetchall()]
            finally:
                con.rollback()
        return names, rows

    def describe(self) -> dict[str, tuple[str, bool, bool]]:
        """Each column's type, whether NOT NULL holds, whether a unique index covers it alone."""
        sql = """
            SELECT a.attname, format_type(a.atttypid, NULL), a.attnotnull,
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid
                           AND i.indisunique AND i.indnkeyatts = 1
                           AND i.indkey[0] = a.attnum AND i.indpred IS NULL)
            FROM pg_attribute a
            WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
        """
        import psycopg

        name = ".".join(f'"{p}"' for p in self.relation)
        with self._connect() as con:
            try:
                rows = con.execute(sql, (name,)).fetchall()
            except psycopg.Error:
                raise InvalidInputError(
                    f"could not read the columns of {'.'.join(self.relation)}"
                ) from None
        if not rows:
            raise InvalidInputError(
                f"table {'.'.join(self.relation)} does not exist or the role cannot see it"
            )
        return {r[0]: (r[1], bool(r[2]), bool(r[3])) for r in rows}

    def count(self) -> int:
        """The number of rows (the only thing registration reads of the data)."""
        import psycopg

        name = ".".join(f'"{p}"' for p in self.relation)
        try:
            _, rows = self.query(f"SELECT COUNT(*) FROM {name}", timeout_s=60)
        except psycopg.Error:
            raise InvalidInputError(
                f"could not count the rows of {'.'.join(self.relation)}: grant the role "
                "SELECT on it"
            ) from None
        return int(rows[0][0])


def check_columns(
    columns: Sequence[Column], found: Mapping[str, tuple[str, bool, bool]], table: str
) -> None:
    """Refuse a spec the table does not match, naming every mismatch."""
    problems = []
    for column in columns:
        if column.name not in found:
            problems.append(f"column {column.name!r} is not in {table}")
            continue
        pg_type, not_null, unique = found[column.name]
        if pg_type not in _TYPES[column.type]:
            problems.append(
                f"column {column.name!r} is {pg_type} in {table}, not {column.type.value} "
                f"(use one of: {', '.join(_TYPES[column.type])})"
            )
        if not column.nullable and not not_null:
            problems.append(
                f"column {column.name!r} is declared nullable: false but {table} has no NOT "
                "NULL constraint on it (add one, or drop nullable: false)"
            )
        if column.unique and not unique:
            problems.append(
                f"column {column.name!r} is declared unique but no unique index of {table} "
                "covers it alone (add one, or drop unique: true)"
            )
    if problems:
        raise InvalidInputError("the spec does not match the table: " + "; ".join(problems))


_SPARK_TYPES: dict[ColumnType, tuple[str, ...]] = {
    ColumnType.STRING: ("string",),
    ColumnType.INTEGER: ("tinyint", "smallint", "int", "bigint"),
    ColumnType.FLOAT: ("float", "double", "decimal", "tinyint", "smallint", "int", "bigint"),
    ColumnType.BOOLEAN: ("boolean",),
    ColumnType.DATE: ("date",),
    ColumnType.TIMESTAMP: ("timestamp", "timestamp_ntz"),
}
_sessions: dict[str, Any] = {}
_sessions_lock = threading.Lock()


def spark_session(master: str) -> Any:
    """One Spark session per master for the process: ``local[n]``, ``spark://host:7077``
    (a standalone cluster) or ``sc://host:15002`` (Spark Connect).

    Results come back as Arrow batches, and adaptive execution sizes the shuffles: a
    local session starts from a few partitions per core (coalesced when the data is
    small, enough to keep each task's share of a 50M-row join in memory when it is not);
    a cluster keeps Spark's default. The driver's memory is Spark's own setting
    (``spark-defaults.conf`` or ``PYSPARK_SUBMIT_ARGS``), read when the JVM starts."""
    with _sessions_lock:
        if master not in _sessions:
            from pyspark.sql import SparkSession

            builder = SparkSession.builder.appName("collabzone")
            if master.startswith("sc://"):
                _sessions[master] = builder.remote(master).getOrCreate()
            else:
                builder = (
                    builder.master(master)
                    .config("spark.ui.enabled", "false")
                    .config("spark.ui.showConsoleProgress", "false")
                    .config("spark.sql.session.timeZone", "UTC")
                    .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                    .config("spark.sql.adaptive.enabled", "true")
                    .config("spark.sql.adaptive.coalescePartitions.enabled", "true")
                )
                if master.startswith("local"):
                    builder = builder.config(
                        "spark.sql.shuffle.partitions", str(4 * _local_cores(master))
                    )
                _sessions[master] = builder.getOrCreate()
        return _sessions[master]


def _local_cores(master: str) -> int:
    """The worker threads of ``local``, ``local[n]`` or ``local[*]``."""
    found = re.match(r"^local\[(\d+)", master)
    if found:
        return max(1, int(found.group(1)))
    return (os.cpu_count() or 1) if "*" in master else 1


_views: dict[tuple[str, str], tuple[Any, ...] | None] = {}
"""(master, view) -> the signature of the Parquet files the session's view was made of."""


def _files_signature(path: str) -> tuple[Any, ...] | None:
    """Names, sizes and modification times of a local Parquet file or directory (None for
    a remote store such as ``s3a://``: its view is made anew for each request)."""
    if "://" in path and not path.startswith("file://"):
        return None
    root = path.removeprefix("file://")
    try:
        if not os.path.isdir(root):
            st = os.stat(root)
            return (("", st.st_size, st.st_mtime_ns),)
        found = []
        for folder, _, names in os.walk(root):
            for name in names:
                st = os.stat(os.path.join(folder, name))
                found.append((os.path.relpath(os.path.join(folder, name), root), st.st_size,
                              st.st_mtime_ns))  # fmt: skip
        return tuple(sorted(found))
    except OSError:
        return None


def check_spark_master(master: str) -> str:
    if not isinstance(master, str) or not re.match(
        r"^(local(\[\d+\*?\]|\[\*\])?|spark://|sc://)", master
    ):
        raise InvalidInputError(
            "the Spark master must be local[n], spark://host:7077 or sc://host:15002 "
            "(Spark Connect)"
        )
    return master


class SparkTable:
    """One remote dataset in Spark: a Parquet path (``("parquet", path)``) or a catalogue
    table (``("table", "db.name")``), read through governed queries only."""

    kind = "spark"

    def __init__(self, location: Location) -> None:
        self._master = location.url
        self._source = location.table
        source, where = location.table
        if source == "parquet":
            self.relation: tuple[str, ...] = (
                "_cz_" + hashlib.sha256(where.encode()).hexdigest()[:16],
            )
        else:
            schema, table = parse_table(where)
            self.relation = (schema, table)
        self.connection_id = hashlib.sha256(location.url.encode()).hexdigest()[:16]
        self._prepared = False

    def __repr__(self) -> str:
        return f"SparkTable({self._source[0]})"

    def _frame(self) -> Any:
        spark = spark_session(self._master)
        source, where = self._source
        if source == "parquet":
            frame = spark.read.parquet(where)
            frame.createOrReplaceTempView(self.relation[0])
            return frame
        return spark.table(".".join(self.relation))

    def prepare(self) -> None:
        """Make the source visible to SQL in the session (a Parquet path: its view).

        Reading a Parquet path is a Spark job of its own (listing, footers): the view is
        made once per request, and kept across requests while the local files it lists
        are unchanged (same names, sizes and times)."""
        source, where = self._source
        if source != "parquet" or self._prepared:
            return
        key = (self._master, self.relation[0])
        signature = _files_signature(where)
        with _sessions_lock:
            known = signature is not None and _views.get(key) == signature
        if not known:
            self._frame()
            with _sessions_lock:
                _views[key] = signature
        self._prepared = True

    def query(self, sql: str, *, timeout_s: float) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of ``sql``; interrupted (``TimeoutError``) after ``timeout_s``."""
        table = self.query_arrow(sql, timeout_s=timeout_s)
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        return list(table.column_names), list(zip(*columns, strict=True))

    def query_arrow(self, sql: str, *, timeout_s: float) -> pa.Table:
        """The result of ``sql`` as one Arrow table (one Spark job, collected as Arrow
        batches, not as a Python object per value); ``TimeoutError`` after ``timeout_s``."""
        self.prepare()
        spark = spark_session(self._master)
        tag = f"collabzone-{secrets.token_hex(6)}"
        fired = threading.Event()

        def stop() -> None:
            fired.set()
            spark.interruptTag(tag)

        spark.addTag(tag)
        timer = threading.Timer(timeout_s, stop)
        timer.daemon = True
        timer.start()
        try:
            table: pa.Table = spark.sql(sql).toArrow()
        except Exception:
            if fired.is_set():
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()
            spark.removeTag(tag)
        return table

    def describe(self) -> dict[str, tuple[str, bool, bool]]:
        try:
            schema = self._frame().schema
        except Exception:
            raise InvalidInputError(
                "Spark could not read the dataset's source (check the path or table name and "
                "the master URL; Spark's own message is withheld)"
            ) from None
        return {
            f.name: (f.dataType.simpleString().split("(")[0], False, False) for f in schema.fields
        }

    def count(self) -> int:
        return int(self._frame().count())


def check_spark_columns(
    columns: Sequence[Column], found: Mapping[str, tuple[str, bool, bool]], source: str
) -> None:
    """Refuse a spec the Spark source does not match (Spark enforces no constraint, so
    ``unique`` and ``nullable: false`` cannot be relied on and are refused)."""
    problems = []
    for column in columns:
        if column.name not in found:
            problems.append(f"column {column.name!r} is not in {source}")
            continue
        spark_type = found[column.name][0]
        if spark_type not in _SPARK_TYPES[column.type]:
            problems.append(
                f"column {column.name!r} is {spark_type} in {source}, not {column.type.value} "
                f"(use one of: {', '.join(_SPARK_TYPES[column.type])})"
            )
        if column.unique or not column.nullable:
            problems.append(
                f"column {column.name!r}: Spark enforces no unique or NOT NULL constraint, so "
                "declare it without unique / nullable: false"
            )
    if problems:
        raise InvalidInputError("the spec does not match the source: " + "; ".join(problems))


def open_table(location: Location) -> PostgresTable | SparkTable:
    """The table object of a sealed location."""
    if location.kind == "spark":
        return SparkTable(location)
    return PostgresTable(location)
