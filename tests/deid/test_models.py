"""Privacy models on hand-built classes, including the attacks they exist to stop."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid import (
    DistinctLDiversity,
    EntropyLDiversity,
    Hierarchy,
    KAnonymity,
    RecursiveCLDiversity,
    TCloseness,
    deidentify,
    parse_config,
)
from collabzone.techniques.deid._models import ClassStats


def _stats(hist: list[list[int]], values: tuple[str, ...] = ()) -> ClassStats:
    h = np.array(hist, dtype=float)
    overall = h.sum(axis=0) / h.sum()
    vals = values or tuple(f"v{i}" for i in range(h.shape[1]))
    return ClassStats(h.sum(axis=1).astype(int), {"s": h}, {"s": overall}, {"s": vals})


def test_homogeneity_attack_is_reported_l1_and_refused() -> None:
    # Two 4-anonymous classes; in the first everyone has the same diagnosis.
    table = pa.table(
        {
            "zip": ["130", "130", "130", "130", "148", "148", "148", "148"],
            "disease": ["hiv", "hiv", "hiv", "hiv", "flu", "cold", "hiv", "flu"],
        }
    )
    k_only = parse_config(
        {
            "quasi_identifiers": {"zip": {"flat": True}},
            "sensitive": ["disease"],
            "privacy": {"k": 4},
        }
    )
    released, report = deidentify(table, k_only)
    assert report["min_class_size"] == 4 and report["transformation"]["zip"] == 0
    assert report["privacy"]["l_distinct"]["disease"] == 1
    assert report["privacy"]["l_entropy"]["disease"] == pytest.approx(1.0)
    with_l = parse_config(
        {
            "quasi_identifiers": {"zip": {"flat": True}},
            "sensitive": ["disease"],
            "privacy": {"k": 4, "l": 2},
        }
    )
    released, report = deidentify(table, with_l)
    assert report["transformation"]["zip"] == 1  # the homogeneous class had to be merged away
    assert set(released.column("zip").to_pylist()) == {"*"}
    assert report["privacy"]["l_distinct"]["disease"] >= 2


def test_distinct_entropy_and_recursive_measures() -> None:
    stats = _stats([[4, 0, 0], [2, 1, 1], [1, 1, 1]])
    assert DistinctLDiversity("s", 2).passes(stats).tolist() == [False, True, True]
    ent = EntropyLDiversity("s", 2.5).measure(stats)
    assert ent[0] == pytest.approx(1.0) and ent[2] == pytest.approx(3.0)
    assert ent[1] == pytest.approx(2 * np.sqrt(2))  # exp(1.5 ln 2)
    assert EntropyLDiversity("s", 2.5).passes(stats).tolist() == [False, True, True]
    assert EntropyLDiversity("s", 2.9).passes(stats).tolist() == [False, False, True]
    # r1 < c (r2 + r3): class 2 has 2 < c * 2
    assert RecursiveCLDiversity("s", 1.5, 2).passes(stats).tolist() == [False, True, True]
    assert RecursiveCLDiversity("s", 1.0, 2).passes(stats).tolist() == [False, False, True]
    assert KAnonymity(4).passes(stats).tolist() == [True, True, False]


def test_t_closeness_distances_match_their_definitions() -> None:
    stats = _stats([[2, 0, 0], [0, 1, 1]])  # overall = (1/2, 1/4, 1/4)
    equal = TCloseness("s", 1.0, "equal").measure(stats)
    assert equal.tolist() == pytest.approx([0.5, 0.5])
    ordered = TCloseness("s", 1.0, "ordered").measure(stats)
    # class 1: q - p = (1/2, -1/4, -1/4); cumulative 1/2, 1/4, 0 -> (3/4) / 2
    assert ordered[0] == pytest.approx(0.375)
    h = Hierarchy.from_rows("s", [["v0", "A", "*"], ["v1", "A", "*"], ["v2", "B", "*"]])
    hier = TCloseness("s", 1.0, "hierarchical", h).measure(stats)
    # class 1: extra (1/2, -1/4, -1/4): inside A move 1/4 at cost 1/2, at the root 1/4 at cost 1
    assert hier[0] == pytest.approx(0.25 * 0.5 + 0.25 * 1.0)
    assert TCloseness("s", 0.3, "equal").passes(stats).tolist() == [False, False]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="k must be"):
        KAnonymity(0)
    with pytest.raises(InvalidInputError, match="t must be between"):
        TCloseness("s", 1.5)
    with pytest.raises(InvalidInputError, match="needs a hierarchy"):
        TCloseness("s", 0.2, "hierarchical")


def test_hierarchical_t_closeness_end_to_end(adult) -> None:  # type: ignore[no-untyped-def]
    from .conftest import ADULT

    sub = adult.slice(0, 3000).select(["sex", "age", "race", "education", "occupation"])
    qis = ["sex", "age", "race", "education"]
    config = parse_config(
        {
            "quasi_identifiers": {
                q: {"file": str(ADULT / f"adult_hierarchy_{q}.csv")} for q in qis
            },
            "sensitive": ["occupation"],
            "sensitive_hierarchies": {
                "occupation": {"file": str(ADULT / "adult_hierarchy_occupation.csv")}
            },
            "privacy": {"t": 0.15, "t_distance": "hierarchical"},
        }
    )
    _, report = deidentify(sub, config)
    achieved = report["privacy"]
    assert achieved["t_hierarchical"]["occupation"] <= 0.15 + 1e-9
    # ground distances are at most 1, so the hierarchical EMD never exceeds the equal one
    assert achieved["t_hierarchical"]["occupation"] <= achieved["t_equal"]["occupation"] + 1e-9
    k_only = parse_config({**config.model_dump(), "privacy": {"k": 1}})
    _, raw = deidentify(sub, k_only)
    assert raw["privacy"]["t_hierarchical"]["occupation"] > 0.15  # the model did change something
