"""The optimal search returns the exhaustive search's optimum, and its output holds."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.techniques.deid import (
    AverageRisk,
    DistinctLDiversity,
    EntropyLDiversity,
    KAnonymity,
    Lattice,
    RecursiveCLDiversity,
    TCloseness,
    encode,
    exhaustive,
    flash,
    greedy,
    intervals,
    masking,
    tree,
)
from collabzone.techniques.deid._metrics import AGGREGATES, METRICS, SINGLE_DIMENSIONAL

from .conftest import ADULT_QIS


def _same_optimum(make: object) -> None:
    lat_a, lat_b = make(), make()  # type: ignore[operator]
    fast, slow = flash(lat_a), exhaustive(lat_b)
    if slow.best is None:
        assert fast.best is None
        return
    assert fast.best is not None and fast.best.passes
    assert math.isclose(fast.best.score, slow.best.score, rel_tol=1e-9, abs_tol=1e-9)
    if slow.best.rank is not None:  # RANK: the sorted per-attribute values decide
        assert fast.best.rank == pytest.approx(slow.best.rank)
    assert fast.checked <= slow.checked


@pytest.mark.parametrize(
    ("qis", "rows", "models", "limit", "metric"),
    [
        (ADULT_QIS[:5], 3000, [KAnonymity(5)], 0.0, "discernibility"),
        (ADULT_QIS[:5], 3000, [KAnonymity(5)], 0.04, "discernibility"),
        (ADULT_QIS[:4], 2000, [KAnonymity(3), EntropyLDiversity("occupation", 3)], 0.0, "loss"),
        (
            ADULT_QIS[:4],
            2000,
            [KAnonymity(2), DistinctLDiversity("occupation", 3)],
            0.05,
            "non_uniform_entropy",
        ),
        (ADULT_QIS[:4], 2000, [TCloseness("occupation", 0.3)], 0.02, "precision"),
    ],
)
def test_flash_equals_exhaustive_on_adult_subsets(
    adult, adult_hierarchies, qis, rows, models, limit, metric
) -> None:  # type: ignore[no-untyped-def]
    sub = adult.slice(0, rows)
    sens = ["occupation"] if any(not isinstance(m, KAnonymity) for m in models) else []
    enc = encode(sub, qis, adult_hierarchies, sens)
    _same_optimum(lambda: Lattice(enc, models, limit, metric))


@st.composite
def small_problem(
    draw: st.DrawFn,
) -> tuple[pa.Table, dict[str, object], list[object], float, str, str | None]:
    n = draw(st.integers(4, 120))
    ages = draw(st.lists(st.integers(0, 39), min_size=n, max_size=n))
    cities = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=n, max_size=n))
    kinds = draw(st.lists(st.sampled_from(["x", "y"]), min_size=n, max_size=n))
    disease = draw(
        st.lists(st.sampled_from(["flu", "hiv", "cold", "none"]), min_size=n, max_size=n)
    )
    zips = draw(
        st.lists(st.sampled_from(["811", "812", "821", "822", "911"]), min_size=n, max_size=n)
    )
    table = pa.table({"age": ages, "city": cities, "kind": kinds, "zip": zips, "disease": disease})
    hs = {
        "age": intervals("age", ages, [5, 10, 20]),
        "city": tree("city", {"north": ["a", "b"], "south": ["c", "d"]}),
        "kind": tree("kind", ["x", "y"]),
        "zip": masking("zip", zips),
    }
    models: list[object] = [KAnonymity(draw(st.integers(1, 5)))]
    extra = draw(
        st.sampled_from(
            [
                "none",
                "distinct",
                "entropy",
                "grassberger",
                "recursive",
                "t_equal",
                "t_ordered",
                "risk",
            ]
        )
    )
    if extra == "distinct":
        models.append(DistinctLDiversity("disease", draw(st.integers(1, 3))))
    elif extra == "entropy":
        models.append(EntropyLDiversity("disease", draw(st.floats(1.0, 2.5))))
    elif extra == "grassberger":
        models.append(EntropyLDiversity("disease", draw(st.floats(1.0, 3.0)), "grassberger"))
    elif extra == "risk":
        models.append(AverageRisk(draw(st.floats(0.05, 0.6))))
    elif extra == "recursive":
        models.append(
            RecursiveCLDiversity("disease", draw(st.floats(0.5, 3.0)), draw(st.integers(1, 3)))
        )
    elif extra.startswith("t_"):
        models.append(TCloseness("disease", draw(st.floats(0.05, 0.6)), extra[2:]))  # type: ignore[arg-type]
    limit = draw(st.sampled_from([0.0, 0.1, 0.3]))
    metric = draw(st.sampled_from(list(METRICS)))
    aggregate = None if metric in SINGLE_DIMENSIONAL else draw(st.sampled_from([None, *AGGREGATES]))
    return table, hs, models, limit, metric, aggregate


@settings(max_examples=80, deadline=None)
@given(small_problem())
def test_flash_equals_exhaustive_on_random_tables(problem) -> None:  # type: ignore[no-untyped-def]
    table, hs, models, limit, metric, aggregate = problem
    enc = encode(table, ["age", "city", "kind", "zip"], hs, ["disease"])
    _same_optimum(lambda: Lattice(enc, models, limit, metric, aggregate))


@settings(max_examples=40, deadline=None)
@given(small_problem())
def test_the_chosen_node_satisfies_the_model_and_the_limit(problem) -> None:  # type: ignore[no-untyped-def]
    table, hs, models, limit, metric, aggregate = problem
    enc = encode(table, ["age", "city", "kind", "zip"], hs, ["disease"])
    lat = Lattice(enc, models, limit, metric, aggregate)
    for result in (flash(lat), greedy(Lattice(enc, models, limit, metric, aggregate))):
        if result.best is None:
            continue
        part = lat.partition(result.best.levels)
        kept_sizes = part.sizes[part.kept]
        k = models[0].k  # type: ignore[attr-defined]
        assert (kept_sizes >= k).all()
        assert part.sizes[~part.kept].sum() <= math.floor(limit * table.num_rows + 1e-9)


def test_no_solution_when_k_exceeds_the_table() -> None:
    table = pa.table({"age": [1, 2, 3]})
    enc = encode(table, ["age"], {"age": intervals("age", [1, 2, 3], [10])})
    assert flash(Lattice(enc, [KAnonymity(4)], 0.0)).best is None
    assert exhaustive(Lattice(enc, [KAnonymity(4)], 0.0)).best is None


def test_greedy_finds_a_valid_node_and_flash_is_never_worse(adult, adult_hierarchies) -> None:  # type: ignore[no-untyped-def]
    enc = encode(adult.slice(0, 5000), ADULT_QIS, adult_hierarchies)
    heuristic = greedy(Lattice(enc, [KAnonymity(5)], 0.0)).best
    optimum = flash(Lattice(enc, [KAnonymity(5)], 0.0)).best
    assert heuristic is not None and optimum is not None
    assert heuristic.passes and optimum.score <= heuristic.score
    assert np.all(
        np.array(heuristic.levels) <= np.array([h for h in Lattice(enc, [], 0.0).heights])
    )


def test_auto_uses_the_heuristic_above_the_size_limit(
    adult, adult_hierarchies, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from collabzone.techniques.deid import _search

    enc = encode(adult.slice(0, 2000), ADULT_QIS[:4], adult_hierarchies)
    assert _search.search(Lattice(enc, [KAnonymity(3)], 0.0)).algorithm == "flash"
    monkeypatch.setattr(_search, "MAX_OPTIMAL_NODES", 10)
    result = _search.search(Lattice(enc, [KAnonymity(3)], 0.0))
    assert result.algorithm == "greedy" and result.best is not None and result.best.passes
