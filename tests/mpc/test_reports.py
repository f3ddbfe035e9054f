"""Reports computed in MPyC (one in-process party) match numpy on UCI Adult; refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collabzone.errors import InvalidInputError, PolicyRefusal
from collabzone.techniques.mpc import ReportSpec, ShareStore, open_report, run_report, split_upload
from collabzone.techniques.mpc._shares import runtime

from .conftest import BOUNDS, adult_columns, make_stores


@pytest.fixture
def single(tmp_path: Path, master_key: str) -> tuple[ShareStore, dict[str, np.ndarray]]:
    stores, data = make_stores(tmp_path, master_key, servers=1, threshold=0, rows=500)
    return stores[0], data


def _open(store: ShareStore, spec: ReportSpec) -> dict[str, Any]:
    return open_report([run_report(runtime(), store, spec)], spec.recipient)["result"]  # type: ignore[no-any-return]


def test_reports_match_numpy_on_adult(single: tuple[ShareStore, dict[str, np.ndarray]]) -> None:
    store, data = single
    age, hours = data["age"], data["hours"]
    assert _open(store, ReportSpec("count", ("adult",), (), "ministry")) == {"count": 500.0}
    total = _open(store, ReportSpec("sum", ("adult",), ("age",), "ministry"))
    assert total["age"] == pytest.approx(age.sum(), abs=1e-3)
    means = _open(store, ReportSpec("mean", ("adult",), ("age", "hours"), "ministry"))
    assert means == pytest.approx({"age": age.mean(), "hours": hours.mean()}, abs=1e-6)
    var = _open(store, ReportSpec("variance", ("adult",), ("age",), "ministry"))
    assert var["age"] == pytest.approx(age.var(ddof=1), rel=1e-5)
    fit = _open(store, ReportSpec("regression", ("adult",), ("education_num", "hours"), "ministry"))
    slope, intercept = np.polyfit(data["education_num"], hours, 1)
    assert fit["slope"] == pytest.approx(slope, rel=1e-4)
    assert fit["intercept"] == pytest.approx(intercept, rel=1e-4)


def test_multivariate_regression_matches_least_squares_on_adult(
    single: tuple[ShareStore, dict[str, np.ndarray]],
) -> None:
    store, data = single
    spec = ReportSpec("regression", ("adult",), ("age", "education_num", "hours"), "ministry")
    fit = _open(store, spec)
    design = np.column_stack([np.ones(500), data["age"], data["education_num"]])
    intercept, b_age, b_edu = np.linalg.lstsq(design, data["hours"], rcond=None)[0]
    assert fit["x"] == ["age", "education_num"] and fit["y"] == "hours"
    assert fit["coefficients"]["age"] == pytest.approx(b_age, abs=1e-3)
    assert fit["coefficients"]["education_num"] == pytest.approx(b_edu, abs=1e-3)
    assert fit["intercept"] == pytest.approx(intercept, abs=1e-2)


def test_report_over_two_providers_is_the_union(tmp_path: Path, master_key: str) -> None:
    data = adult_columns(300)
    store = ShareStore(tmp_path / "s", master_key)
    for name, part in (("a", slice(0, 120)), ("b", slice(120, 300))):
        (package,) = split_upload(
            name,
            f"prov-{name}",
            {"age": data["age"][part]},
            {"age": BOUNDS["age"]},
            reports=["mean"],
            recipients=["ministry"],
            min_group_size=100,
            servers=1,
            threshold=0,
        )
        store.put(package)
    result = _open(store, ReportSpec("mean", ("a", "b"), ("age",), "ministry"))
    assert result["age"] == pytest.approx(data["age"].mean(), abs=1e-6)


def test_group_below_minimum_is_refused_before_any_computation(
    tmp_path: Path, master_key: str
) -> None:
    stores, _ = make_stores(
        tmp_path, master_key, servers=1, threshold=0, rows=50, min_group_size=100
    )
    with pytest.raises(PolicyRefusal) as caught:
        run_report(runtime(), stores[0], ReportSpec("mean", ("adult",), ("age",), "ministry"))
    assert [r.code for r in caught.value.reasons] == ["GROUP_TOO_SMALL"]


def test_report_the_provider_did_not_accept_or_another_recipient_is_refused(
    tmp_path: Path, master_key: str
) -> None:
    store = ShareStore(tmp_path / "s", master_key)
    (package,) = split_upload(
        "d",
        "hospital",
        {"age": adult_columns(200)["age"]},
        {"age": (0.0, 100.0)},
        reports=["mean"],
        recipients=["ministry"],
        min_group_size=10,
        servers=1,
        threshold=0,
    )
    store.put(package)
    with pytest.raises(PolicyRefusal) as caught:
        run_report(runtime(), store, ReportSpec("variance", ("d",), ("age",), "insurer"))
    assert {r.code for r in caught.value.reasons} == {
        "REPORT_NOT_ACCEPTED",
        "RECIPIENT_NOT_GRANTED",
    }


def test_bad_specs_say_what_to_change() -> None:
    with pytest.raises(InvalidInputError, match="unknown report"):
        ReportSpec("median", ("d",), ("age",), "r")
    with pytest.raises(InvalidInputError, match="DP noise"):
        ReportSpec("correlation", ("d",), ("a", "b"), "r", epsilon=1.0)
    with pytest.raises(InvalidInputError, match="recipient"):
        ReportSpec("mean", ("d",), ("age",), "")
    with pytest.raises(InvalidInputError, match="unknown report keys"):
        ReportSpec.from_json(
            {"report": "mean", "datasets": ["d"], "columns": ["a"], "recipient": "r", "sql": "x"}
        )


def test_dp_noise_is_added_inside_mpc_and_centred(
    single: tuple[ShareStore, dict[str, np.ndarray]],
) -> None:
    """Binomial noise: mean 0, variance N/4 (N secret coins); 6-sigma bounds (FP < 1e-6)."""
    from collabzone.techniques.mpc._reports import binomial_coins

    store, _ = single
    spec = ReportSpec("count", ("adult",), (), "ministry", epsilon=2.0, delta=1e-5)
    draws = np.array([_open(store, spec)["count"] - 500 for _ in range(60)])
    coins = binomial_coins(2.0, 1e-5)
    sd = np.sqrt(coins / 4)
    assert np.all(draws == np.round(draws * 2) / 2)  # half-integers: sums of coins minus N/2
    assert abs(draws.mean()) < 6 * sd / np.sqrt(len(draws))
    assert 0.3 * sd**2 < draws.var(ddof=1) < 2.5 * sd**2


def test_lp_report_matches_scipy(tmp_path: Path, master_key: str) -> None:
    """MPyC's secure simplex over secret constraints finds scipy's optimum."""
    from scipy.optimize import linprog  # type: ignore[import-untyped]

    rng = np.random.default_rng(11)
    a1, a2, b = rng.uniform(1, 10, 12), rng.uniform(1, 10, 12), rng.uniform(20, 50, 12)
    store = ShareStore(tmp_path / "s", master_key)
    (package,) = split_upload(
        "plants",
        "coop",
        {"a1": a1, "a2": a2, "b": b},
        {"a1": (0.0, 10.0), "a2": (0.0, 10.0), "b": (0.0, 50.0)},
        reports=["lp"],
        recipients=["ministry"],
        min_group_size=5,
        servers=1,
        threshold=0,
    )
    store.put(package)
    spec = ReportSpec("lp", ("plants",), ("a1", "a2"), "ministry", objective=(3.0, 2.0), bound="b")
    result = _open(store, spec)
    exact = linprog([-3, -2], A_ub=np.c_[a1, a2], b_ub=b)
    assert result["maximum"] == pytest.approx(-exact.fun, rel=1e-5)
    assert list(result["x"].values()) == pytest.approx(list(exact.x), abs=1e-4)
