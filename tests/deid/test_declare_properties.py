"""Property: whatever enrich / derive steps and declarations a job has, the released
columns are exactly the accounted ones and the reported k, l, t and risk are those an
attacker measures on them (pycanon, pandas)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid import deidentify, parse_config

from .independent import check_release

ZIPS = [f"{z}" for z in range(1000, 1012)]


@st.composite
def jobs(draw: st.DrawFn) -> tuple[pa.Table, dict[str, Any], dict[str, pa.Table]]:
    n = draw(st.integers(12, 70))
    row = st.tuples(
        st.integers(17, 90),
        st.sampled_from(ZIPS),
        st.sampled_from(["m", "f"]),
        st.sampled_from(["flu", "cold", "hiv", "none"]),
        st.dates(dt.date(1935, 1, 1), dt.date(2007, 12, 31)),
        st.integers(0, 1),
    )
    rows = draw(st.lists(row, min_size=n, max_size=n))
    table = pa.table(
        {
            "age": [r[0] for r in rows],
            "zip": [r[1] for r in rows],
            "sex": [r[2] for r in rows],
            "disease": [r[3] for r in rows],
            "born": [r[4] for r in rows],
            "label": [r[5] for r in rows],
        }
    )
    regions = draw(st.lists(st.sampled_from("NESW"), min_size=len(ZIPS), max_size=len(ZIPS)))
    reference = pa.table({"zip": ZIPS, "region": regions, "size": [i % 3 for i in range(12)]})
    enrich = []
    if draw(st.booleans()):
        enrich.append(
            {
                "column": "zip",
                "reference": "ref",
                "columns": draw(st.sampled_from([["region"], ["region", "size"], ["size"]])),
                "keep_key": draw(st.booleans()),
            }
        )
    derive: list[dict[str, Any]] = []
    if draw(st.booleans()):
        derive.append({"column": "birth_age", "kind": "age", "source": "born", "at": "2025-06-30"})
    else:
        derive.append(
            {"column": "birth_decade", "kind": "date_part", "source": "born", "part": "decade"}
        )
    if draw(st.booleans()):
        derive.append(
            {
                "column": "age_band",
                "kind": "band",
                "source": "age",
                "width": draw(st.sampled_from([5, 10, 20])),
                "keep_source": draw(st.booleans()),
            }
        )
    elif draw(st.booleans()):
        derive.append(
            {
                "column": "stage",
                "kind": "bins",
                "source": "age",
                "edges": [30, 60],
                "labels": ["young", "mid", "old"],
                "keep_source": draw(st.booleans()),
            }
        )
    consumed = {e["column"] for e in enrich if not e["keep_key"]} | {
        d["source"] for d in derive if not d.get("keep_source")
    }
    qis = {"sex": None}
    if "age" not in consumed and draw(st.booleans()):
        qis["age"] = {"intervals": [10, 20]}
    if "zip" not in consumed and draw(st.booleans()):
        qis["zip"] = {"masking": True}
    config = {
        "quasi_identifiers": qis,
        "sensitive": ["disease"],
        "keep": ["label"] if draw(st.booleans()) else [],
        "undeclared": "drop",
        "privacy": {
            "k": draw(st.integers(1, 4)),
            **({"l": 2} if draw(st.booleans()) else {}),
        },
        "suppression_limit": draw(st.sampled_from([0.0, 0.1, 0.5])),
        "metric": draw(st.sampled_from(["discernibility", "loss"])),
        "prepare": {"enrich": enrich, "derive": derive},
    }
    return table, config, {"ref": reference}


@settings(max_examples=60)
@given(jobs())
def test_reported_levels_are_those_of_the_released_columns(
    job: tuple[pa.Table, dict[str, Any], dict[str, pa.Table]],
) -> None:
    table, raw, references = job
    config = parse_config(raw)
    try:
        released, report = deidentify(table, config, references=references)
    except InvalidInputError as exc:
        assert "no transformation satisfies" in exc.message
        return
    frame = released.to_pandas()
    check_release(
        frame,
        report,
        sensitive=config.sensitive,
        keep=config.keep,
        privacy=config.privacy.model_dump(exclude_none=True),
        inputs={"disease": table.column("disease").to_pylist()},
    )
    added = report["columns"]["defaulted_to_quasi_identifier"]
    for step in config.prepare.enrich:
        assert (step.column in released.column_names) is step.keep_key
        assert set(step.outputs().values()) <= set(added)
    assert "born" not in released.column_names  # a derivation source is replaced
    # nothing undeclared leaves: what was not declared or added was dropped
    assert set(report["columns"]["dropped"]).isdisjoint(released.column_names)


def test_the_property_sees_undeclared_columns_as_an_attacker_would() -> None:
    # the check itself must catch a column leaked without a declaration
    table = pa.table({"a": [1, 1, 2, 2], "s": ["x", "y", "x", "y"], "id": [1, 2, 3, 4]})
    config = parse_config(
        {"quasi_identifiers": {"a": {"flat": True}}, "sensitive": ["s"], "privacy": {"k": 2}}
    )
    with pytest.raises(InvalidInputError, match="'id'"):
        deidentify(table, config)
    released, report = deidentify(table.drop_columns(["id"]), config)
    leaked = released.append_column("id", pa.array([1, 2, 3, 4])).to_pandas()
    with pytest.raises(AssertionError):
        check_release(leaked, report, sensitive=["s"], keep=[], privacy={"k": 2})
