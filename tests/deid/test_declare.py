"""Derived attributes and the column-declaration rules (pure core)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid import deidentify, intervals, parse_config
from collabzone.techniques.deid._config import BandDerive, DatePartDerive
from collabzone.techniques.deid._declare import input_columns
from collabzone.techniques.deid._derive import derive, derived_hierarchy


def _derive(table: pa.Table, **step: object) -> pa.Table:
    config = parse_config(
        {"quasi_identifiers": {"x": None}, "prepare": {"derive": [{"column": "out", **step}]}}
    )
    return derive(table, config.prepare.derive[0])


def test_age_on_a_date_counts_whole_years_around_the_birthday() -> None:
    births = ["2000-06-14", "2000-06-15", "2000-06-16", "2000-02-29", "1950-12-31T08:00:00"]
    for column in (pa.array(births), pa.array([dt.date.fromisoformat(b[:10]) for b in births])):
        out = _derive(pa.table({"born": column}), kind="age", source="born", at="2025-06-15")
        assert out.column_names == ["out"]  # the birth date is replaced
        assert out.column("out").to_pylist() == [25, 25, 24, 25, 74]


def test_age_errors_name_the_column_and_what_to_change() -> None:
    with pytest.raises(InvalidInputError, match=r"1 value.*'born'.*after at=2000-01-01"):
        _derive(pa.table({"born": ["2001-01-01"]}), kind="age", source="born", at="2000-01-01")
    with pytest.raises(InvalidInputError, match="'born' holds a value that is not an ISO date"):
        _derive(pa.table({"born": ["1 May 1990"]}), kind="age", source="born", at="2000-01-01")
    with pytest.raises(InvalidInputError, match="'born' has 1 missing"):
        _derive(
            pa.table({"born": ["1990-01-01", None]}), kind="age", source="born", at="2020-01-01"
        )
    with pytest.raises(InvalidInputError, match="'nope' is not in the table"):
        _derive(pa.table({"born": ["1990-01-01"]}), kind="age", source="nope", at="2020-01-01")


def test_date_parts_and_the_month_hierarchy() -> None:
    born = pa.table({"born": ["1987-03-02", "1991-11-30"]})
    assert _derive(born, kind="date_part", source="born", part="year")["out"].to_pylist() == [
        1987,
        1991,
    ]
    assert _derive(born, kind="date_part", source="born", part="decade")["out"].to_pylist() == [
        "198x",
        "199x",
    ]
    months = _derive(born, kind="date_part", source="born", part="month")["out"].to_pylist()
    assert months == ["1987-03", "1991-11"]
    spec = DatePartDerive(kind="date_part", column="out", source="born", part="month")
    h = derived_hierarchy(spec, months)
    assert h is not None and [h.label("1991-11", lv) for lv in range(4)] == [
        "1991-11",
        "1991",
        "199x",
        "*",
    ]


def test_bands_use_the_interval_hierarchys_labels_and_nest() -> None:
    values = [-7, -5, 0, 9, 10, 37, 1000]
    out = _derive(pa.table({"v": values}), kind="band", source="v", width=5)
    reference = intervals("v", values, [5])
    assert out["out"].to_pylist() == [reference.label(str(v), 1) for v in values]
    spec = BandDerive(kind="band", column="out", source="v", width=5)
    h = derived_hierarchy(spec, out["out"].to_pylist())
    assert h is not None
    assert [h.label("-10--5", lv) for lv in range(4)] == ["-10--5", "-10-0", "-20-0", "*"]


def test_bins_are_closed_on_the_left() -> None:
    out = _derive(
        pa.table({"age": [17, 18, 64.9, 65, 90]}),
        kind="bins",
        source="age",
        edges=[18, 65],
        labels=["minor", "adult", "senior"],
    )
    assert out["out"].to_pylist() == ["minor", "adult", "adult", "senior", "senior"]


def test_derive_keeps_or_replaces_the_source_and_refuses_a_clash() -> None:
    table = pa.table({"age": [31, 47], "band": ["a", "b"]})
    kept = _derive(table, kind="band", source="age", width=10, keep_source=True)
    assert kept.column_names == ["age", "band", "out"]
    config = parse_config(
        {
            "quasi_identifiers": {"age": None},
            "prepare": {
                "derive": [{"column": "age", "kind": "band", "source": "age", "width": 10}]
            },
        }
    )
    in_place = derive(table, config.prepare.derive[0])
    assert in_place.column_names == ["age", "band"] and in_place["age"][0].as_py() == "30-40"
    with pytest.raises(InvalidInputError, match="already has a column 'band'"):
        derive(
            table,
            parse_config(
                {
                    "quasi_identifiers": {"x": None},
                    "prepare": {
                        "derive": [{"column": "band", "kind": "band", "source": "age", "width": 1}]
                    },
                }
            ).prepare.derive[0],
        )


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"kind": "bins", "edges": [1, 2], "labels": ["a", "b"]}, "one label more than edges"),
        ({"kind": "bins", "edges": [2, 1], "labels": ["a", "b", "c"]}, "strictly increasing"),
        ({"kind": "band", "width": 0}, "greater than 0"),
        ({"kind": "band", "width": 5, "keep_source": True, "column": "s"}, "column equals source"),
        ({"kind": "shoe_size"}, "'age', 'date_part', 'band', 'bins'"),
        ({"kind": "age", "at": "2020-01-01", "on": 1}, "unknown key 'on'"),
    ],
)
def test_bad_derive_steps_are_named(step: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_config(
            {
                "quasi_identifiers": {"x": None},
                "prepare": {"derive": [{"column": "out", "source": "s", **step}]},
            }
        )


def test_a_column_has_one_class() -> None:
    with pytest.raises(InvalidInputError, match="'age' is declared in both quasi_identifiers and"):
        parse_config({"quasi_identifiers": {"age": None}, "sensitive": ["age"]})


TABLE = pa.table(
    {
        "age": [21, 23, 25, 27, 41, 43, 45, 47],
        "zip": ["100", "101", "100", "101", "200", "201", "200", "201"],
        "disease": ["a", "b", "a", "b", "a", "b", "a", "b"],
        "label": [0, 1, 0, 1, 1, 0, 1, 0],
    }
)
REGIONS = pa.table({"zip": ["100", "101", "200", "201"], "region": ["N", "N", "S", "S"]})


def _run(**config: object) -> tuple[pa.Table, dict[str, object]]:
    base: dict[str, object] = {"sensitive": ["disease"], "privacy": {"k": 2}}
    return deidentify(TABLE, parse_config({**base, **config}), references={"regions": REGIONS})


def test_keep_is_released_unchanged_and_the_report_lists_every_column() -> None:
    out, report = _run(quasi_identifiers={"age": None, "zip": None}, keep=["label"])
    assert sorted(out["label"].to_pylist()) == sorted(TABLE["label"].to_pylist())
    assert report["columns"] == {
        "quasi_identifiers": ["age", "zip"],
        "sensitive": ["disease"],
        "keep": ["label"],
        "defaulted_to_quasi_identifier": {},
        "dropped": [],
    }


def test_undeclared_drop_releases_only_declared_columns() -> None:
    out, report = _run(quasi_identifiers={"age": None}, undeclared="drop")
    assert set(out.column_names) == {"age", "disease"}
    assert report["columns"]["dropped"] == ["zip", "label"]  # type: ignore[index]


def test_a_declared_column_a_step_replaced_says_which_step() -> None:
    enrich = {"column": "zip", "reference": "regions", "columns": ["region"]}
    with pytest.raises(InvalidInputError, match="'zip' was replaced by enrich from regions"):
        _run(quasi_identifiers={"zip": None}, keep=["label"], prepare={"enrich": [enrich]})


def test_added_columns_default_to_quasi_identifiers_kept_sources_too() -> None:
    steps = {
        "enrich": [{"column": "zip", "reference": "regions", "columns": {"region": "area"}}],
        "derive": [
            {"column": "band", "kind": "band", "source": "age", "width": 20, "keep_source": True}
        ],
    }
    out, report = _run(quasi_identifiers={}, keep=["label"], prepare=steps)
    columns = report["columns"]
    assert set(columns["defaulted_to_quasi_identifier"]) == {"area", "band", "age"}  # type: ignore[index]
    assert set(out.column_names) == {"area", "band", "age", "disease", "label"}
    assert set(report["transformation"]) == {"area", "band", "age"}  # type: ignore[arg-type]


def test_enrich_refuses_to_overwrite_a_column() -> None:
    ref = pa.table({"zip": ["100", "101", "200", "201"], "label": ["x"] * 4})
    config = parse_config(
        {
            "quasi_identifiers": {"age": None},
            "prepare": {"enrich": [{"column": "zip", "reference": "r", "columns": ["label"]}]},
        }
    )
    with pytest.raises(InvalidInputError, match=r"already has column\(s\) \['label'\].*mapping"):
        deidentify(TABLE, config, references={"r": ref})


def test_no_quasi_identifier_left_is_an_error() -> None:
    steps = {"derive": [{"column": "band", "kind": "band", "source": "age", "width": 20}]}
    with pytest.raises(InvalidInputError, match="no quasi-identifier"):
        _run(quasi_identifiers={}, sensitive=["disease", "band"], undeclared="drop", prepare=steps)


def test_input_columns_follow_the_steps() -> None:
    config = parse_config(
        {
            "quasi_identifiers": {"age": None, "size": None},
            "sensitive": ["disease"],
            "keep": ["label"],
            "prepare": {
                "enrich": [{"column": "company", "reference": "r", "columns": ["size", "born"]}],
                "derive": [
                    {"column": "age", "kind": "age", "source": "born", "at": "2024-01-01"},
                    {"column": "band", "kind": "band", "source": "income", "width": 1000},
                ],
                "noise": {"spend": {"epsilon": 1, "lower": 0, "upper": 10}},
            },
        }
    )
    # born comes from the reference; age from born: neither is read from the input
    assert input_columns(config) == ["company", "income", "spend", "disease", "label"]
