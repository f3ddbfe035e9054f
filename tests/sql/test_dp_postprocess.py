"""DP post-processing (issue 11): arithmetic, functions, constants, HAVING, ORDER BY and
LIMIT computed from the released noisy values only, at no extra cost.

Most tests inject the noise (``inject``): the real OpenDP release runs (scales, budget,
partition selection) and its values are then replaced by the exact bounded quantities
plus a known offset, so the expected post-processing is exact arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from collabzone.errors import PolicyRefusal
from collabzone.techniques.sql import _postprocess, _run_dp
from collabzone.techniques.sql._dp import Measure, NoisyTable, accuracy, release
from collabzone.techniques.sql._execute import execute
from collabzone.techniques.sql._interval import round_half_away
from collabzone.techniques.sql._technique import compile_for
from tests.sql.sql_support import DP_RULES, FakeZone, make_fake_zone

Offset = Callable[[tuple[Any, ...], str], int]


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Offset], None]]:
    """Replace the released noise by ``offset(group key, quantity name)``."""
    real = _run_dp.release

    def install(offset: Offset) -> None:
        def release(keys: Any, data: Any, measures: Any, **kw: Any) -> NoisyTable:
            out = real(keys, data, measures, **kw)
            index = {key: i for i, key in enumerate(keys)}
            for m in measures:
                out.values[m.name] = [
                    (int(data[m.name][index[k]]) if k in index else 0) + offset(k, m.name)
                    for k in out.keys
                ]
            return out

        monkeypatch.setattr(_run_dp, "release", release)

    yield install


def _truth(zone: FakeZone, sql: str) -> dict[Any, tuple[Any, ...]]:
    ctx = zone.as_party("analyst")
    try:
        rows = ctx.connection().sql(sql).fetchall()
    finally:
        ctx.close()
    return {row[0]: row[1:] for row in rows}


def _compiled(zone: FakeZone, sql: str) -> Any:
    ctx = zone.as_party("analyst")
    try:
        return compile_for({"sql": sql, "epsilon": 1.0}, ctx)
    finally:
        ctx.close()


def _column(payload: dict[str, Any], name: str) -> list[Any]:
    index = payload["columns"].index(name)
    return [row[index] for row in payload["rows"]]


def _by(payload: dict[str, Any], key: str) -> dict[Any, dict[str, Any]]:
    names = payload["columns"]
    return {row[names.index(key)]: dict(zip(names, row, strict=True)) for row in payload["rows"]}


SEGMENT_SQL = (
    "SELECT segment, COUNT(*) AS n, SUM(converted) AS s, SUM(converted) / COUNT(*) AS rate, "
    "SUM(converted) * 1 AS s1, (SUM(converted) + 1) * 2 AS bracket, 7 AS seven, "
    "POWER(AVG(balance), 2) AS sq, ROUND(AVG(balance), 1) AS r, ABS(AVG(balance) - 5000) AS a, "
    "AVG(balance) AS avg_b, SUM(balance) AS sum_b, COUNT(balance) AS n_b "
    "FROM bank GROUP BY segment"
)


def test_expressions_are_the_arithmetic_of_the_released_aggregates(inject: Any) -> None:
    inject(lambda key, name: 3)
    zone = make_fake_zone(DP_RULES, DP_RULES)
    payload = zone.submit("analyst", {"sql": SEGMENT_SQL, "epsilon": 1.0})
    truth = _truth(
        zone,
        "SELECT segment, COUNT(*), SUM(converted), "
        "SUM(CAST(ROUND(GREATEST(-1000, LEAST(20000, balance)) * 100) AS BIGINT)) "
        "FROM bank GROUP BY segment",
    )
    rows = _by(payload, "segment")
    assert set(rows) == {"gold", "silver", "bronze", "new"}
    for segment, row in rows.items():
        n, s, cents = truth[segment]
        assert row["n"] == n + 3 and row["s"] == s + 3  # exact + the injected noise
        assert row["sum_b"] == pytest.approx((cents + 3) / 100)
        assert row["rate"] == row["s"] / row["n"]
        assert row["s1"] == row["s"] and isinstance(row["s1"], int)
        assert row["bracket"] == (row["s"] + 1) * 2
        assert row["seven"] == 7
        avg = min(max(row["sum_b"] / row["n_b"], -1000.0), 20000.0)
        assert row["avg_b"] == pytest.approx(avg, rel=1e-12)
        assert row["sq"] == row["avg_b"] ** 2
        assert row["r"] == round_half_away(row["avg_b"], 1)
        assert row["a"] == abs(row["avg_b"] - 5000)


def test_each_aggregate_is_measured_once_and_post_processing_is_free(inject: Any) -> None:
    """SUM(x) used three times, and by AVG, is one noisy quantity: the same noise scales
    and the same spend as the query that releases the aggregates alone; --dry-run (plan)
    prices both the same."""
    inject(lambda key, name: 0)
    plain = "SELECT segment, COUNT(*) AS n, SUM(balance) AS s FROM bank GROUP BY segment"
    post = (
        "SELECT segment, COUNT(*) AS n, SUM(balance) AS s, SUM(balance) / COUNT(*) AS ratio, "
        "SUM(balance) * 2 AS twice, 1 + SUM(balance) AS shifted FROM bank GROUP BY segment "
        "HAVING SUM(balance) > 0 ORDER BY ratio DESC LIMIT 3"
    )
    results = {}
    for sql in (plain, post):
        zone = make_fake_zone(DP_RULES, DP_RULES)
        ctx = zone.as_party("analyst")
        plan = zone.technique.plan({"sql": sql, "epsilon": 0.8}, ctx)
        ctx.close()
        assert plan.details["refusals"] == []
        assert plan.cost["bank"].epsilon == 0.8  # the dry-run price
        payload, outcome = zone.submit_outcome("analyst", {"sql": sql, "epsilon": 0.8})
        assert outcome.spent["bank"] == plan.cost["bank"]
        assert zone.ledger == [("analyst", "bank", plan.cost["bank"])]
        results[sql] = payload
    assert results[post]["noise_scale"]["n"] == results[plain]["noise_scale"]["n"]
    assert results[post]["noise_scale"]["s"] == results[plain]["noise_scale"]["s"]
    assert results[post]["max_noise_scale"] == results[plain]["max_noise_scale"]
    for row in results[post]["rows"]:
        assert row[3] == row[2] / row[1] and row[4] == 2 * row[2] and row[5] == 1 + row[2]


def test_interval_of_a_ratio_is_interval_arithmetic_at_alpha_over_k(inject: Any) -> None:
    inject(lambda key, name: 0)
    zone = make_fake_zone(DP_RULES, DP_RULES)
    sql = "SELECT SUM(converted) AS s, COUNT(*) AS n, SUM(converted) / COUNT(*) AS rate FROM bank"
    payload = zone.submit("analyst", {"sql": sql, "epsilon": 1.0})
    (row,) = payload["rows"]
    s, n = row[0], row[1]
    scale = payload["noise_scale"]["s"]
    assert payload["noise_scale"]["n"] == scale  # two quantities, epsilon / 2 each
    one = accuracy(False, scale, 0.05)
    assert payload["confidence_intervals"]["s"] == [[s - one, s + one]]
    both = accuracy(False, scale, 0.025)  # two noisy parts: alpha / 2 each
    low, high = payload["confidence_intervals"]["rate"][0]
    assert low == pytest.approx((s - both) / (n + both), rel=1e-12)
    assert high == pytest.approx((s + both) / (n - both), rel=1e-12)
    assert low <= row[2] <= high


def test_division_by_a_noisy_value_that_may_be_zero_has_no_interval(inject: Any) -> None:
    inject(lambda key, name: 0)
    zone = make_fake_zone(DP_RULES, DP_RULES)
    sql = "SELECT COUNT(*) / (COUNT(*) - 598) AS q, LN(COUNT(*) - 600) AS l FROM bank"
    payload = zone.submit("analyst", {"sql": sql, "epsilon": 1.0})
    (row,) = payload["rows"]
    assert row[0] == 600 / 2  # the value exists: the released count is 600
    assert payload["confidence_intervals"]["q"] == [[None, None]]  # but 2 +- 6 holds 0
    assert row[1] is None  # LN(0) is undefined: NULL
    assert any(note.startswith("q: no interval") for note in payload["notes"])


def test_avg_is_labelled_with_its_own_noise_not_the_sums(inject: Any) -> None:
    inject(lambda key, name: 0)
    zone = make_fake_zone(DP_RULES, DP_RULES)
    sql = "SELECT SUM(balance) AS s, COUNT(balance) AS c, AVG(balance) AS a FROM bank"
    payload = zone.submit("analyst", {"sql": sql, "epsilon": 1.0})
    (row,) = payload["rows"]
    s, c, avg = row
    b_s, b_c = payload["noise_scale"]["s"], payload["noise_scale"]["c"]
    assert b_s == pytest.approx(2 * 20000.0)  # the SUM's scale: 2 / epsilon * 20 000
    expected = math.sqrt((b_s / c) ** 2 + (s * b_c / c**2) ** 2)  # delta method
    assert payload["noise_scale"]["a"] == pytest.approx(expected, rel=1e-9)
    assert payload["noise_scale"]["a"] < b_s / 100  # in the average's units
    w_s, w_c = (accuracy(False, b * unit, 0.025) / unit for b, unit in ((b_s, 100), (b_c, 1)))
    low, high = payload["confidence_intervals"]["a"][0]
    assert low == pytest.approx((s - w_s) / (c + w_c), rel=1e-9)
    assert high == pytest.approx((s + w_s) / (c - w_c), rel=1e-9)
    assert low <= avg <= high and avg == pytest.approx(s / c, rel=1e-12)
    assert any("noise scale: " in line and "a=" in line for line in _summary(payload))


def _summary(payload: dict[str, Any]) -> list[str]:
    from collabzone.techniques.sql._payload import summary

    return summary(payload)


def test_having_sees_only_the_noisy_values(inject: Any) -> None:
    """The attacker's HAVING COUNT(*) = <the true count> would confirm a count exactly;
    with every count released as true + 3 it matches nothing, and = true + 3 matches."""
    inject(lambda key, name: 3)
    zone = make_fake_zone(DP_RULES, DP_RULES)
    truth = _truth(zone, "SELECT segment, COUNT(*) FROM bank GROUP BY segment")
    base = "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment HAVING "
    for segment, (count,) in truth.items():
        probe = zone.submit("analyst", {"sql": base + f"COUNT(*) = {count}", "epsilon": 1.0})
        assert segment not in _column(probe, "segment")
        noisy = zone.submit("analyst", {"sql": base + f"COUNT(*) = {count + 3}", "epsilon": 1.0})
        assert _column(noisy, "segment") == [segment]
    # the lone person's segment: 'is there exactly one?' is answered from the noisy count
    alone = zone.submit("analyst", {"sql": base + "COUNT(*) BETWEEN 1 AND 1", "epsilon": 1.0})
    assert alone["rows"] == []


def test_having_on_an_aggregate_not_selected_and_three_valued_logic(inject: Any) -> None:
    inject(lambda key, name: 0)
    zone = make_fake_zone(DP_RULES, DP_RULES)
    truth = _truth(zone, "SELECT segment, SUM(converted) FROM bank GROUP BY segment")
    sql = (
        "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment "
        "HAVING SUM(converted) > 60 AND NOT (AVG(balance) IS NULL) OR COUNT(*) IN (1, 2)"
    )
    payload = zone.submit("analyst", {"sql": sql, "epsilon": 1.0})
    expected = {seg for seg, (s,) in truth.items() if s > 60} | {"new"}
    assert set(_column(payload, "segment")) == expected


def test_order_by_and_limit_use_the_noisy_values(inject: Any) -> None:
    # bronze's released count is pushed above everyone's; the true order would put silver first
    inject(lambda key, name: 1000 if key == ("bronze",) else 0)
    zone = make_fake_zone(DP_RULES, DP_RULES)
    sql = "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment ORDER BY n DESC LIMIT 2"
    payload = zone.submit("analyst", {"sql": sql, "epsilon": 1.0})
    assert _column(payload, "segment") == ["bronze", "silver"]
    assert len(payload["confidence_intervals"]["n"]) == 2
    by_expr = "SELECT segment, COUNT(*) * -1 AS neg FROM bank GROUP BY segment ORDER BY 2 LIMIT 1"
    assert _column(zone.submit("analyst", {"sql": by_expr, "epsilon": 1.0}), "segment") == [
        "bronze"
    ]


def test_privately_selected_groups_are_released_in_key_order() -> None:
    """LIMIT without ORDER BY keeps the first groups by key, never by the engine's order
    of the rows (which depends on the data)."""
    zone = make_fake_zone({**DP_RULES, "dp_delta": 1e-6}, DP_RULES)
    sql = "SELECT age, COUNT(*) AS n FROM bank GROUP BY age LIMIT 5"
    payload = zone.submit("analyst", {"sql": sql, "epsilon": 4.0})
    ages = _column(payload, "age")
    assert payload["partition_selection"].startswith("private")
    assert ages == sorted(ages) and len(ages) == 5


def test_the_cache_key_follows_what_having_and_order_by_mean() -> None:
    """The DP cache serves an earlier answer to the same question only: output names in
    HAVING and ORDER BY count by what they name (same noisy quantities, other meaning)."""
    zone = make_fake_zone(DP_RULES, DP_RULES)
    key = _run_dp._dp_cache_key
    having = "SELECT segment, COUNT(*) AS n, SUM(converted) AS s FROM bank GROUP BY segment "
    swapped = "SELECT segment, SUM(converted) AS n, COUNT(*) AS s FROM bank GROUP BY segment "
    for tail in ("HAVING n > 150", "ORDER BY n LIMIT 2"):
        assert key(_compiled(zone, having + tail)) != key(_compiled(zone, swapped + tail))
    same = "SELECT segment, COUNT(*) AS m, SUM(converted) AS s FROM bank GROUP BY segment "
    assert key(_compiled(zone, having + "HAVING n > 150")) == key(
        _compiled(zone, same + "HAVING m > 150")
    )


def test_repeated_query_with_another_having_is_not_served_the_cached_rows() -> None:
    zone = make_fake_zone(DP_RULES, DP_RULES)
    base = "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment"
    first = zone.submit("analyst", {"sql": base, "epsilon": 1.0})
    assert len(first["rows"]) == 4
    none = zone.submit("analyst", {"sql": base + " HAVING COUNT(*) > 100000", "epsilon": 1.0})
    assert none["rows"] == []
    again = zone.submit("analyst", {"sql": base, "epsilon": 1.0})
    assert again["rows"] == first["rows"] and again["spent"]["epsilon"] == 0.0


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT COUNT(*) > 3 AS big FROM bank", "cannot be computed from noisy values"),
        ("SELECT POWER(COUNT(*), COUNT(*)) AS p FROM bank", "POWER's exponent"),
        ("SELECT ROUND(COUNT(*), 0.5) AS r FROM bank", "whole number of decimals"),
        ("SELECT LOG(1, COUNT(*)) AS l FROM bank", "LOG's base"),
        ("SELECT COUNT(*) FROM bank HAVING COUNT(*) > 'a'", "HAVING"),
    ],
)
def test_what_cannot_be_post_processed_is_refused_naming_it(
    dp_zone: FakeZone, sql: str, words: str
) -> None:
    with pytest.raises(PolicyRefusal) as info:
        dp_zone.submit("analyst", {"sql": sql, "epsilon": 1.0})
    assert any(words in r.message for r in info.value.reasons)
    assert dp_zone.ledger == []


def test_functions_of_exact_aggregates_are_refused(fake_zone: FakeZone) -> None:
    """In exact mode the engine would compute LN(COUNT(*) - 37) on the true count, and
    whether it fails would say whether the count is 37: functions stay DP-only."""
    with pytest.raises(PolicyRefusal) as info:
        fake_zone.submit(
            "shop", {"sql": "SELECT segment, LN(COUNT(*) - 37) FROM bank GROUP BY segment"}
        )
    assert {r.code for r in info.value.reasons} == {"BAD_SHAPE"}
    assert "only on DP answers" in info.value.reasons[0].message


COVERAGE_SQL = (
    "SELECT segment, COUNT(*) AS n, SUM(converted) AS s, SUM(converted) / COUNT(*) AS ratio, "
    "AVG(balance) AS avg_b FROM bank GROUP BY segment"
)


def _discrete_laplace(rng: np.random.Generator, scale: float, size: int) -> np.ndarray:
    """Discrete Laplace noise (P(k) proportional to exp(-|k| / scale)), seeded: the
    difference of two geometric variables. OpenDP's own sampler is tested against this
    distribution in test_dp.py; here the noise must be reproducible."""
    p = 1 - math.exp(-1 / scale)
    return rng.geometric(p, size) - rng.geometric(p, size)


def test_reported_95_percent_intervals_cover_the_truth_in_200_repetitions() -> None:
    """COUNT, SUM, a post-processed ratio and AVG: the payload's intervals, computed by the
    post-processing exactly as a release does, over 200 seeded noise draws."""
    zone = make_fake_zone(DP_RULES, DP_RULES)
    ctx = zone.as_party("analyst")
    try:
        compiled = compile_for({"sql": COVERAGE_SQL, "epsilon": 0.5}, ctx)
        exact = execute(
            ctx.connection(), compiled.rewritten(salt=5).sql("duckdb"), timeout_s=10, max_rows=None
        )
    finally:
        ctx.close()
    keys = [tuple(k) for k in compiled.public_keys or []]
    found = {(row,): i for i, row in enumerate(exact.column("_cz_d0").to_pylist())}
    data = {
        q.name: [int(exact.column(q.name)[found[k]].as_py()) if k in found else 0 for k in keys]
        for q in compiled.quantities
    }
    measures = [
        Measure(q.name, max(abs(q.bound.low), abs(q.bound.high)) if q.bound else 1)
        for q in compiled.quantities
    ]
    assert compiled.budget is not None
    template = release(keys, data, measures, budget=compiled.budget, max_groups=1,
                       public_keys=keys)  # fmt: skip
    unit = {q.name: q.bound.scale if q.bound else 1 for q in compiled.quantities}
    key = compiled.quantity_index
    rows_q, conv_q = key["rows"], key["sum:bank.converted"]
    bal_q, nonnull_q = key["sum:bank.balance"], key["nonnull:bank.balance"]
    truth = {
        "n": data[rows_q],
        "s": data[conv_q],
        "ratio": [s / n for s, n in zip(data[conv_q], data[rows_q], strict=True)],
        "avg_b": [b / 100 / c for b, c in zip(data[bal_q], data[nonnull_q], strict=True)],
    }
    rng = np.random.default_rng(20261202)
    covered = {name: 0 for name in truth}
    with_interval = {name: 0 for name in truth}
    big = [i for i, k in enumerate(keys) if k != ("new",)]  # 'new' holds one person
    for _ in range(200):
        values = {
            q: [int(v) for v in np.array(data[q]) + _discrete_laplace(rng, scale, len(keys))]
            for q, scale in template.scales.items()
        }
        noisy = NoisyTable(keys, values, template.scales, template.accuracy, template.spent)
        out = _postprocess.answer(compiled, noisy, unit, 0.05)
        for name, column in out.intervals.items():
            for i in big:
                low, high = column[i]
                if low is None and high is None:
                    continue
                with_interval[name] += 1
                covered[name] += (low is None or low <= truth[name][i] + 1e-9) and (
                    high is None or truth[name][i] - 1e-9 <= high
                )
    for name in truth:
        assert with_interval[name] >= 0.99 * 200 * len(big), name
        assert covered[name] / with_interval[name] >= 0.94, (name, covered[name])
    # and exactly: the discrete Laplace mass inside one quantity's interval is >= 95 %
    scale = template.scales[rows_q]
    width = math.floor(accuracy(False, scale, 0.05))
    p = math.exp(-1 / scale)
    assert 1 - 2 * p ** (width + 1) / (1 + p) >= 0.95


def test_having_may_name_an_output_in_dp_only(inject: Any, fake_zone: FakeZone) -> None:
    inject(lambda key, name: 0)
    zone = make_fake_zone(DP_RULES, DP_RULES)
    truth = _truth(zone, "SELECT segment, COUNT(*) FROM bank GROUP BY segment")
    sql = (
        "SELECT segment, COUNT(*) AS n, SUM(converted) / COUNT(*) AS rate FROM bank "
        "GROUP BY segment HAVING n > 150 AND rate >= 0"
    )
    payload = zone.submit("analyst", {"sql": sql, "epsilon": 1.0})
    assert set(_column(payload, "segment")) == {s for s, (n,) in truth.items() if n > 150}
    with pytest.raises(PolicyRefusal) as info:
        dimension = "SELECT segment AS seg, COUNT(*) FROM bank GROUP BY segment HAVING seg > 'a'"
        zone.submit("analyst", {"sql": dimension, "epsilon": 1.0})
    assert "not an aggregate output" in info.value.reasons[0].message
    with pytest.raises(PolicyRefusal) as info:  # exact HAVING stays as written
        fake_zone.submit(
            "shop", {"sql": "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment HAVING n > 5"}
        )
    assert "repeat its aggregate" in info.value.reasons[0].message


AGGREGATES = {
    "COUNT(*)": "n",
    "SUM(converted)": "s",
    "AVG(balance)": "a",
}
EXPRESSIONS = [
    "SUM(converted) / COUNT(*)",
    "(SUM(converted) + 1) * 2 - COUNT(*)",
    "-AVG(balance) + 0.5",
    "POWER(AVG(balance), 2)",
    "POWER(COUNT(*), 0.5)",
    "POWER(COUNT(*), -1)",
    "SQRT(COUNT(*))",
    "ROUND(AVG(balance), 1)",
    "ROUND(AVG(balance))",
    "ROUND(AVG(balance), -2)",
    "ABS(AVG(balance) - 5000)",
    "LN(COUNT(*))",
    "LOG(COUNT(*))",
    "LOG(2, COUNT(*))",
    "EXP(SUM(converted) / COUNT(*))",
    "FLOOR(AVG(balance))",
    "CEIL(AVG(balance))",
    "SIGN(AVG(balance) - 5000)",
    "GREATEST(COUNT(*), SUM(converted) * 3)",
    "LEAST(COUNT(*), 100, AVG(balance))",
    "SUM(converted) / (COUNT(*) - COUNT(*))",
    "LN(COUNT(*) - COUNT(*))",
]


def test_post_processing_computes_what_duckdb_computes_on_the_released_values(
    inject: Any,
) -> None:
    """Each expression, evaluated by the zone on the released aggregates, equals DuckDB's
    value of the same SQL with the released aggregates written in as numbers (an infinite
    or undefined result, which JSON cannot carry, is NULL)."""
    import sqlglot
    from sqlglot import exp as sqlexp

    inject(lambda key, name: 5 if name.endswith("0") else -2)
    zone = make_fake_zone(DP_RULES, DP_RULES)
    outputs = ", ".join(f"{sql} AS e{i}" for i, sql in enumerate(EXPRESSIONS))
    leaves = ", ".join(f"{sql} AS {name}" for sql, name in AGGREGATES.items())
    sql = f"SELECT segment, {leaves}, {outputs} FROM bank GROUP BY segment"
    payload = zone.submit("analyst", {"sql": sql, "epsilon": 1.0})
    ctx = zone.as_party("analyst")
    try:
        for segment, row in _by(payload, "segment").items():
            released = {sql_: row[name] for sql_, name in AGGREGATES.items()}

            def literal(node: sqlexp.Expr, released: dict[str, Any] = released) -> sqlexp.Expr:
                if isinstance(node, sqlexp.Count | sqlexp.Sum | sqlexp.Avg):
                    value = released[node.sql()]
                    if value is None:
                        return sqlexp.Null()
                    if isinstance(value, int):
                        return sqlexp.Literal.number(value)
                    return sqlexp.cast(sqlexp.Literal.number(repr(value)), "DOUBLE")
                return node

            for i, text in enumerate(EXPRESSIONS):
                reference = sqlglot.parse_one(text, read="duckdb").transform(literal)
                ((expected,),) = (
                    ctx.connection().sql(f"SELECT {reference.sql('duckdb')}").fetchall()
                )
                expected = float(expected) if expected is not None else None
                if expected is not None and not math.isfinite(expected):
                    expected = None
                got = row[f"e{i}"]
                assert (got is None) == (expected is None), (segment, text, got, expected)
                if got is not None:
                    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), (segment, text)
    finally:
        ctx.close()


def test_boolean_columns_are_post_processed_as_counts_of_true(inject: Any) -> None:
    """SUM / AVG of a boolean column read CAST(col AS INTEGER) (the demo's DP query)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    inject(lambda key, name: 0)
    zone = make_fake_zone(DP_RULES, DP_RULES)
    bank = zone.datasets["bank"]
    columns = tuple(
        c.model_copy(update={"type": "boolean", "domain": None}) if c.name == "converted" else c
        for c in bank.columns
    )
    zone.datasets["bank"] = bank.model_copy(update={"columns": columns})
    table = zone.tables["bank"]
    flags = pc.cast(table.column("converted"), pa.bool_())
    zone.tables["bank"] = table.set_column(
        table.schema.get_field_index("converted"), "converted", flags
    )
    sql = (
        "SELECT segment, COUNT(*) AS n, SUM(converted) AS s, SUM(converted) / COUNT(*) AS rate, "
        "ROUND(100 * AVG(converted)) AS pct FROM bank GROUP BY segment HAVING SUM(converted) > 0"
    )
    payload = zone.submit("analyst", {"sql": sql, "epsilon": 1.0})
    assert payload["rows"]
    for row in _by(payload, "segment").values():
        assert row["rate"] == row["s"] / row["n"]
        assert row["pct"] == round_half_away(100 * row["s"] / row["n"])
