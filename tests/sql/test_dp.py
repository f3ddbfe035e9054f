"""Differential privacy: noise distribution, budgets, bounding over joins, partitions, cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from collabzone.errors import InvalidInputError, PolicyRefusal
from collabzone.techniques.sql._dp import Budget, Measure, release
from tests.sql.sql_support import DP_RULES, FakeZone, make_fake_zone

FALSE_POSITIVE_RATE = 1e-6


def _chi_square_matches(samples: np.ndarray, pmf: dict[int, float]) -> bool:
    """Chi-square goodness of fit with a fixed critical value (false positives <= 1e-6)."""
    keys = sorted(pmf)
    observed = np.array([np.sum(samples == k) for k in keys] + [np.sum(~np.isin(samples, keys))])
    probs = np.array([pmf[k] for k in keys] + [1 - sum(pmf.values())])
    expected = probs * len(samples)
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    critical = float(stats.chi2.ppf(1 - FALSE_POSITIVE_RATE, df=len(keys)))
    return statistic < critical


@pytest.mark.parametrize("epsilon", [0.5, 1.0])
def test_discrete_laplace_noise_matches_claimed_scale(epsilon: float) -> None:
    n = 20_000
    keys = [(i,) for i in range(n)]
    out = release(keys, {"c": [0] * n}, [Measure("c", 1)], budget=Budget(epsilon=epsilon),
                  max_groups=1, public_keys=keys)  # fmt: skip
    scale = out.scales["c"]
    assert scale == pytest.approx(1 / epsilon, rel=1e-6)
    p = math.exp(-1 / scale)
    pmf = {k: (1 - p) / (1 + p) * p ** abs(k) for k in range(-6, 7)}
    samples = np.array(out.values["c"])
    assert _chi_square_matches(samples, pmf)
    wrong = {k: (1 - p**0.5) / (1 + p**0.5) * p ** (abs(k) / 2) for k in range(-6, 7)}
    assert not _chi_square_matches(samples, wrong)  # a noise twice as wide would be caught


def test_discrete_gaussian_noise_matches_claimed_scale() -> None:
    n = 20_000
    keys = [(i,) for i in range(n)]
    out = release(keys, {"c": [0] * n}, [Measure("c", 1)], budget=Budget(rho=0.5),
                  max_groups=1, public_keys=keys)  # fmt: skip
    sigma = out.scales["c"]
    assert sigma == pytest.approx(1.0, rel=1e-6)  # rho = 1 / (2 sigma^2)
    weights = {k: math.exp(-(k**2) / (2 * sigma**2)) for k in range(-40, 41)}
    norm = sum(weights.values())
    pmf = {k: w / norm for k, w in weights.items() if -5 <= k <= 5}
    assert _chi_square_matches(np.array(out.values["c"]), pmf)


@pytest.mark.parametrize("bad", [-1, 0, float("nan"), float("inf"), "1", True])
def test_bad_epsilon_rejected_without_ledger_row(dp_zone: FakeZone, bad: object) -> None:
    with pytest.raises(InvalidInputError):
        dp_zone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank", "epsilon": bad})
    assert dp_zone.ledger == []
    with pytest.raises(InvalidInputError):
        dp_zone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank", "rho": bad})
    assert dp_zone.ledger == []


def test_dp_query_spends_and_reports(dp_zone: FakeZone) -> None:
    sql = "SELECT segment, COUNT(*) AS n, AVG(balance) AS avg_b FROM bank GROUP BY segment"
    payload, outcome = dp_zone.submit_outcome("analyst", {"sql": sql, "epsilon": 1.0})
    assert outcome.spent["bank"].epsilon == 1.0
    assert outcome.spent["bank"].delta == 0.0  # public domain: no partition selection
    assert dp_zone.ledger == [("analyst", "bank", outcome.spent["bank"])]
    assert payload["partition_selection"] == "public domain"
    # the rare public category ('new': one person) is not censored
    assert {row[0] for row in payload["rows"]} == {"gold", "silver", "bronze", "new"}
    assert len(payload["confidence_intervals"]["n"]) == 4
    for row, (low, high) in zip(payload["rows"], payload["confidence_intervals"]["n"], strict=True):
        assert low <= row[1] <= high
    assert payload["noise_scale"]["n"] == pytest.approx(3.0)  # a third of epsilon per measure


def test_private_partition_selection_spends_delta() -> None:
    zone = make_fake_zone({**DP_RULES, "dp_delta": 1e-6}, DP_RULES)
    payload, outcome = zone.submit_outcome(
        "analyst", {"sql": "SELECT age, COUNT(*) FROM bank GROUP BY age", "epsilon": 1.0}
    )
    assert payload["partition_selection"].startswith("private")
    assert outcome.spent["bank"].delta == 1e-6
    threshold = int(payload["partition_selection"].split()[-1].rstrip(")"))
    assert all(row[1] >= threshold for row in payload["rows"])


def test_repeated_dp_query_returns_cached_noise(dp_zone: FakeZone) -> None:
    sql = "SELECT region, COUNT(*) FROM bank WHERE age > 40 GROUP BY region"
    first, outcome1 = dp_zone.submit_outcome("analyst", {"sql": sql, "epsilon": 1.0})
    rewrite = "SELECT COUNT(*) AS c, region FROM bank WHERE NOT 40 >= age GROUP BY region"
    again, spent2 = dp_zone.submit_outcome("analyst", {"sql": rewrite, "epsilon": 1.0})
    assert outcome1.spent["bank"].epsilon == 1.0
    assert spent2.spent == {}
    by_region_first = {r[0]: r[1] for r in first["rows"]}
    by_region_again = {r[1]: r[0] for r in again["rows"]}
    assert by_region_first == by_region_again
    assert len(dp_zone.ledger) == 1


def test_budget_cap_per_query(dp_zone: FakeZone) -> None:
    with pytest.raises(PolicyRefusal) as info:
        dp_zone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank", "epsilon": 50.0})
    assert {r.code for r in info.value.reasons} == {"EPSILON_TOO_HIGH"}
    assert dp_zone.ledger == []


@pytest.mark.parametrize("extra", [{"epsilon": 1.0}, {}])
def test_sum_needs_bounds(extra: dict[str, float]) -> None:
    rules = {**DP_RULES, "analysis": ["dp", "aggregation"]}
    zone = make_fake_zone(rules, rules)
    unbounded = [c if c.name != "spend" else c.model_copy(update={"domain": None})
                 for c in zone.datasets["shop"].columns]  # fmt: skip
    zone.datasets["shop"] = zone.datasets["shop"].model_copy(update={"columns": tuple(unbounded)})
    sql = "SELECT SUM(s.spend) FROM bank b JOIN shop s ON b.pid = s.pid"
    with pytest.raises(PolicyRefusal) as info:  # DP and exact aggregation both clamp
        zone.submit("analyst", {"sql": sql, **extra})
    assert "MISSING_BOUNDS" in {r.code for r in info.value.reasons}


def test_zcdp_accounting(dp_zone: FakeZone) -> None:
    _, outcome = dp_zone.submit_outcome(
        "analyst", {"sql": "SELECT segment, COUNT(*) FROM bank GROUP BY segment", "rho": 0.25}
    )
    assert outcome.spent["bank"].rho == 0.25
    assert outcome.spent["bank"].epsilon == 0.0


def test_contributions_bounded_per_entity_after_join() -> None:
    """One person with 500 purchase rows moves a DP count by at most max_rows."""
    import pyarrow as pa

    rules = {**DP_RULES, "max_rows_per_entity": 2, "bounds": {"spend": [0, 100]}}
    zone = make_fake_zone(DP_RULES, rules)
    shop = zone.tables["shop"]
    heavy = pa.table({
        "pid": ["p00001"] * 500, "token": ["t"] * 500,
        "shop_segment": ["kids"] * 500, "spend": [10_000.0] * 500,
    })  # fmt: skip
    zone.tables["shop"] = pa.concat_tables([shop, heavy])
    ctx = zone.as_party("analyst")
    from collabzone.techniques.sql._execute import execute
    from collabzone.techniques.sql._technique import compile_for

    sql = (
        "SELECT s.shop_segment, COUNT(*), SUM(s.spend) FROM bank b JOIN shop s ON b.pid = s.pid "
        "WHERE b.pid = b.pid GROUP BY s.shop_segment"
    )
    with pytest.raises(Exception):  # noqa: B017 - join key in WHERE is refused
        zone.submit("analyst", {"sql": sql, "epsilon": 1.0})
    sql = (
        "SELECT s.shop_segment, COUNT(*), SUM(s.spend) FROM bank b JOIN shop s ON b.pid = s.pid "
        "GROUP BY s.shop_segment"
    )
    compiled = compile_for({"sql": sql, "epsilon": 1.0}, ctx)
    exact = execute(
        ctx.connection(), compiled.rewritten().sql("duckdb"), timeout_s=10, max_rows=None
    )
    raw = (
        ctx.connection()
        .sql(
            "SELECT s.shop_segment, COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid "
            "GROUP BY 1 ORDER BY 1"
        )
        .fetchall()
    )
    bounded = dict(
        zip(exact.column("_cz_d0").to_pylist(), exact.column("_cz_q0").to_pylist(), strict=True)
    )
    raw_kids = dict(raw)["kids"]
    assert raw_kids - bounded["kids"] >= 498  # the 500 extra rows count as 2 at most
    sums = dict(
        zip(exact.column("_cz_d0").to_pylist(), exact.column("_cz_q1").to_pylist(), strict=True)
    )
    assert max(sums.values()) <= 2 * 100 * 100 * 400  # clamped to 100 per row, in cents
    ctx.close()


def test_dp_refuses_min_over_private_groups(dp_zone: FakeZone) -> None:
    # MIN is a private quantile over the whole table or per public group
    # (tests/sql/test_dp_aggregates.py, test_dp_group_quantiles.py); over groups read from
    # the data (age has no list domain) it is refused. (HAVING: test_dp_postprocess.py)
    with pytest.raises(PolicyRefusal, match="per group needs public groups"):
        dp_zone.submit(
            "analyst",
            {"sql": "SELECT age, MIN(balance) FROM bank GROUP BY age", "epsilon": 1.0},
        )
    assert dp_zone.ledger == []


def test_contribution_limits_derived_privately_when_not_fixed() -> None:
    from collabzone.techniques.sql._bounds import derive_limit

    ones, cost = derive_limit([1] * 20_000, share=0.5, zcdp=False)
    assert ones <= 2
    assert cost <= 0.5
    fives, _ = derive_limit([5] * 18_000 + [40] * 100, share=0.5, zcdp=False)
    assert 5 <= fives <= 8  # the 90th percentile, not the outliers


def test_derived_limits_are_charged_within_the_query_budget() -> None:
    zone = make_fake_zone({"analysis": ["dp"]}, {"analysis": ["dp"]})
    payload, outcome = zone.submit_outcome(
        "analyst", {"sql": "SELECT region, COUNT(*) FROM bank GROUP BY region", "epsilon": 1.0}
    )
    assert outcome.spent["bank"].epsilon == 1.0  # the derivation's share is inside epsilon
    assert any("derived privately" in note for note in payload["notes"])
    assert payload["contribution_bounds"]["max_rows_per_entity"] >= 1


def test_one_row_per_entity_path_bounds_every_entity() -> None:
    """With limits 1 / 1 each person adds exactly one row to one group, however many rows."""
    import pyarrow as pa

    from collabzone.techniques.sql._execute import execute
    from collabzone.techniques.sql._technique import compile_for

    zone = make_fake_zone(DP_RULES, {**DP_RULES, "bounds": {"spend": [0, 100]}})
    heavy = pa.table({
        "pid": ["p00001"] * 300 + ["p00002"] * 300, "token": ["t"] * 600,
        "shop_segment": ["kids"] * 300 + ["home"] * 300, "spend": [10_000.0] * 600,
    })  # fmt: skip
    zone.tables["shop"] = pa.concat_tables([zone.tables["shop"], heavy])
    ctx = zone.as_party("analyst")
    sql = (
        "SELECT s.shop_segment, COUNT(*), SUM(s.spend) FROM bank b JOIN shop s ON b.pid = s.pid "
        "GROUP BY s.shop_segment"
    )
    compiled = compile_for({"sql": sql, "epsilon": 1.0}, ctx)
    exact = execute(
        ctx.connection(), compiled.rewritten(salt=11).sql("duckdb"), timeout_s=10, max_rows=None
    )
    (people,) = (
        ctx.connection()
        .sql("SELECT COUNT(DISTINCT b.pid) FROM bank b JOIN shop s ON b.pid = s.pid")
        .fetchall()
    )
    people = people[0]
    assert sum(exact.column("_cz_q0").to_pylist()) == people
    assert max(exact.column("_cz_q1").to_pylist()) <= 100 * 100 * people  # cents, clamped
    again = execute(
        ctx.connection(), compiled.rewritten(salt=11).sql("duckdb"), timeout_s=10, max_rows=None
    )
    assert again.sort_by("_cz_d0").equals(exact.sort_by("_cz_d0"))  # deterministic per salt
    ctx.close()


def test_partition_map_from_vectors_is_the_dict_opendp_would_build() -> None:
    """i64_map skips OpenDP's per-entry conversion; the map it hands over is the same."""
    from opendp._convert import c_to_py

    from collabzone.techniques.sql._dp import i64_map

    keys = np.array([5, 0, 9, 2], dtype=np.int64)
    values = np.array([3, -1, 2**62, 0], dtype=np.int64)
    assert c_to_py(i64_map(keys, values)) == {5: 3, 0: -1, 9: 2**62, 2: 0}
    assert c_to_py(i64_map(keys[:0], values[:0])) == {}
    with pytest.raises(Exception, match="one value per key"):
        i64_map(keys, values[:2])


def test_private_selection_keeps_groups_by_their_own_counts() -> None:
    """Partition selection reads each group's own count (positions line up with keys):
    huge counts always pass the threshold, zero counts never do, and each kept group's
    sum is its own (noise far below the gap between the groups' sums)."""
    keys = [(f"g{i}",) for i in range(200)]
    big = [10**9 if i % 2 else 0 for i in range(200)]
    sums = [i * 10**9 for i in range(200)]
    out = release(keys, {"n": big, "s": sums}, [Measure("n", 1), Measure("s", 1)],
                  budget=Budget(epsilon=1.0, delta=1e-6), max_groups=1, selector="n")  # fmt: skip
    assert sorted(out.keys) == sorted(k for i, k in enumerate(keys) if i % 2)
    for key, total in zip(out.keys, out.values["s"], strict=True):
        assert abs(total - int(key[0][1:]) * 10**9) < 10**6


def test_duckdb_cast_to_bigint_rounds_to_nearest() -> None:
    """The DP rewrite on DuckDB scales clamped values with a bare CAST (no ROUND): it must
    round a DOUBLE to the nearest integer (halves to even), never truncate (a truncating
    cast would bias every sum downwards), and so keep a clamped value inside its bounds."""
    import duckdb

    values = [2.5, -2.5, 3.5, 0.5, -0.5, 1.4999999, 99.99 * 100, -0.49, 0.99, -0.99, 1e15 + 0.5]
    con = duckdb.connect()
    rows = con.execute("SELECT v, CAST(v AS BIGINT) FROM unnest(?::DOUBLE[]) t(v)", [values])
    for value, cast in rows.fetchall():
        assert abs(cast - value) <= 0.5, (value, cast)
        if abs(value - math.trunc(value)) == 0.5:  # an exact half: the even neighbour
            assert cast % 2 == 0, (value, cast)
