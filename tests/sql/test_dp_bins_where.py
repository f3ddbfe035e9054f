"""Public bins in WHERE (issue 11): ``width_bucket``, ``FLOOR(x / w) * w`` and CASE over a
bounded measure, compared with literals, filter rows in dp mode exactly as the equivalent
range would; anything else is refused naming the WHERE item.

A filter is a row-level transformation, so DP holds whatever it keeps; what must not
happen is an error that depends on the data (a text column cast to a number row by row),
a bin reading two columns, or a measure filtered outside dp mode.
"""

from __future__ import annotations

from typing import Any

import pytest

from collabzone.errors import PolicyRefusal
from collabzone.techniques.sql._frontend import QueryRejected
from tests.sql.sql_support import DP_RULES, FakeZone, exact_answer, make_fake_zone


def _ask(zone: FakeZone, sql: str, **extra: Any) -> dict[str, Any]:
    return zone.submit("analyst", {"sql": sql, "epsilon": 1.0, **extra})


def test_width_bucket_in_where_keeps_the_rows_of_that_bucket(exact: None) -> None:
    zone = make_fake_zone(DP_RULES, DP_RULES)
    payload = _ask(
        zone, "SELECT COUNT(*) AS n FROM bank WHERE width_bucket(balance, 0, 10000, 5) = 3"
    )
    ((n,),) = exact_answer(
        zone, "SELECT COUNT(*) FROM bank WHERE balance >= 4000 AND balance < 6000"
    )
    assert payload["rows"] == [[n]] and n > 50
    # bucket 0 is below lo, bucket n + 1 at or above hi (the SQL standard's meaning)
    payload = _ask(
        zone, "SELECT COUNT(*) AS n FROM bank WHERE width_bucket(balance, 0, 10000, 5) IN (0, 6)"
    )
    ((n,),) = exact_answer(zone, "SELECT COUNT(*) FROM bank WHERE balance < 0 OR balance >= 10000")
    assert payload["rows"] == [[n]]


def test_floor_bins_and_case_in_where_with_group_by(exact: None) -> None:
    zone = make_fake_zone(DP_RULES, DP_RULES)
    sql = (
        "SELECT segment, COUNT(*) AS n, SUM(converted) AS c FROM bank "
        "WHERE FLOOR(balance / 1000) * 1000 BETWEEN 3000 AND 5000 "
        "AND CASE WHEN age < 40 THEN 'young' ELSE 'older' END = 'young' GROUP BY segment"
    )
    payload = _ask(zone, sql)
    truth = {
        seg: (n, c)
        for seg, n, c in exact_answer(
            zone,
            "SELECT segment, COUNT(*), SUM(converted) FROM bank WHERE balance >= 3000 "
            "AND balance < 6000 AND age < 40 GROUP BY segment",
        )
    }
    got = {seg: (n, c) for seg, n, c in payload["rows"]}
    assert set(got) == {"gold", "silver", "bronze", "new"}  # public domain: every segment
    for seg, (n, c) in got.items():
        assert (n, c) == truth.get(seg, (0, 0)), seg
    assert payload["partition_selection"] == "public domain"


def test_a_bin_in_where_and_group_by_together(exact: None) -> None:
    zone = make_fake_zone(DP_RULES, DP_RULES)
    sql = (
        "SELECT width_bucket(balance, 0, 10000, 5) AS b, COUNT(*) AS n FROM bank "
        "WHERE width_bucket(balance, 0, 10000, 5) NOT IN (0, 6) GROUP BY 1"
    )
    payload = _ask(zone, sql)
    truth = dict(
        exact_answer(
            zone,
            "SELECT CAST(FLOOR(balance / 2000) AS BIGINT) + 1, COUNT(*) FROM bank "
            "WHERE balance >= 0 AND balance < 10000 GROUP BY 1",
        )
    )
    got = dict((b, n) for b, n in payload["rows"])
    assert got == {b: truth.get(b, 0) for b in range(7)}


def test_a_bin_in_where_is_priced_by_dry_run_and_charged() -> None:
    zone = make_fake_zone(DP_RULES, DP_RULES)
    sql = "SELECT COUNT(*) FROM bank WHERE width_bucket(balance, 0, 10000, 5) = 3"
    ctx = zone.as_party("analyst")
    plan = zone.technique.plan({"sql": sql, "epsilon": 0.4}, ctx)
    ctx.close()
    assert plan.details["refusals"] == [] and plan.cost["bank"].epsilon == 0.4
    zone.submit("analyst", {"sql": sql, "epsilon": 0.4})
    assert zone.ledger == [("analyst", "bank", plan.cost["bank"])]


@pytest.mark.parametrize(
    ("where", "match"),
    [
        ("CASE WHEN balance < age THEN 'a' ELSE 'b' END = 'a'", r"WHERE CASE .*exactly one column"),
        (
            "CASE WHEN balance < 5000 THEN 'low' ELSE 'high' END = 3",
            r"WHERE CASE .*values are text",
        ),
        ("width_bucket(balance, 0, 10000, 5) = 'x'", r"WHERE WIDTH_BUCKET.*values are numbers"),
        ("CASE WHEN segment < 3 THEN 1 ELSE 0 END = 1", r"'segment' is string"),
        ("FLOOR(balance / 0) = 3", r"WHERE FLOOR.*not a public bin"),
        ("FLOOR(balance / 10) * 20 = 3", r"WHERE FLOOR.*not a public bin"),
        ("width_bucket(balance, 10, 0, 5) = 1", r"WHERE WIDTH_BUCKET.*lo < hi"),
        ("CASE WHEN balance < 5000 THEN balance ELSE 0 END = 0", r"WHERE CASE .*literal"),
        ("balance * 2 > 100", r"no arithmetic"),
    ],
)
def test_unsafe_bins_in_where_are_refused_naming_the_item(where: str, match: str) -> None:
    zone = make_fake_zone(DP_RULES, DP_RULES)
    with pytest.raises(QueryRejected, match=match):
        _ask(zone, f"SELECT COUNT(*) FROM bank WHERE {where}")
    assert zone.ledger == []


def test_bins_in_where_need_dp_a_binnable_column_and_bounds() -> None:
    agg = make_fake_zone({"analysis": ["aggregation"], "min_group_size": 5})
    sql = "SELECT COUNT(*) FROM bank WHERE width_bucket(balance, 0, 10000, 5) = 3"
    with pytest.raises(PolicyRefusal, match=r"BIN_NOT_ALLOWED: WHERE WIDTH_BUCKET.*dp mode only"):
        agg.submit("analyst", {"sql": sql})
    zone = make_fake_zone(DP_RULES, DP_RULES)
    with pytest.raises(PolicyRefusal, match=r"WHERE WIDTH_BUCKET\(.*name.*may not be binned"):
        _ask(zone, "SELECT COUNT(*) FROM bank WHERE width_bucket(name, 0, 10, 2) = 1")
    # the raw measure itself stays unfilterable: only its public bins are
    with pytest.raises(PolicyRefusal, match="'balance' may not be grouped or filtered on"):
        _ask(zone, "SELECT COUNT(*) FROM bank WHERE balance > 3000")
    unbounded = make_fake_zone({**DP_RULES, "bounds": {}}, DP_RULES)
    unbounded.datasets["bank"] = _without_domain(unbounded, "balance")
    with pytest.raises(PolicyRefusal, match=r"WHERE FLOOR.*needs its declared bounds"):
        _ask(unbounded, "SELECT COUNT(*) FROM bank WHERE FLOOR(balance / 100) * 100 = 500")
    assert agg.ledger == [] and zone.ledger == [] and unbounded.ledger == []


def _without_domain(zone: FakeZone, column: str) -> Any:
    dataset = zone.datasets["bank"]
    columns = tuple(
        c.model_copy(update={"domain": None}) if c.name == column else c for c in dataset.columns
    )
    return dataset.model_copy(update={"columns": columns})
