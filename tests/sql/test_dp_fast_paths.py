"""Fast paths of the DP GROUP BY (issue 11, fifth pass): each gives what the general path
gives, so these tests pin the results, not the speed (speed lives in benchmarks/sql.py)."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from collabzone.techniques.sql._execute import configure
from collabzone.techniques.sql._frontend import QueryRejected, parse_select
from collabzone.techniques.sql._interval import Noisy
from collabzone.techniques.sql._postprocess import _values


def test_each_parse_is_the_callers_own_tree() -> None:
    sql = "SELECT grp, COUNT(*) AS n FROM events GROUP BY grp"
    first = parse_select(sql)
    first.set("where", parse_select("SELECT a FROM t WHERE a > 1").args["where"])
    second = parse_select(sql)
    assert second is not first
    assert second.args.get("where") is None  # one caller's change never reaches another
    assert second.sql() == "SELECT grp, COUNT(*) AS n FROM events GROUP BY grp"


def test_a_refused_text_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(QueryRejected, match="one statement"):
            parse_select("SELECT 1; SELECT 2")


def _memory_limit(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute("SELECT current_setting('memory_limit')").fetchall()
    return str(rows[0][0])


def test_resource_caps_reach_every_connection_once_set_per_connection() -> None:
    first, second = duckdb.connect(), duckdb.connect()
    before = _memory_limit(second)
    configure(first, memory_limit="1GB", threads=None)
    assert _memory_limit(second) == before  # one connection's cap is not another's
    configure(second, memory_limit="1GB", threads=None)
    assert _memory_limit(first) == _memory_limit(second) != before
    configure(first, memory_limit="2GB", threads=None)  # a new value is set again
    assert _memory_limit(first) != _memory_limit(second)


def test_released_values_are_json_numbers_on_the_fast_and_the_slow_path() -> None:
    whole = np.array([3.0, -2.0, 0.0])
    assert _values(Noisy(whole, whole, whole, integral=True)) == [3, -2, 0]
    assert all(type(v) is int for v in _values(Noisy(whole, whole, whole, integral=True)))
    assert _values(Noisy(whole / 2, whole, whole)) == [1.5, -1.0, 0.0]
    big = np.array([2.0**60, 1.0])  # beyond 2**53: the value-by-value path, still exact
    assert _values(Noisy(big, big, big, integral=True)) == [2**60, 1]
    holes = np.array([1.0, np.nan, np.inf])
    assert _values(Noisy(holes, holes, holes, integral=True)) == [1, None, None]
    assert _values(Noisy(np.array([]), np.array([]), np.array([]), integral=True)) == []
