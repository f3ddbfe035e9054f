"""Issue 2: bad input gets a clear error naming file, line and column, and leaves the zone as
it was (same datasets, no new file under <zone>/data, no audit event, chain intact).

Every bad cell below carries the marker ``SECRET`` (or is a value we can search for), so the
tests can check the message never echoes what was in the file: a value may be personal data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collabzone.errors import InvalidInputError, NotAuthorisedError
from collabzone.model import Dataset
from collabzone.zone import Zone
from tests.conftest import Parties

SPEC: dict[str, Any] = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {
            "name": "region",
            "type": "string",
            "class": "dimension",
            "domain": ["north", "south", "east"],
        },
        {"name": "spend", "type": "float", "class": "measure", "domain": {"min": 0, "max": 1000}},
        {
            "name": "visits",
            "type": "integer",
            "class": "measure",
            "domain": {"min": 0, "max": 9999},
        },
        {"name": "since", "type": "date", "class": "other"},
    ]
}
HEADER = "token,region,spend,visits,since\n"
GOOD = "t1,north,12.5,3,2020-01-01\nt2,south,99.0,1,2021-06-30\n"


@dataclass(frozen=True)
class Snapshot:
    datasets: list[tuple[str, int, int]]
    files: list[str]
    audit_events: int


def all_datasets(parties: Parties) -> list[Dataset]:
    """Every dataset of the zone, as the providers that own them see it."""
    seen = {}
    for handle in (parties.bank, parties.partner, parties.insurer):
        for dataset in handle.datasets():
            seen[dataset.name] = dataset
    return list(seen.values())


def snapshot(parties: Parties) -> Snapshot:
    """What must not change when an ingest is refused (files include hidden temp files)."""
    data_dir = parties.root / "data"
    files = sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else []
    datasets = sorted((d.name, d.version, d.row_count) for d in all_datasets(parties))
    return Snapshot(datasets, files, len(parties.operator.audit_events()))


def assert_refused_cleanly(
    parties: Parties,
    before: Snapshot,
    error: InvalidInputError,
    file_name: str,
    *,
    line: int | None = None,
    column: str | None = None,
    secrets: tuple[str, ...] = ("SECRET",),
) -> None:
    message = error.message
    assert message.startswith(file_name), message
    if line is not None:
        assert re.search(rf"\bline {line}\b", message), message
    if column is not None:
        assert f"column {column!r}" in message, message
    for secret in secrets:
        assert secret not in message, f"the message echoes a value: {message}"
    assert snapshot(parties) == before
    assert parties.operator.verify_audit().ok


def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


# name, file content, expected line, expected column, fragment of the message
CSV_CASES: list[tuple[str, str | bytes, int | None, str | None, str]] = [
    ("ragged_short", HEADER + GOOD + "SECRET1,north,1.0,2\n", 4, None, "fewer fields"),
    (
        "ragged_long",
        HEADER + GOOD + "SECRET1,north,1.0,2,2020-01-01,SECRET2\n",
        4,
        None,
        "more fields",
    ),
    (
        "bad_encoding",
        (HEADER + GOOD).encode() + b"SECRET\xff\xfe,north,1,2,2020-01-01\n",
        4,
        None,
        "UTF-8",
    ),
    (
        "latin1_mid_file",
        (HEADER + GOOD + GOOD).encode() + "Zoë SECRET,north,1,2,2020-01-01\n".encode("latin-1"),
        6,
        None,
        "UTF-8",
    ),
    ("float_type", HEADER + GOOD + "t3,east,SECRET9,2,2020-01-01\n", 4, "spend", "type float"),
    (
        "fraction_in_integer",
        HEADER + GOOD + "t3,east,1.0,3.5,2020-01-01\n",
        4,
        "visits",
        "type integer",
    ),
    (
        "text_in_integer",
        HEADER + GOOD + "t3,east,1.0,SECRET,2020-01-01\n",
        4,
        "visits",
        "type integer",
    ),
    (
        "integer_overflow",
        HEADER + GOOD + "t3,east,1.0,99999999999999999999999,2020-01-01\n",
        4,
        "visits",
        "type integer",
    ),
    ("bad_date", HEADER + GOOD + "t3,east,1.0,2,2020-13-45\n", 4, "since", "type date"),
    ("nan", HEADER + GOOD + "t3,east,nan,2,2020-01-01\n", 4, "spend", "NaN or infinite"),
    ("inf", HEADER + GOOD + "t3,east,inf,2,2020-01-01\n", 4, "spend", "NaN or infinite"),
    (
        "minus_inf",
        HEADER + "t0,east,-Infinity,2,2020-01-01\n" + GOOD,
        2,
        "spend",
        "NaN or infinite",
    ),
    (
        "crlf_and_bom",
        "\ufeff"
        + (HEADER + GOOD + "t3,east,1.0,2,2020-01-01\nt4,east,SECRET,2,2020-01-01\n").replace(
            "\n", "\r\n"
        ),
        5,
        "spend",
        "type float",
    ),
    ("empty", "", None, None, "is empty"),
    ("blank_lines", "\n\n  \n", None, None, "is empty"),
    ("header_only", HEADER, 2, None, "no data rows"),
    ("duplicate_columns", "token,region,spend,visits,spend\n" + GOOD, 1, None, "more than once"),
    (
        "unknown_column",
        HEADER.strip() + ",extra\n" + "t1,north,1,2,2020-01-01,SECRET\n",
        1,
        None,
        "not declared",
    ),
    (
        "missing_column",
        "token,region,spend,visits\nt1,north,1,2\n",
        1,
        None,
        "missing from the file",
    ),
    (
        "domain_category",
        HEADER + GOOD + "t3,SECRETland,1.0,2,2020-01-01\n",
        4,
        "region",
        "declared domain",
    ),
    (
        "domain_above_max",
        HEADER + GOOD + "t3,east,1000.5,2,2020-01-01\n",
        4,
        "spend",
        "above the declared domain max",
    ),
    (
        "domain_below_min",
        HEADER + GOOD + "t3,east,-0.01,2,2020-01-01\n",
        4,
        "spend",
        "below the declared domain min",
    ),
    (
        "integer_below_min",
        HEADER + GOOD + "t3,east,1.0,-1,2020-01-01\n",
        4,
        "visits",
        "below the declared domain min",
    ),
    (
        "huge_line",
        HEADER + GOOD + "SECRET" + "x" * 2_000_000 + ",north,1,2,2020-01-01\n",
        4,
        None,
        "too long",
    ),
    ("bad_quote", HEADER + GOOD + 't3,"nor"SECRET,1,2,2020-01-01\n', 4, None, "quoted"),
]


@pytest.mark.parametrize(
    ("case", "content", "line", "column", "fragment"), CSV_CASES, ids=[c[0] for c in CSV_CASES]
)
def test_malformed_csv_is_refused_and_zone_unchanged(
    sqlite_zone: Parties,
    tmp_path: Path,
    case: str,
    content: str | bytes,
    line: int | None,
    column: str | None,
    fragment: str,
) -> None:
    source = _write(tmp_path / f"{case}.csv", content)
    before = snapshot(sqlite_zone)
    with pytest.raises(InvalidInputError) as caught:
        sqlite_zone.bank.add_dataset("customers", source, SPEC)
    assert fragment in caught.value.message
    assert_refused_cleanly(sqlite_zone, before, caught.value, source.name, line=line, column=column)


def test_a_good_file_is_accepted_with_exact_values(sqlite_zone: Parties, tmp_path: Path) -> None:
    """The control for the cases above: the same spec ingests a clean file, values intact."""
    source = _write(tmp_path / "good.csv", HEADER + GOOD + "t3,east,,  7 ,\n")
    dataset = sqlite_zone.bank.add_dataset("customers", source, SPEC)
    assert (dataset.row_count, dataset.version) == (3, 1)
    table = sqlite_zone.bank._data.read("customers", 1)  # the stored bytes, decrypted
    assert table.column("visits").to_pylist() == [3, 1, 7]
    assert table.column("spend").to_pylist() == [12.5, 99.0, None]
    assert pa.types.is_int64(table.schema.field("visits").type)


@pytest.mark.parametrize(
    ("spec_change", "fragment"),
    [
        ({"class": "bogus_class"}, "known classes: identifier, join_key"),
        ({"class": "identifier"}, "direct identifiers never enter the zone"),
        ({"type": "text"}, "known types: string"),
    ],
    ids=["unknown_class", "identifier_class", "unknown_type"],
)
def test_bad_spec_is_refused_and_zone_unchanged(
    sqlite_zone: Parties, tmp_path: Path, spec_change: dict[str, str], fragment: str
) -> None:
    source = _write(tmp_path / "ok.csv", HEADER + GOOD)
    columns = [dict(c) for c in SPEC["columns"]]
    columns[0].update(spec_change)
    before = snapshot(sqlite_zone)
    with pytest.raises(InvalidInputError) as caught:
        sqlite_zone.bank.add_dataset("customers", source, {"columns": columns})
    assert fragment in caught.value.message
    assert "'token'" in caught.value.message  # names the column to change
    assert snapshot(sqlite_zone) == before
    assert sqlite_zone.operator.verify_audit().ok


def test_not_nullable_and_length_limits(sqlite_zone: Parties, tmp_path: Path) -> None:
    columns = [dict(c) for c in SPEC["columns"]]
    columns[0]["nullable"] = False
    before = snapshot(sqlite_zone)
    missing = _write(tmp_path / "missing.csv", HEADER + GOOD + ",east,1,2,2020-01-01\n")
    with pytest.raises(InvalidInputError) as caught:
        sqlite_zone.bank.add_dataset("customers", missing, {"columns": columns})
    assert "not nullable" in caught.value.message
    assert_refused_cleanly(sqlite_zone, before, caught.value, "missing.csv", line=4, column="token")
    long_text = _write(
        tmp_path / "long.csv", HEADER + "SECRET" + "y" * 40 + ",east,1,2,2020-01-01\n"
    )
    with pytest.raises(InvalidInputError) as caught:
        sqlite_zone.bank.add_dataset(
            "customers", long_text, {**SPEC, "limits": {"max_string_length": 16}}
        )
    assert "longer than 16" in caught.value.message
    assert_refused_cleanly(sqlite_zone, before, caught.value, "long.csv", line=2, column="token")


def test_unsupported_file_type_and_missing_file(sqlite_zone: Parties, tmp_path: Path) -> None:
    before = snapshot(sqlite_zone)
    xlsx = _write(tmp_path / "customers.xlsx", HEADER + GOOD)
    with pytest.raises(InvalidInputError, match=r"unsupported file type '\.xlsx'"):
        sqlite_zone.bank.add_dataset("customers", xlsx, SPEC)
    with pytest.raises(InvalidInputError, match="no such file"):
        sqlite_zone.bank.add_dataset("customers", tmp_path / "absent.csv", SPEC)
    assert snapshot(sqlite_zone) == before


def test_bad_new_version_keeps_the_old_version_readable(zone: Parties, tmp_path: Path) -> None:
    """Re-ingesting a broken file over an existing dataset changes nothing (SQLite and PG)."""
    good = _write(tmp_path / "v1.csv", HEADER + GOOD)
    zone.bank.add_dataset("customers", good, SPEC)
    original = zone.bank._data.read("customers", 1)
    before = snapshot(zone)
    bad = _write(tmp_path / "v2.csv", HEADER + GOOD + "t3,east,SECRET,2,2020-01-01\n")
    with pytest.raises(InvalidInputError) as caught:
        zone.bank.add_dataset("customers", bad, SPEC)
    assert_refused_cleanly(zone, before, caught.value, "v2.csv", line=4, column="spend")
    [dataset] = zone.bank.datasets()
    assert (dataset.version, dataset.row_count) == (1, 2)
    assert zone.bank._data.read("customers", 1).equals(original)
    # and a good new version still goes through afterwards, replacing the old file
    v2 = _write(tmp_path / "v2ok.csv", HEADER + GOOD + "t3,east,5,2,2020-01-01\n")
    assert zone.bank.add_dataset("customers", v2, SPEC).version == 2
    assert sorted(p.name for p in (zone.root / "data").iterdir()) == ["customers.v2.parquet.enc"]


def test_another_partys_dataset_cannot_be_overwritten(sqlite_zone: Parties, tmp_path: Path) -> None:
    good = _write(tmp_path / "v1.csv", HEADER + GOOD)
    sqlite_zone.bank.add_dataset("customers", good, SPEC)
    before_files = sorted(p.name for p in (sqlite_zone.root / "data").iterdir())
    with pytest.raises(NotAuthorisedError):
        sqlite_zone.partner.add_dataset("customers", good, SPEC)
    assert sorted(p.name for p in (sqlite_zone.root / "data").iterdir()) == before_files
    assert sqlite_zone.bank.datasets()[0].version == 1


# -- Parquet --------------------------------------------------------------------------


def _parquet(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def _good_columns() -> dict[str, pa.Array]:
    return {
        "token": pa.array(["t1", "t2", "t3"]),
        "region": pa.array(["north", "south", "east"]),
        "spend": pa.array([1.0, 2.0, 3.0]),
        "visits": pa.array([1, 2, 3]),
        "since": pa.array(["2020-01-01", "2020-01-02", "2020-01-03"]),
    }


PARQUET_CASES: list[
    tuple[str, Callable[[dict[str, pa.Array]], pa.Table], int | None, str | None, str]
] = [
    (
        "text_in_float",
        lambda c: pa.table({**c, "spend": pa.array(["1.0", "2.0", "SECRET"])}),
        3,
        "spend",
        "type float",
    ),
    (
        "fraction_in_integer",
        lambda c: pa.table({**c, "visits": pa.array([1.0, 2.5, 3.0])}),
        2,
        "visits",
        "type integer",
    ),
    (
        "nan",
        lambda c: pa.table({**c, "spend": pa.array([1.0, float("nan"), 3.0])}),
        2,
        "spend",
        "NaN",
    ),
    (
        "domain",
        lambda c: pa.table({**c, "region": pa.array(["north", "SECRETland", "east"])}),
        2,
        "region",
        "declared domain",
    ),
    (
        "duplicate_names",
        lambda c: pa.Table.from_arrays(
            [*c.values(), pa.array([9.0, 9.0, 9.0])], names=[*c.keys(), "spend"]
        ),
        None,
        None,
        "'spend' more than once",
    ),
    (
        "empty",
        lambda c: pa.table({k: v.slice(0, 0) for k, v in c.items()}),
        None,
        None,
        "no data rows",
    ),
]


@pytest.mark.parametrize(
    ("case", "build", "line", "column", "fragment"),
    PARQUET_CASES,
    ids=[c[0] for c in PARQUET_CASES],
)
def test_bad_parquet_is_refused_and_zone_unchanged(
    sqlite_zone: Parties,
    tmp_path: Path,
    case: str,
    build: Callable[[dict[str, pa.Array]], pa.Table],
    line: int | None,
    column: str | None,
    fragment: str,
) -> None:
    source = _parquet(tmp_path / f"{case}.parquet", build(_good_columns()))
    before = snapshot(sqlite_zone)
    with pytest.raises(InvalidInputError) as caught:
        sqlite_zone.bank.add_dataset("customers", source, SPEC)
    assert fragment in caught.value.message
    assert_refused_cleanly(sqlite_zone, before, caught.value, source.name, line=line, column=column)


def test_good_parquet_is_cast_to_the_declared_types(sqlite_zone: Parties, tmp_path: Path) -> None:
    source = _parquet(tmp_path / "good.parquet", pa.table(_good_columns()))
    assert sqlite_zone.bank.add_dataset("customers", source, SPEC).row_count == 3
    table = sqlite_zone.bank._data.read("customers", 1)
    assert pa.types.is_date32(table.schema.field("since").type)
    assert table.column("visits").to_pylist() == [1, 2, 3]


# -- random garbage ---------------------------------------------------------------------

STRICT_SPEC = {
    "columns": [
        {
            **c,
            "nullable": False,
            **({"domain": ["north", "south", "east"]} if c["name"] == "region" else {}),
        }
        for c in SPEC["columns"]
    ]
}
DOMAIN_WORDS = (b"north", b"south", b"east")


@pytest.mark.parametrize("with_header", [False, True], ids=["raw", "valid_header"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(garbage=st.binary(max_size=400).filter(lambda b: not any(w in b for w in DOMAIN_WORDS)))
def test_random_bytes_never_create_a_dataset(
    sqlite_zone: Parties, tmp_path: Path, suffix: str, with_header: bool, garbage: bytes
) -> None:
    """Whatever the bytes, the ingest refuses with InvalidInputError and stores nothing.

    Every column is non-nullable and a valid row needs a region from the domain, which the
    filter keeps out of the bytes: no garbage can be a valid file.
    """
    prefix = (b"PAR1" if suffix == ".parquet" else HEADER.encode()) if with_header else b""
    source = tmp_path / f"garbage{suffix}"
    source.write_bytes(prefix + garbage)
    bank: Zone = sqlite_zone.bank
    before = snapshot(sqlite_zone)
    with pytest.raises(InvalidInputError) as caught:
        bank.add_dataset("garbage", source, STRICT_SPEC)
    assert caught.value.message.startswith(source.name)
    assert snapshot(sqlite_zone) == before


@pytest.mark.parametrize(
    "content",
    [
        HEADER
        + 't1,north,1.0,2,2020-01-01\nt2,"north",1.0,2,2020-01-01\n'.replace('"north"', '"no\nrth"')
        + "t3,east,SECRET,2,2020-01-01\n",
        HEADER + GOOD + "\n" + "t3,east,5000.0,2,2020-01-01\n",  # a domain check
    ],
    ids=["quoted_newline", "blank_line"],
)
def test_line_numbers_count_physical_lines(
    sqlite_zone: Parties, tmp_path: Path, content: str
) -> None:
    """The bad row is on physical line 5 in both files; an editor jumps to that line."""
    source = _write(tmp_path / "lines.csv", content)
    with pytest.raises(InvalidInputError) as caught:
        sqlite_zone.bank.add_dataset("customers", source, SPEC)
    assert "line 5," in caught.value.message, caught.value.message
