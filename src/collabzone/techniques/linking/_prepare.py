"""``prepare``: at the provider's premises, raw file in, upload-ready token file out.

Reads a raw CSV (UTF-8) or Parquet file, normalises and tokenises the identifier columns
named by the link spec, drops every raw identifier column, and writes the tokens plus the
remaining columns, and a JSON report (rows, valid / missing / invalid values per field,
key versions). Raw PII never leaves this function: the output holds only tokens.

Everything is checked before anything is written, and files are written to a temporary
name and renamed at the end, so a failure leaves no partial output.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from collabzone.crypto.oprf import Transport
from collabzone.errors import InvalidInputError
from collabzone.keys import KeyProvider
from collabzone.techniques.linking._hmac import link_key
from collabzone.techniques.linking._spec import LinkSpec
from collabzone.techniques.linking._tokenise import (
    FieldCounts,
    Tokenised,
    tokenise_hmac,
    tokenise_oprf,
)


@dataclass(frozen=True)
class PrepareReport:
    """What ``prepare`` did: safe to share (counts and names, no values, no keys)."""

    rows: int
    mode: str
    collaboration: str
    zone: str
    fields: dict[str, FieldCounts]
    match_keys: dict[str, dict[str, Any]]
    dropped_columns: list[str]
    output_columns: dict[str, str] = field(default_factory=dict)
    """Output column -> suggested column class for the dataset schema at upload."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def token_columns(self) -> list[dict[str, str]]:
        """Schema entries of the token columns, for the dataset spec at upload.

        >>> PrepareReport(1, "hmac", "c", "z", {}, {"email": {"column": "link_email"}}, []
        ...               ).token_columns()
        [{'name': 'link_email', 'type': 'string', 'class': 'join_key'}]
        """
        return [
            {"name": str(k["column"]), "type": "string", "class": "join_key"}
            for k in self.match_keys.values()
        ]


def read_raw(path: Path, identifier_columns: list[str]) -> pa.Table:
    """Read a raw CSV/Parquet file, identifier columns as text; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"raw file {path} does not exist")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"raw file {path} is empty: it needs a header row and data rows")
    try:
        if path.suffix.lower() == ".parquet":
            table = pq.read_table(path)
        else:
            table = _read_csv(path, identifier_columns)
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "utf-8" in str(exc).lower():
            raise InvalidInputError(
                f"raw file {path} is not valid UTF-8 (mixed or legacy encoding): "
                "re-save it as UTF-8"
            ) from None
        # Arrow's message may quote a raw value: report only the kind of problem
        raise InvalidInputError(f"raw file {path} is not a well-formed CSV file") from None
    if table.num_rows == 0:
        raise InvalidInputError(f"raw file {path} has a header but no data rows")
    return table


def _read_csv(path: Path, identifier_columns: list[str]) -> pa.Table:
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a multi-byte character cut at the end
            raise pa.ArrowInvalid("invalid UTF8") from None
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in identifier_columns},
        strings_can_be_null=True,
    )
    return pacsv.read_csv(path, convert_options=convert)


BLOCK_BYTES = 1 << 20
"""Bytes of raw CSV per parsed block. Arrow reads up to 32 blocks ahead of the consumer, so
this bounds the raw text held in memory (~32 MiB) whatever the file's size."""
BATCH_ROWS = 100_000
"""Rows tokenised at once: parsed blocks are grouped up to this (parallel normalisation
starts at 100,000 rows, and each HMAC call to DuckDB has a fixed cost)."""


def _arrow_error(path: Path, exc: pa.ArrowInvalid) -> InvalidInputError:
    if "UTF8" in str(exc) or "utf-8" in str(exc).lower():
        return InvalidInputError(
            f"raw file {path} is not valid UTF-8 (mixed or legacy encoding): re-save it as UTF-8"
        )
    # Arrow's message may quote a raw value: report only the kind of problem
    return InvalidInputError(f"raw file {path} is not a well-formed CSV file")


def iter_raw(
    path: Path, identifier_columns: list[str], block_bytes: int = BLOCK_BYTES
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Stream a raw CSV/Parquet file as record batches (identifier columns as text).

    The file is never held whole in memory: Arrow's streaming CSV reader parses blocks of
    ``block_bytes`` and keeps at most ~32 of them ahead of the consumer (measured; a scanner
    from ``pyarrow.dataset`` read further ahead); Parquet is read row group by row group.
    Decoding errors surface while iterating, as the same clear errors as :func:`read_raw`.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"raw file {path} does not exist")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"raw file {path} is empty: it needs a header row and data rows")
    try:
        if path.suffix.lower() == ".parquet":
            parquet = pq.ParquetFile(path)
            schema: pa.Schema = parquet.schema_arrow
            batches: Iterator[pa.RecordBatch] = parquet.iter_batches(batch_size=256_000)
        else:
            _check_utf8_head(path)
            convert = pacsv.ConvertOptions(
                column_types={c: pa.string() for c in identifier_columns},
                strings_can_be_null=True,
            )
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=block_bytes),
                convert_options=convert,
            )
            schema, batches = reader.schema, iter(reader)
    except pa.ArrowInvalid as exc:
        raise _arrow_error(path, exc) from None

    def checked() -> Iterator[pa.RecordBatch]:
        try:
            yield from batches
        except pa.ArrowInvalid as exc:
            raise _arrow_error(path, exc) from None

    return schema, checked()


def _grouped(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Small parsed blocks grouped into tables of at least ``rows`` rows (the last may be
    smaller); empty blocks are skipped."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(pending)
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _check_utf8_head(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a multi-byte character cut at the end
            raise pa.ArrowInvalid("invalid UTF8") from None


def check_columns(table: pa.Table, spec: LinkSpec) -> None:
    """Every column the spec names must exist (the message lists what the file has)."""
    names = set(table.column_names)
    if len(names) != len(table.column_names):
        twice = sorted({c for c in table.column_names if table.column_names.count(c) > 1})
        raise InvalidInputError(f"the file has duplicate column names {twice}: rename them")
    wanted = [f.column for f in spec.fields.values()] + list(spec.drop)
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise InvalidInputError(
            f"the link spec names columns the file lacks: {unknown}; the file has: {sorted(names)}"
        )
    clash = [c for c in table.column_names if c.startswith("link_")]
    if clash:
        raise InvalidInputError(f"raw file already has token-like columns {clash}: rename them")


def check_counts(counts: dict[str, FieldCounts]) -> None:
    """Refuse a field with no valid value at all (wrong column, wrong options)."""
    for name, c in counts.items():
        if c.valid == 0:
            raise InvalidInputError(
                f"column {c.column!r} (field {name!r}, normaliser {c.normaliser}) has no valid "
                f"value ({c.invalid} invalid, {c.missing} missing): check the column and the "
                "normaliser options (e.g. phone region, date order)"
            )


def tokenise_table(
    table: pa.Table,
    spec: LinkSpec,
    keys: KeyProvider | None = None,
    transport: Transport | None = None,
    key_version: int | None = None,
) -> Tokenised:
    """Token columns for ``table`` in the spec's mode (HMAC keys or an OPRF transport)."""
    if spec.mode == "hmac":
        if keys is None:
            raise InvalidInputError("hmac mode needs the collaboration key (a key provider)")
        derived = {
            k.name: link_key(keys, spec.key_name, spec.zone, k.name, key_version)
            for k in spec.match_keys
        }
        return tokenise_hmac(table, spec, derived)
    if transport is None:
        raise InvalidInputError("oprf mode needs a transport to the zone's OPRF service")
    return tokenise_oprf(table, spec, transport)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _tokeniser(
    spec: LinkSpec,
    keys: KeyProvider | None,
    transport: Transport | None,
    key_version: int | None,
) -> Callable[[pa.Table], Tokenised]:
    """Tokenise batch after batch with keys derived once (not once per batch)."""
    if spec.mode == "hmac":
        if keys is None:
            raise InvalidInputError("hmac mode needs the collaboration key (a key provider)")
        derived = {
            k.name: link_key(keys, spec.key_name, spec.zone, k.name, key_version)
            for k in spec.match_keys
        }
        return lambda table: tokenise_hmac(table, spec, derived)
    if transport is None:
        raise InvalidInputError("oprf mode needs a transport to the zone's OPRF service")
    return lambda table: tokenise_oprf(table, spec, transport)


@dataclass
class _Totals:
    """What the report needs, summed over the batches."""

    rows: int = 0
    fields: dict[str, FieldCounts] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    versions: dict[str, set[str]] = field(default_factory=dict)

    def add(self, rows: int, tokenised: Tokenised, spec: LinkSpec) -> None:
        self.rows += rows
        for name, c in tokenised.fields.items():
            old = self.fields.get(name)
            self.fields[name] = (
                c
                if old is None
                else FieldCounts(
                    c.column,
                    c.normaliser,
                    old.valid + c.valid,
                    old.missing + c.missing,
                    old.invalid + c.invalid,
                )
            )
        for k in spec.match_keys:
            column = tokenised.tokens[k.column]
            self.tokens[k.name] = self.tokens.get(k.name, 0) + len(column) - column.null_count
            self.versions.setdefault(k.name, set()).update(_versions(column))


class _Writer:
    """A Parquet or CSV writer opened on the first batch (its schema is the output's).

    Token columns are written to Parquet plain and uncompressed: every token is distinct
    and pseudorandom, so a dictionary never forms and Snappy finds nothing to compress, but
    trying both cost ~0.3 us per row.
    """

    def __init__(self, path: Path, parquet: bool, tokens: set[str]) -> None:
        self.path, self.parquet, self.tokens = path, parquet, set(tokens)
        self.writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        self.columns: list[str] = []

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.columns = table.column_names
            if self.parquet:
                others = [c for c in self.columns if c not in self.tokens]
                compression = {c: "none" if c in self.tokens else "snappy" for c in self.columns}
                self.writer = pq.ParquetWriter(
                    self.path, table.schema, use_dictionary=others, compression=compression
                )
            else:
                self.writer = pacsv.CSVWriter(self.path, table.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def prepare(
    raw: Path,
    spec: LinkSpec,
    out: Path,
    *,
    keys: KeyProvider | None = None,
    transport: Transport | None = None,
    report: Path | None = None,
    key_version: int | None = None,
) -> PrepareReport:
    """Normalise and tokenise ``raw`` into ``out`` (CSV or Parquet by suffix); raw PII dropped.

    The file is streamed as Arrow record batches (:func:`iter_raw`): memory does not grow
    with the file. Within a batch, normalisation runs Arrow kernels in threads and the HMAC
    runs in DuckDB on every core. Nothing is renamed into place until every batch passed.

    Example (hmac mode, the collaboration key in the provider's keyring)::

        report = prepare(Path("customers.csv"), load_spec(Path("link.yaml")),
                         Path("upload.parquet"), keys=keyring)
    """
    raw, out = Path(raw), Path(out)
    if raw.resolve() in {out.resolve(), Path(report).resolve() if report else None}:
        raise InvalidInputError("the output and report files must differ from the raw file")
    schema, batches = iter_raw(raw, [f.column for f in spec.fields.values()], BLOCK_BYTES)
    check_columns(schema.empty_table(), spec)
    tokenise = _tokeniser(spec, keys, transport, key_version)
    tables = _grouped(batches, BATCH_ROWS)
    first = next(tables, None)
    if first is None:
        raise InvalidInputError(f"raw file {raw} has a header but no data rows")
    dropped = spec.identifier_columns()
    totals = _Totals()
    writer_columns: list[str] = []

    def write_data(tmp: Path) -> None:
        writer = _Writer(tmp, out.suffix.lower() == ".parquet", {k.column for k in spec.match_keys})
        try:
            for table in itertools.chain([first], tables):
                tokenised = tokenise(table)
                kept = table.drop_columns(dropped)
                for name, tokens in tokenised.tokens.items():
                    kept = kept.append_column(name, tokens)
                totals.add(table.num_rows, tokenised, spec)
                writer.write(kept)
        finally:
            writer.close()
        check_counts(totals.fields)
        writer_columns.extend(writer.columns)

    created = [d for d in (out.parent, *out.parent.parents) if not d.exists()]
    try:
        data_tmp = _atomic_write(out, write_data)
    except BaseException:
        for directory in created:  # deepest first: leave the disk as it was
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    tokens = {k.column for k in spec.match_keys}
    result = PrepareReport(
        rows=totals.rows,
        mode=spec.mode,
        collaboration=spec.collaboration,
        zone=spec.zone,
        fields=totals.fields,
        match_keys={
            k.name: {
                "column": k.column,
                "fields": list(k.fields),
                "tokens": totals.tokens[k.name],
                "key_versions": sorted(totals.versions[k.name]),
            }
            for k in spec.match_keys
        },
        dropped_columns=dropped,
        output_columns={c: ("join_key" if c in tokens else "other") for c in writer_columns},
    )

    def write_report(tmp: Path) -> None:
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")

    try:
        report_tmp = _atomic_write(report, write_report) if report is not None else None
    except BaseException:
        data_tmp.unlink(missing_ok=True)
        raise
    os.replace(data_tmp, out)
    if report is not None and report_tmp is not None:
        os.replace(report_tmp, report)
    return result


def _versions(tokens: pa.Array) -> list[str]:
    """Distinct key-version prefixes (``v1``, ``o2``) of a token column."""
    heads = pc.list_element(pc.split_pattern(tokens.drop_null(), ":", max_splits=1), 0)
    return sorted(str(v) for v in pc.unique(heads).to_pylist())
