"""What a warehouse's Arrow result becomes in the zone (Spark's path, no JVM needed): the
people lists shaped as on the row path, the engine's words withheld, the row cap kept, and
a Parquet view made again when its files change."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from collabzone.errors import InvalidInputError
from collabzone.remote_tables import _files_signature
from collabzone.techniques.sql._engines import RemoteEngine, _arrow, _members_sorted
from collabzone.techniques.sql._execute import RUNTIME_FAILURE

LISTS = [[5, -1, 5, 2**62], [], None, [-(2**63), 7]]
STAMP = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)


def test_arrow_people_lists_match_the_row_path() -> None:
    table = pa.table({
        "segment": ["a", "b", "c", "d"],
        "_cz_m0": pa.array(LISTS, type=pa.list_(pa.int64())),
    })  # fmt: skip
    rows = list(zip(table.column("segment").to_pylist(), LISTS, strict=True))
    got, expected = _members_sorted(table), _arrow(["segment", "_cz_m0"], rows)
    assert got.column("_cz_m0").type == pa.list_(pa.uint64())
    assert got.to_pylist() == expected.to_pylist()
    first = got.column("_cz_m0").to_pylist()[0]
    assert first == sorted(first) and 2**64 - 1 in first  # -1 as the unsigned hash


def test_arrow_timestamps_come_back_as_utc_wall_time() -> None:
    table = pa.table({"at": pa.array([STAMP], type=pa.timestamp("us", tz="UTC"))})
    assert _members_sorted(table).column("at").to_pylist() == [STAMP.replace(tzinfo=None)]


class _Warehouse:
    kind = "spark"
    relation = ("_cz_bank",)
    connection_id = "c"

    def __init__(self, result: pa.Table | Exception) -> None:
        self.result = result

    def query(self, sql: str, *, timeout_s: float) -> Any:
        raise AssertionError("the Arrow path must be used")

    def query_arrow(self, sql: str, *, timeout_s: float) -> pa.Table:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


TREE = sqlglot.parse_one("SELECT segment FROM bank")


def test_the_engines_words_never_reach_the_analyst() -> None:
    engine = RemoteEngine({"bank": _Warehouse(ValueError("cannot cast 'Alice Smith' to INT"))})
    with pytest.raises(InvalidInputError) as caught:
        engine.run(TREE, timeout_s=5, max_rows=None)
    assert str(caught.value) == RUNTIME_FAILURE and "Alice" not in str(caught.value)
    with pytest.raises(InvalidInputError, match="longer than 5 s"):
        RemoteEngine({"bank": _Warehouse(TimeoutError())}).run(TREE, timeout_s=5, max_rows=None)


def test_the_row_cap_holds_on_the_arrow_path() -> None:
    engine = RemoteEngine({"bank": _Warehouse(pa.table({"segment": ["a", "b", "c"]}))})
    assert engine.run(TREE, timeout_s=5, max_rows=3).num_rows == 3
    with pytest.raises(InvalidInputError, match="more than 2 rows"):
        engine.run(TREE, timeout_s=5, max_rows=2)


def test_a_changed_parquet_source_is_read_again(tmp_path: Path) -> None:
    one = tmp_path / "bank.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), one)
    before = _files_signature(str(one))
    assert before is not None and _files_signature(str(one)) == before
    pq.write_table(pa.table({"x": [1, 2, 3]}), one)
    os.utime(one, ns=(1, 1))  # (even with an old time: the size changed)
    assert _files_signature(str(one)) != before
    lake = tmp_path / "lake"
    lake.mkdir()
    pq.write_table(pa.table({"x": [1]}), lake / "part-0.parquet")
    listed = _files_signature(f"file://{lake}")
    pq.write_table(pa.table({"x": [1]}), lake / "part-1.parquet")  # a file added
    assert listed is not None and _files_signature(str(lake)) != listed
    assert _files_signature("s3a://lake/bank.parquet") is None  # made anew per request
    assert _files_signature(str(tmp_path / "missing.parquet")) is None
