"""Governed SQL on tables left in PostgreSQL gives what it gives on an ingested copy.

The same catalogue, agreements and questions go to two fake zones: one reads the datasets
from DuckDB, the other from the machine's PostgreSQL (one schema per module, dropped at
the end). Released rows, suppressions and refusals must be identical; DP answers must be
bounded inside PostgreSQL (nothing row-level comes back).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from collabzone.errors import CollabzoneError
from collabzone.remote_tables import PostgresTable
from collabzone.techniques.base import FailedAfterSpending
from tests.sql.remote_support import URL, normalised, pg_schema, remote_copy
from tests.sql.sql_support import AGG_RULES, DP_RULES, FakeZone, make_fake_zone

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="COLLABZONE_TEST_POSTGRES_URL is not set"),
]
EXACT = {**AGG_RULES, "threshold_jitter": 0}
"""No jitter: the near-threshold raise is keyed on the engine's hashes of people, which
differ between DuckDB and PostgreSQL; with it off, both must withhold the same rows."""


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    with pg_schema(make_fake_zone().tables) as name:
        yield name


def _answer(zone: FakeZone, party: str, spec: dict[str, Any]) -> Any:
    try:
        return normalised(zone.submit(party, spec))
    except CollabzoneError as exc:
        return f"{type(exc).__name__}: {exc}"


QUERIES = [
    "SELECT segment, COUNT(*) AS n, AVG(balance) AS avg_balance FROM bank GROUP BY segment",
    "SELECT b.segment, s.shop_segment, COUNT(DISTINCT b.pid), SUM(s.spend) FROM bank b "
    "JOIN shop s ON b.pid = s.pid WHERE b.age BETWEEN 25 AND 70 AND b.region IN "
    "('north', 'east') GROUP BY b.segment, s.shop_segment ORDER BY 3 DESC, 1, 2 LIMIT 4",
    "SELECT region, SUM(converted) FROM bank WHERE segment <> 'gold' GROUP BY region "
    "HAVING COUNT(*) > 20",
    "SELECT COUNT(*) FROM bank WHERE segment = 'new'",
    "SELECT region, MIN(age), MAX(balance) FROM bank GROUP BY region",
    "SELECT s.shop_segment, AVG(b.balance), COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid "
    "GROUP BY s.shop_segment",
    "SELECT name FROM bank",  # refused: an identifier
    "SELECT segment, COUNT(*) FROM bank GROUP BY segment ORDER BY 2 DESC LIMIT 2",
]


@pytest.mark.parametrize("party", ["analyst", "bank", "shop"])
@pytest.mark.parametrize("sql", QUERIES)
def test_same_answer_on_duckdb_and_postgres(schema: str, sql: str, party: str) -> None:
    local = make_fake_zone(EXACT, EXACT)
    remote = remote_copy(local, schema)
    assert _answer(remote, party, {"sql": sql}) == _answer(local, party, {"sql": sql})


def test_a_differencing_sequence_is_withheld_alike(schema: str) -> None:
    """Totals, then groups, then near-duplicate conditions: every answer and every
    withheld row the same, each zone keeping its own audit memory."""
    local = make_fake_zone(EXACT, EXACT)
    remote = remote_copy(local, schema)
    sequence = [
        "SELECT COUNT(*) FROM bank",
        "SELECT segment, COUNT(*) FROM bank GROUP BY segment",
        "SELECT COUNT(*) FROM bank WHERE segment IN ('gold', 'silver', 'bronze')",
        "SELECT COUNT(*) FROM bank WHERE age > 30",
        "SELECT COUNT(*) FROM bank WHERE age > 31",
        "SELECT region, COUNT(*) FROM bank WHERE age >= 89 GROUP BY region",
        "SELECT s.shop_segment, COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid "
        "GROUP BY s.shop_segment",
        "SELECT COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid",
    ]
    answers = []
    for sql in sequence:
        expected = _answer(local, "analyst", {"sql": sql})
        assert _answer(remote, "analyst", {"sql": sql}) == expected, sql
        answers.append(expected)
    # the audit did withhold something on this sequence (else the test checks nothing)
    assert any(isinstance(a, dict) and not a["rows"] for a in answers)
    assert sorted(remote.audit_states) == sorted(local.audit_states)


def test_with_jitter_every_released_group_still_has_the_minimum(schema: str) -> None:
    local = make_fake_zone()
    remote = remote_copy(local, schema)
    payload = remote.submit(
        "analyst", {"sql": "SELECT segment, region, COUNT(DISTINCT pid) FROM bank GROUP BY 1, 2"}
    )
    assert payload["rows"] and all(row[2] >= AGG_RULES["min_group_size"] for row in payload["rows"])
    assert "new" not in {row[0] for row in payload["rows"]}  # the one-person segment


class _Recording(PostgresTable):
    """Notes how many rows each query sent back."""

    sizes: ClassVar[list[int]] = []

    def query(self, sql: str, *, timeout_s: float) -> tuple[list[str], list[tuple[Any, ...]]]:
        names, rows = super().query(sql, timeout_s=timeout_s)
        _Recording.sizes.append(len(rows))
        return names, rows


@pytest.mark.parametrize(
    "rules",
    [DP_RULES, {**DP_RULES, "max_rows_per_entity": 3, "max_groups_per_entity": 2},
     {k: v for k, v in DP_RULES.items() if not k.startswith("max_rows")}],
    ids=["one-row", "limits", "derived-limits"],
)  # fmt: skip
def test_dp_is_bounded_in_postgres_and_only_aggregates_come_back(
    schema: str, rules: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tests.sql.remote_support as support

    monkeypatch.setattr(support, "PostgresTable", _Recording)
    _Recording.sizes = []
    remote = remote_copy(make_fake_zone(rules, rules), schema)
    sql = (
        "SELECT b.segment, COUNT(*), SUM(b.balance), AVG(s.spend) FROM bank b "
        "JOIN shop s ON b.pid = s.pid GROUP BY b.segment"
    )
    payload = remote.submit("analyst", {"sql": sql, "epsilon": 1.0})
    assert payload["analysis"] == "dp" and payload["spent"]["epsilon"] == 1.0
    assert {row[0] for row in payload["rows"]} <= {"gold", "silver", "bronze", "new"}
    bounds = payload["contribution_bounds"]
    assert bounds["max_rows_per_entity"] >= 1 and bounds["max_groups_per_entity"] >= 1
    # 600 and 400 people: nothing per person or per row came back, only groups (and, for
    # derived limits, a histogram of contribution counts of at most 100 x 100 cells)
    assert _Recording.sizes and max(_Recording.sizes) <= 4 + (100 if "max_rows_per_entity"
                                                                not in rules else 0)  # fmt: skip


def test_dp_order_statistics_are_refused_before_anything_is_spent(schema: str) -> None:
    remote = remote_copy(make_fake_zone(DP_RULES, DP_RULES), schema)
    with pytest.raises(CollabzoneError, match="MEDIAN"):
        remote.submit("analyst", {"sql": "SELECT MEDIAN(balance) FROM bank", "epsilon": 1.0})
    assert remote.ledger == []


def test_a_remote_and_a_local_dataset_are_not_mixed(schema: str) -> None:
    remote = remote_copy(make_fake_zone(EXACT, EXACT), schema, remote=("bank",))
    sql = "SELECT s.shop_segment, COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid GROUP BY 1"
    with pytest.raises(CollabzoneError, match=r"'bank' is left in PostgreSQL and 'shop' is held"):
        remote.submit("analyst", {"sql": sql})
    assert remote.submit("analyst", {"sql": "SELECT COUNT(*) FROM shop"})["rows"]


def test_an_engine_failure_says_nothing_of_the_data(schema: str) -> None:
    import psycopg

    from tests.sql.remote_support import conninfo

    local = make_fake_zone(EXACT, EXACT)
    with psycopg.connect(conninfo(), autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{schema}_broken"')
        con.execute(f'CREATE TABLE "{schema}_broken"."bank" (pid text)')  # columns missing
    try:
        remote = remote_copy(local, f"{schema}_broken", remote=("bank",))
        with pytest.raises(CollabzoneError) as caught:
            remote.submit("analyst", {"sql": "SELECT segment, COUNT(*) FROM bank GROUP BY 1"})
        assert "engine's message is withheld" in str(caught.value)
        assert "segment" not in str(caught.value).split("withheld")[0]
    finally:
        with psycopg.connect(conninfo(), autocommit=True) as con:
            con.execute(f'DROP SCHEMA "{schema}_broken" CASCADE')


def test_governed_queries_run_read_only(schema: str) -> None:
    import psycopg

    from collabzone.remote_tables import Location
    from tests.sql.remote_support import conninfo

    table = PostgresTable(Location("postgres", (schema, "bank"), conninfo()))
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        table.query(f'DELETE FROM "{schema}"."bank"', timeout_s=5)
    assert table.count() == 600


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT s.token FROM shop s JOIN bank b ON s.pid = b.pid WHERE b.segment = 'gold' "
        "ORDER BY 1",
        "SELECT s.token FROM shop s JOIN bank b ON s.pid = b.pid WHERE b.segment = 'new'",
    ],
)
def test_lists_are_the_same_on_both_engines(schema: str, sql: str) -> None:
    from tests.sql.test_list_template import LIST_BANK, LIST_SHOP

    local = make_fake_zone(LIST_BANK, LIST_SHOP)
    remote = remote_copy(local, schema)
    expected = _answer(local, "shop", {"sql": sql})
    assert _answer(remote, "shop", {"sql": sql}) == expected
    assert _answer(remote, "analyst", {"sql": sql}) == _answer(local, "analyst", {"sql": sql})


def test_templates_are_the_same_on_both_engines(schema: str) -> None:
    from tests.sql.test_list_template import TEMPLATE_RULES

    local = make_fake_zone(TEMPLATE_RULES, AGG_RULES)
    remote = remote_copy(local, schema)
    spec = {"template": "conversion_by_age", "params": {"min_age": 30, "region": "north"}}
    expected = _answer(local, "analyst", spec)
    assert isinstance(expected, dict) and expected["rows"]
    assert _answer(remote, "analyst", spec) == expected


def test_a_dp_construct_postgres_lacks_is_refused_before_anything_is_spent(schema: str) -> None:
    rules = {k: v for k, v in DP_RULES.items() if not k.startswith("max_rows")}  # (derived)
    remote = remote_copy(make_fake_zone(rules, rules), schema)
    sql = "SELECT segment, COUNT(DISTINCT region) FROM bank GROUP BY segment"
    with pytest.raises(CollabzoneError, match="does not run on PostgreSQL") as caught:
        remote.submit("analyst", {"sql": sql, "epsilon": 1.0})
    assert not isinstance(caught.value, FailedAfterSpending)  # (no limit was derived first)
    assert remote.ledger == []
