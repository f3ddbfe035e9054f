"""Hierarchies: ARX files, builders, and the errors bad ones raise."""

from __future__ import annotations

import math

import pyarrow as pa
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
