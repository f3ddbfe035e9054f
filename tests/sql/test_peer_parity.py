"""Peer parity (issue 11): query shapes SmartNoise SQL's and Tumult Analytics' documentation
present as supported, written as our queries on the test fixture (``bank``, ``shop``),
each answered in dp mode; and unsafe shapes, each refused with a reason naming the item.

The shapes follow the peers' documentation pages (SmartNoise SQL "SQL reference" and
"Supported queries"; Tumult Analytics "Tutorials": simple / group-by / binning / quantile
/ distinct queries), not their test files. ``ANALYST_SET`` is a typical set of 15 an
analyst coming from those tools writes (issue 11 found 6 of 15 answered).
"""

from __future__ import annotations

from typing import Any

import pytest

from collabzone.errors import CollabzoneError
from tests.sql.sql_support import DP_RULES, FakeZone, make_fake_zone

ANSWERED = [
    # --- SmartNoise SQL: aggregates and simple shapes
    "SELECT COUNT(*) FROM bank",
    "SELECT COUNT(*) AS n FROM bank WHERE age > 40",
    "SELECT COUNT(balance) AS n FROM bank",
    "SELECT SUM(balance) AS total FROM bank",
    "SELECT AVG(balance) AS mean FROM bank",
    "SELECT VAR(balance) AS v FROM bank",
    "SELECT VARIANCE(balance) AS v FROM bank",
    "SELECT STDDEV(balance) AS sd FROM bank",
    "SELECT VAR_POP(converted) AS v, STDDEV_POP(converted) AS sd FROM bank",
    "SELECT COUNT(*) AS n, SUM(balance) AS s, AVG(balance) AS a, STDDEV(balance) AS sd FROM bank",
    "SELECT COUNT(DISTINCT pid) AS people FROM bank",
    "SELECT COUNT(DISTINCT region) AS regions FROM bank",
    # --- SmartNoise SQL: GROUP BY, HAVING, ORDER BY, LIMIT, arithmetic, WHERE
    "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment",
    "SELECT segment, region, COUNT(*) AS n FROM bank GROUP BY segment, region",
    "SELECT region, AVG(balance) AS a FROM bank GROUP BY region",
    "SELECT region, SUM(converted) AS c, COUNT(*) AS n FROM bank GROUP BY region",
    "SELECT region, VAR(balance) AS v FROM bank GROUP BY region",
    "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment HAVING COUNT(*) > 50",
    "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment HAVING n > 50",
    "SELECT region, COUNT(*) AS n FROM bank GROUP BY region ORDER BY n DESC",
    "SELECT region, COUNT(*) AS n FROM bank GROUP BY region ORDER BY n DESC LIMIT 2",
    "SELECT region, COUNT(*) AS n FROM bank GROUP BY region ORDER BY region",
    "SELECT SUM(balance) / COUNT(*) AS mean FROM bank",
    "SELECT region, SUM(converted) * 1.0 / COUNT(*) AS rate FROM bank GROUP BY region",
    "SELECT (SUM(balance) + 1) * 2 AS x, 7 AS seven FROM bank",
    "SELECT POWER(AVG(balance), 2) AS sq, SQRT(VAR(balance)) AS sd FROM bank",
    "SELECT ROUND(AVG(balance), 1) AS a FROM bank",
    "SELECT segment, COUNT(*) AS n FROM bank WHERE region IN ('north', 'south') GROUP BY segment",
    "SELECT COUNT(*) AS n FROM bank WHERE age BETWEEN 30 AND 50 AND region = 'east'",
    "SELECT COUNT(*) AS n FROM bank WHERE NOT (region = 'east') OR age < 25",
    "SELECT b.region, COUNT(*) AS n FROM bank b JOIN shop s ON b.pid = s.pid GROUP BY b.region",
    # --- Tumult Analytics: quantiles, min / max, distinct, binning, public keys
    "SELECT MIN(balance) AS lo, MAX(balance) AS hi FROM bank",
    "SELECT MEDIAN(balance) AS med FROM bank",
    "SELECT QUANTILE_CONT(balance, 0.9) AS p90 FROM bank",
    "SELECT PERCENTILE_CONT(balance, 0.25) AS p25 FROM bank",
    "SELECT MEDIAN(balance) AS med FROM bank WHERE region = 'north'",
    "SELECT MAX(balance) - MIN(balance) AS spread FROM bank",
    "SELECT DISTINCT segment FROM bank",
    "SELECT DISTINCT segment, region FROM bank",
    "SELECT region FROM bank GROUP BY region",
    "SELECT segment, COUNT(DISTINCT age) AS ages FROM bank GROUP BY segment",
    "SELECT width_bucket(balance, 0, 20000, 10) AS b, COUNT(*) AS n FROM bank GROUP BY 1",
    "SELECT CASE WHEN balance < 2000 THEN 'low' WHEN balance < 8000 THEN 'mid' ELSE 'high' END "
    "AS band, COUNT(*) AS n FROM bank GROUP BY band",
    "SELECT FLOOR(balance / 1000) * 1000 AS k, COUNT(*) AS n FROM bank GROUP BY 1",
    "SELECT FLOOR(age / 10) * 10 AS decade, AVG(balance) AS a FROM bank GROUP BY decade",
    "SELECT region, IF(converted = 1, 'yes', 'no') AS conv, COUNT(*) AS n FROM bank "
    "GROUP BY region, conv",
    # quantiles per public group and binning in WHERE (Tumult's quantile / binning tutorials)
    "SELECT segment, MEDIAN(balance) AS med FROM bank GROUP BY segment",
    "SELECT region, MIN(balance) AS lo, MAX(balance) AS hi FROM bank GROUP BY region",
    "SELECT segment, QUANTILE_CONT(balance, 0.9) AS p90, COUNT(*) AS n FROM bank GROUP BY segment",
    "SELECT COUNT(*) AS n FROM bank WHERE width_bucket(balance, 0, 20000, 10) = 3",
    "SELECT segment, AVG(balance) AS a FROM bank "
    "WHERE FLOOR(balance / 1000) * 1000 BETWEEN 2000 AND 6000 GROUP BY segment",
]

REFUSED: list[tuple[str, str]] = [
    # (query, a word the refusal must name: the offending item)
    ("SELECT balance, COUNT(*) AS n FROM bank GROUP BY balance", "balance"),
    ("SELECT name, COUNT(*) AS n FROM bank GROUP BY name", "name"),
    ("SELECT COUNT(name) FROM bank", "name"),
    ("SELECT pid, COUNT(*) FROM bank GROUP BY pid", "pid"),
    ("SELECT SUM(token) FROM shop", "token"),
    ("SELECT CASE WHEN balance < age THEN 1 ELSE 0 END AS x, COUNT(*) FROM bank GROUP BY 1", "bin"),
    (
        "SELECT CASE WHEN balance < 10 THEN balance ELSE 0 END AS x, COUNT(*) FROM bank GROUP BY 1",
        "literal",
    ),
    ("SELECT width_bucket(balance, 0, age, 4) AS b, COUNT(*) FROM bank GROUP BY 1", "width_bucket"),
    ("SELECT FLOOR(balance / age) AS b, COUNT(*) FROM bank GROUP BY 1", "bin"),
    ("SELECT FLOOR(balance / 100) * 50 AS b, COUNT(*) FROM bank GROUP BY 1", "bin"),
    ("SELECT age, MEDIAN(balance) FROM bank GROUP BY age", "MEDIAN"),  # groups not public
    ("SELECT age, MAX(balance) FROM bank GROUP BY age", "MAX"),
    ("SELECT COUNT(*) FROM bank WHERE CASE WHEN balance < age THEN 1 ELSE 0 END = 1", "WHERE CASE"),
    ("SELECT COUNT(*) FROM bank WHERE width_bucket(balance, 0, 100, 5) = 'x'", "WIDTH_BUCKET"),
    ("SELECT QUANTILE_CONT(balance, 1.5) FROM bank", "QUANTILE_CONT"),
    ("SELECT SUM(balance * 1000000) FROM bank", "aggregate"),
    ("SELECT SUM(CASE WHEN age = 37 THEN balance ELSE 0 END) FROM bank", "aggregate"),
    ("SELECT COUNT(*) FROM bank WHERE 1 / (age - 37) = 1", "WHERE"),
    ("SELECT COUNT(*) FROM (SELECT * FROM bank) AS t", "subqueries"),
    ("SELECT segment, COUNT(*) FROM bank GROUP BY segment HAVING MIN(age) > 3", "MIN"),
    ("SELECT segment, UPPER(segment), COUNT(*) FROM bank GROUP BY segment", "UPPER"),
    ("SELECT COUNT(*) OVER () FROM bank", "window"),
    ("SELECT AVG(balance) FROM bank b JOIN shop s ON b.pid = s.token", "token"),
    ("SELECT DISTINCT balance FROM bank", "balance"),
]

ANALYST_SET = {
    "COUNT": "SELECT COUNT(*) AS n FROM bank",
    "SUM": "SELECT SUM(balance) AS s FROM bank",
    "AVG": "SELECT AVG(balance) AS a FROM bank",
    "VAR": "SELECT VAR(balance) AS v FROM bank",
    "STDDEV": "SELECT STDDEV(balance) AS sd FROM bank",
    "MIN": "SELECT MIN(balance) AS lo FROM bank",
    "MAX": "SELECT MAX(balance) AS hi FROM bank",
    "MEDIAN": "SELECT MEDIAN(balance) AS med FROM bank",
    "percentile": "SELECT PERCENTILE_CONT(balance, 0.9) AS p90 FROM bank",
    "COUNT DISTINCT": "SELECT COUNT(DISTINCT region) AS r FROM bank",
    "GROUP BY + HAVING": "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment "
    "HAVING COUNT(*) > 20",
    "binned GROUP BY": "SELECT width_bucket(age, 18, 98, 8) AS b, COUNT(*) AS n FROM bank "
    "GROUP BY 1",
    "SELECT DISTINCT": "SELECT DISTINCT region FROM bank",
    "ratio": "SELECT region, SUM(converted) / COUNT(*) AS rate FROM bank GROUP BY region",
    "ORDER BY LIMIT": "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment "
    "ORDER BY n DESC LIMIT 2",
}

RULES = {**DP_RULES, "max_epsilon_per_query": 5.0}


@pytest.fixture(scope="module")
def zone() -> FakeZone:
    return make_fake_zone(RULES, RULES)


def _ask(zone: FakeZone, sql: str) -> dict[str, Any]:
    return zone.submit("analyst", {"sql": sql, "epsilon": 1.0})


def test_there_are_enough_shapes() -> None:
    assert len(ANSWERED) >= 45 and len(REFUSED) >= 20
    assert len(set(ANSWERED)) == len(ANSWERED)


@pytest.mark.parametrize("sql", ANSWERED)
def test_peer_shape_is_answered_in_dp(zone: FakeZone, sql: str) -> None:
    payload = _ask(zone, sql)
    assert payload["analysis"] == "dp"
    assert payload["spent"]["epsilon"] == 1.0 or payload["notes"][-1].startswith("repeated")
    assert payload["columns"] and all(len(r) == len(payload["columns"]) for r in payload["rows"])


@pytest.mark.parametrize(("sql", "named"), REFUSED)
def test_unsafe_shape_is_refused_naming_the_item(zone: FakeZone, sql: str, named: str) -> None:
    before = len(zone.ledger)
    with pytest.raises(CollabzoneError) as refusal:
        _ask(zone, sql)
    assert named.lower() in str(refusal.value).lower()
    assert len(zone.ledger) == before  # a refusal spends nothing


def test_the_analyst_set_runs(zone: FakeZone, capsys: pytest.CaptureFixture[str]) -> None:
    answered = []
    for label, sql in ANALYST_SET.items():
        try:
            _ask(zone, sql)
        except CollabzoneError:
            continue
        answered.append(label)
    with capsys.disabled():
        print(f"\nanalyst set: {len(answered)} of {len(ANALYST_SET)} answered in dp mode")
    assert len(answered) == len(ANALYST_SET) == 15
