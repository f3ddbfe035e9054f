"""Hierarchies: ARX files, builders, and the errors bad ones raise."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid import (
    Hierarchy,
    UnknownValueError,
    dates,
    encode,
    intervals,
    masking,
    read_arx_csv,
    tree,
)

from .conftest import ADULT


def test_reads_every_arx_adult_hierarchy() -> None:
    if not ADULT.exists():
        pytest.skip("shared data absent")
    h = read_arx_csv(ADULT / "adult_hierarchy_age.csv", "age")
    assert h.height == 4 and h.label("39", 1) == "35-39" and h.label("39", 4) == "*"
    assert h.numeric
    occupation = read_arx_csv(ADULT / "adult_hierarchy_occupation.csv")
    assert occupation.attribute == "occupation" and not occupation.numeric


def test_inconsistent_levels_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "h.csv"
    bad.write_text("a;x;*\nb;*\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="inconsistent levels: row 2"):
        read_arx_csv(bad, "col")


def test_a_label_with_two_parents_is_not_a_tree() -> None:
    with pytest.raises(InvalidInputError, match="not a tree: label 'x'"):
        Hierarchy.from_rows("c", [["a", "x", "p"], ["b", "x", "q"]])


def test_duplicate_leaf_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="lists the value 'a' twice"):
        Hierarchy.from_rows("c", [["a", "*"], ["a", "*"]])


def test_unknown_value_names_column_row_and_value() -> None:
    h = Hierarchy.from_rows("sex", [["m", "*"], ["f", "*"]])
    table = pa.table({"sex": ["m", "f", "x"]})
    with pytest.raises(UnknownValueError, match=r"value 'x' in column 'sex' \(row 3\)") as info:
        encode(table, ["sex"], {"sex": h})
    assert "'x'" not in info.value.redacted().message


def test_nan_in_a_quasi_identifier_names_column_and_row() -> None:
    table = pa.table({"age": [30.0, math.nan, 40.0]})
    h = intervals("age", [30, 40], [10])
    with pytest.raises(InvalidInputError, match=r"column 'age' has a missing value .* row 2"):
        encode(table, ["age"], {"age": h})


@given(st.lists(st.integers(0, 500), min_size=1, max_size=40))
def test_intervals_nest_and_contain_their_values(values: list[int]) -> None:
    h = intervals("x", values, [5, 10, 20])
    for v in values:
        for level, width in enumerate([5, 10, 20], start=1):
            lo, hi = (float(p) for p in h.label(str(v), level).split("-"))
            assert lo <= v < hi and hi - lo == width
        assert h.label(str(v), 4) == "*"


def test_interval_widths_must_nest() -> None:
    with pytest.raises(InvalidInputError, match="divide the next"):
        intervals("x", [1, 2], [5, 7])


def test_masking_dates_and_tree() -> None:
    m = masking("zip", ["81667", "8166"])
    assert m.label("81667", 2) == "816**" and m.label("8166", m.height) == "*"
    d = dates("day", ["2021-03-04", "1999-12-31"])
    assert [d.label("2021-03-04", i) for i in range(1, 5)] == ["2021-03", "2021", "202x", "*"]
    t = tree("country", {"Europe": {"West": ["FR", "DE"]}, "Asia": ["JP"]})
    assert t.label("FR", 1) == "West" and t.label("JP", 1) == "JP" and t.label("JP", 2) == "Asia"
    with pytest.raises(InvalidInputError, match="not an ISO date"):
        dates("day", ["03/04/2021"])


SMALL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "arx_small_examples"


def test_every_unknown_value_is_reported_with_its_rows() -> None:
    if not (SMALL / "test_dirty.csv").exists():
        pytest.skip(f"ARX's small example not found at {SMALL}")
    table = pacsv.read_csv(
        SMALL / "test_dirty.csv", parse_options=pacsv.ParseOptions(delimiter=";")
    )
    hs = {q: read_arx_csv(SMALL / f"test_hierarchy_{q}.csv", q) for q in ("age", "gender")}
    with pytest.raises(UnknownValueError) as info:
        encode(table, ["age", "gender"], hs)
    err = info.value
    assert err.total_values == 2 and err.total_rows == 2  # '4e' (row 2) and '7f' (row 6)
    assert [(p.value, p.rows) for p in err.problems] == [("4e", (2,)), ("7f", (6,))]
    assert "'4e' in column 'age' (row 2)" in err.message
    assert "'7f' in column 'age' (row 6)" in err.message
    redacted = err.redacted().message
    assert "4e" not in redacted and "7f" not in redacted and "row 2" in redacted


def test_unknown_values_beyond_twenty_are_counted_and_rows_listed() -> None:
    h = Hierarchy.from_rows("c", [["ok", "*"]])
    values = [f"v{i}" for i in range(30) for _ in range(i % 3 + 1)] + ["ok"]
    other = Hierarchy.from_rows("d", [["a", "*"]])
    table = pa.table({"c": values, "d": ["a"] * (len(values) - 1) + ["zz"]})
    with pytest.raises(UnknownValueError) as info:
        encode(table, ["c", "d"], {"c": h, "d": other})
    err = info.value
    assert err.total_values == 31  # 30 in c, 1 in d: every one counted
    assert err.total_rows == len(values) - 1 + 1
    assert len(err.problems) == 20  # the first 20 are named
    assert err.problems[0].value == "v0" and err.problems[0].rows == (1,)
    assert err.problems[2].rows == (4, 5, 6) and err.problems[2].count == 3
    assert "and 11 more values" in err.message
