"""The mediator: the released table must not reveal which provider a record came from."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid import mediate, parse_config

from .conftest import ADULT, ADULT_QIS

QIS = ADULT_QIS[:5]


def _config() -> object:
    return parse_config(
        {
            "quasi_identifiers": {
                q: {"file": str(ADULT / f"adult_hierarchy_{q}.csv")} for q in QIS
            },
            "sensitive": ["occupation"],
            "privacy": {"k": 10, "l": 3},
            "suppression_limit": 0.02,
        }
    )


def test_no_column_or_row_order_reveals_the_provider(adult) -> None:  # type: ignore[no-untyped-def]
    a = adult.slice(0, 1500).append_column("provider", pa.array(["A"] * 1500))
    b = adult.slice(1500, 1500).append_column("provider", pa.array(["B"] * 1500))
    config = _config()
    out1, rep1 = mediate([a, b], config, np.random.default_rng(1))  # type: ignore[arg-type]
    out2, rep2 = mediate([b, a], config, np.random.default_rng(99))  # type: ignore[arg-type]
    assert "provider" not in out1.column_names
    assert set(out1.column_names) == {*QIS, "occupation"}
    # the same content in any submission order and any shuffle gives the same release,
    # so neither the row order nor the values depend on who sent what
    assert out1.equals(out2)
    assert rep1["transformation"] == rep2["transformation"]
    assert "provider" not in str(rep1) and "extracts" in rep1
    assert rep1["min_class_size"] >= 10 and rep1["privacy"]["l_distinct"]["occupation"] >= 3


def test_a_provider_that_generalised_more_does_not_stand_out(adult, adult_hierarchies) -> None:  # type: ignore[no-untyped-def]
    config = _config()
    raw = adult.slice(0, 1500)
    # provider B already generalised age to 10-year bands (level 2) at home
    b_raw = adult.slice(1500, 1500)
    h = adult_hierarchies["age"]
    bands = [h.label(str(v), 2) for v in b_raw.column("age").to_pylist()]
    b = b_raw.set_column(b_raw.column_names.index("age"), "age", pa.array(bands))
    out, report = mediate([raw, b], config, np.random.default_rng(0))  # type: ignore[arg-type]
    assert report["transformation"]["age"] >= 2  # lifted to B's granularity or above
    age_labels = set(out.column("age").to_pylist())
    level = report["transformation"]["age"]
    allowed = {row[level] for row in adult_hierarchies["age"].rows}
    assert age_labels <= allowed


def test_mixed_column_types_are_unified() -> None:
    a = pa.table({"age": [30, 31, 32, 33], "s": ["x", "y", "x", "y"]})
    b = pa.table({"age": [34.0, 35.0, 36.0, 37.0], "s": ["x", "y", "y", "x"]})
    cfg = parse_config(
        {"quasi_identifiers": {"age": {"intervals": [10]}}, "sensitive": ["s"], "privacy": {"k": 2}}
    )
    out, _ = mediate([a, b], cfg, np.random.default_rng(0))
    assert out.num_rows == 8 and out.schema.field("s").type == pa.string()


def test_mediate_needs_two_extracts_with_the_columns() -> None:
    cfg = parse_config({"quasi_identifiers": {"age": None}, "privacy": {"k": 1}})
    with pytest.raises(InvalidInputError, match="at least two"):
        mediate([pa.table({"age": [1]})], cfg, np.random.default_rng(0))
    with pytest.raises(InvalidInputError, match="not in every extract"):
        mediate([pa.table({"age": [1]}), pa.table({"x": [1]})], cfg, np.random.default_rng(0))
