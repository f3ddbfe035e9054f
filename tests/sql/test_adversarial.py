"""One test per attack family: each asserts the refusal reason, or the suppression."""

from __future__ import annotations

from collections import Counter

import pytest

from collabzone.errors import InvalidInputError, PolicyRefusal
from collabzone.techniques.sql import QueryRejected
from collabzone.techniques.sql._execute import RUNTIME_FAILURE, execute
from tests.sql.sql_support import FakeZone, make_fake_zone


def refused(fake_zone: FakeZone, sql: str, party: str = "analyst") -> set[str]:
    with pytest.raises(PolicyRefusal) as info:
        fake_zone.submit(party, {"sql": sql})
    return {r.code for r in info.value.reasons}


def withheld(fake_zone: FakeZone, sql: str, party: str = "analyst") -> bool:
    """Whether the zone released nothing (as for a group under the minimum)."""
    return fake_zone.submit(party, {"sql": sql})["rows"] == []


def rejected(fake_zone: FakeZone, sql: str) -> str:
    with pytest.raises(QueryRejected) as info:
        fake_zone.submit("analyst", {"sql": sql})
    return info.value.reason


def test_small_cell_is_suppressed_in_sql(fake_zone: FakeZone) -> None:
    out = fake_zone.submit(
        "analyst", {"sql": "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment"}
    )
    released = {row[0] for row in out["rows"]}
    assert "new" not in released  # one person alone in 'new'
    assert released == {"gold", "silver", "bronze"}
    assert "suppressed_rows" not in out  # nothing exact about what was left out
    assert all(row[1] >= 5 for row in out["rows"])


def test_everything_suppressed_says_nothing_exact(fake_zone: FakeZone) -> None:
    suppressed = fake_zone.submit(
        "analyst",
        {"sql": "SELECT region, COUNT(*) FROM bank WHERE segment = 'new' GROUP BY region"},
    )
    nobody = fake_zone.submit(
        "shop", {"sql": "SELECT region, COUNT(*) FROM bank WHERE age > 99 GROUP BY region"}
    )
    assert suppressed["rows"] == nobody["rows"] == []
    assert {k: v for k, v in suppressed.items() if k != "rows"} == {
        k: v for k, v in nobody.items() if k != "rows"
    }  # one person alone and nobody at all look the same


def test_total_minus_visible_rows_gives_no_small_group(fake_zone: FakeZone) -> None:
    total = fake_zone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank"})["rows"][0][0]
    shown = fake_zone.submit(
        "analyst", {"sql": "SELECT segment, COUNT(*) FROM bank GROUP BY segment"}
    )
    assert 0 < len(shown["rows"]) < 3  # 'new' is left out, and one more group to cover it
    assert total - sum(row[1] for row in shown["rows"]) >= 5


def test_differencing_pair_is_refused(fake_zone: FakeZone) -> None:
    ages = Counter(fake_zone.tables["bank"].column("age").to_pylist())
    rare = next(a for a, n in sorted(ages.items()) if 1 <= n <= 4 and a > 18)
    fake_zone.submit("analyst", {"sql": f"SELECT COUNT(*) FROM bank WHERE age > {rare}"})
    assert withheld(fake_zone, f"SELECT COUNT(*) FROM bank WHERE age >= {rare}")


def test_tracker_is_refused(fake_zone: FakeZone) -> None:
    fake_zone.submit(
        "analyst", {"sql": "SELECT COUNT(*) FROM bank WHERE segment IN ('gold', 'new')"}
    )
    assert withheld(fake_zone, "SELECT COUNT(*) FROM bank WHERE segment = 'gold'")


def test_range_split_is_refused(fake_zone: FakeZone) -> None:
    ages = Counter(fake_zone.tables["bank"].column("age").to_pylist())
    rare = next(a for a, n in sorted(ages.items()) if 1 <= n <= 4 and 18 < a < 89)
    fake_zone.submit(
        "analyst", {"sql": f"SELECT COUNT(*) FROM bank WHERE age BETWEEN 18 AND {rare}"}
    )
    assert withheld(fake_zone, f"SELECT COUNT(*) FROM bank WHERE age BETWEEN 18 AND {rare - 1}")


def test_colluding_analysts_are_combined_unless_the_agreement_narrows_it() -> None:
    rules = {"analysis": ["aggregation"], "min_group_size": 5}
    zone = make_fake_zone(rules, rules)
    zone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank WHERE segment IN ('gold', 'new')"})
    assert withheld(zone, "SELECT COUNT(*) FROM bank WHERE segment = 'gold'", "shop")
    narrowed = {**rules, "audit_scope": "requester"}
    alone = make_fake_zone(narrowed, narrowed)
    alone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank WHERE segment IN ('gold', 'new')"})
    assert alone.submit("shop", {"sql": "SELECT COUNT(*) FROM bank WHERE segment = 'gold'"})["rows"]


@pytest.mark.parametrize(
    "rewrite",
    [
        "SELECT COUNT(*) FROM bank WHERE 30 < age AND region = 'north'",
        "SELECT COUNT(*) FROM bank WHERE (region = 'north') AND NOT age <= 30",
        "SELECT COUNT(*) AS c FROM bank WHERE region IN ('north', 'north') AND age > 30",
    ],
)
def test_predicate_rewrites_give_the_same_answer(fake_zone: FakeZone, rewrite: str) -> None:
    first = fake_zone.submit(
        "analyst", {"sql": "SELECT COUNT(*) FROM bank WHERE age > 30 AND region = 'north'"}
    )
    again = fake_zone.submit("analyst", {"sql": rewrite})
    assert again["rows"] == first["rows"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM bank WHERE segment = 'gold' OR segment = 'zzz-not-a-segment'",
        "SELECT COUNT(*) FROM bank WHERE segment = 'gold' OR age = 999",
        "SELECT COUNT(*) FROM bank WHERE segment IN ('gold', 'nobody')",
    ],
)
def test_out_of_domain_dummy_conditions_are_refused(fake_zone: FakeZone, sql: str) -> None:
    assert refused(fake_zone, sql) == {"OUT_OF_DOMAIN"}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM (SELECT * FROM bank) AS t",
        "WITH t AS (SELECT segment FROM bank) SELECT COUNT(*) FROM t",
        "SELECT COUNT(*) FROM bank UNION SELECT COUNT(*) FROM shop",
        "SELECT segment, COUNT(*) OVER (PARTITION BY segment) FROM bank",
        "SELECT COUNT(*), (SELECT MAX(balance) FROM bank) FROM bank",
        "SELECT COUNT(*) FROM bank WHERE age IN (SELECT age FROM bank WHERE segment = 'new')",
        "SELECT COUNT(*) FROM bank WHERE EXISTS (SELECT 1 FROM shop)",
    ],
)
def test_subquery_cte_union_window_are_isolated(fake_zone: FakeZone, sql: str) -> None:
    assert rejected(fake_zone, sql) in {"CONSTRUCT_NOT_ALLOWED", "NOT_A_SELECT"}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT segment, SUM(CASE WHEN age = 37 THEN 1000000 ELSE 0 END) FROM bank GROUP BY segment",
        "SELECT segment, SUM(balance * 1000000) FROM bank GROUP BY segment",
        "SELECT segment, AVG(IF(age = 37, balance, 0)) FROM bank GROUP BY segment",
    ],
)
def test_case_magnifier_inside_aggregates_is_refused(fake_zone: FakeZone, sql: str) -> None:
    assert rejected(fake_zone, sql) == "CONSTRUCT_NOT_ALLOWED"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM bank WHERE 1 / (age - 37) = 1",
        "SELECT COUNT(*) FROM bank WHERE CAST(segment AS INTEGER) = 1",
        "SELECT COUNT(*) FROM bank WHERE age = balance",
        "SELECT COUNT(*) FROM bank WHERE sqrt(age - 40) > 1",
    ],
)
def test_error_oracles_are_refused(fake_zone: FakeZone, sql: str) -> None:
    assert rejected(fake_zone, sql) == "CONSTRUCT_NOT_ALLOWED"


def test_runtime_errors_do_not_depend_on_data() -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 'Alice Secret' AS name")
    with pytest.raises(InvalidInputError) as info:
        execute(con, "SELECT CAST(name AS INTEGER) FROM t", timeout_s=5, max_rows=10)
    assert info.value.message == RUNTIME_FAILURE
    assert "Alice" not in str(info.value)
    with pytest.raises(InvalidInputError) as info:
        execute(con, "SELECT error(name) FROM t", timeout_s=5, max_rows=10)
    assert info.value.message == RUNTIME_FAILURE
    con.close()


def test_timeout_and_row_cap() -> None:
    import duckdb

    con = duckdb.connect()
    with pytest.raises(InvalidInputError, match="longer than"):
        execute(con, "SELECT COUNT(*) FROM range(100000000000)", timeout_s=0.2, max_rows=1)
    with pytest.raises(InvalidInputError, match="more than 3 rows"):
        execute(con, "SELECT * FROM range(10)", timeout_s=5, max_rows=3)
    con.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pid, COUNT(*) FROM bank GROUP BY pid",
        "SELECT COUNT(*) FROM bank WHERE pid = 'p00001'",
        "SELECT b.segment, COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid "
        "WHERE s.pid > 'p00500' GROUP BY b.segment",
    ],
)
def test_grouping_or_filtering_on_join_keys_is_refused(fake_zone: FakeZone, sql: str) -> None:
    assert "JOIN_KEY_MISUSE" in refused(fake_zone, sql)


def test_joining_on_a_non_key_is_refused(fake_zone: FakeZone) -> None:
    codes = refused(
        fake_zone, "SELECT COUNT(*) FROM bank b JOIN shop s ON b.segment = s.shop_segment"
    )
    assert "JOIN_NOT_ALLOWED" in codes


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM bank; DROP TABLE bank",
        "DROP TABLE bank",
        "INSERT INTO bank VALUES (1)",
        "ATTACH 'x.db' AS x",
        "PRAGMA database_list",
        "COPY bank TO '/tmp/x.csv'",
        "SELECT COUNT(*) FROM information_schema.tables",
        "SELECT COUNT(*) FROM duckdb_tables()",
        "SELECT COUNT(*) FROM read_csv('/etc/passwd')",
        "SELECT COUNT(*) FROM '/etc/passwd'",
        "SELECT COUNT(*) FROM main.bank",
        "SELECT COUNT(*) FROM bank WHERE segment = 'x' -- ' OR 1=1",
        "SELECT getenv('HOME'), COUNT(*) FROM bank",
    ],
)
def test_injection_and_catalogue_access_are_refused(fake_zone: FakeZone, sql: str) -> None:
    with pytest.raises((QueryRejected, PolicyRefusal)) as info:
        fake_zone.submit("analyst", {"sql": sql})
    if isinstance(info.value, PolicyRefusal):  # the comment trick is just an unknown segment
        assert {r.code for r in info.value.reasons} == {"OUT_OF_DOMAIN"}


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        # unquoted names fold case (SQL standard: tests/sql/test_familiar_sql.py); quoted
        # ones, look-alike letters and invisible characters never match
        ('SELECT COUNT(*) FROM "Bank"', "UNKNOWN_TABLE"),
        ("SELECT COUNT(*) FROM b\u0430nk", "UNKNOWN_TABLE"),  # Cyrillic a
        ('SELECT COUNT(*) FROM "bank "', "UNKNOWN_TABLE"),
        ('SELECT "Segment", COUNT(*) FROM bank GROUP BY 1', "UNKNOWN_COLUMN"),
        ('SELECT "segment\u200b", COUNT(*) FROM bank GROUP BY 1', "UNKNOWN_COLUMN"),
        ("SELECT x.segment, COUNT(*) FROM bank GROUP BY x.segment", "UNKNOWN_TABLE"),
    ],
)
def test_identifier_tricks_resolve_to_unknown(fake_zone: FakeZone, sql: str, code: str) -> None:
    assert rejected(fake_zone, sql) == code


def test_disallowed_aggregates_and_identifiers(fake_zone: FakeZone) -> None:
    assert "AGGREGATE_NOT_ALLOWED" in refused(fake_zone, "SELECT MAX(balance) FROM bank")
    assert "COLUMN_NOT_ALLOWED" in refused(fake_zone, "SELECT COUNT(name) FROM bank")
    assert "COLUMN_NOT_ALLOWED" in refused(fake_zone, "SELECT COUNT(*) FROM bank WHERE name = 'x'")


def test_min_max_allowed_when_the_agreement_says_so() -> None:
    rules = {"analysis": "aggregation", "min_group_size": 5, "aggregates": {"balance": ["MAX"]}}
    zone = make_fake_zone(rules, rules)
    out = zone.submit("analyst", {"sql": "SELECT segment, MAX(balance) FROM bank GROUP BY segment"})
    assert len(out["rows"]) == 3


def test_most_restrictive_min_group_size_wins() -> None:
    zone = make_fake_zone(
        {"analysis": "aggregation", "min_group_size": 5},
        {"analysis": "aggregation", "min_group_size": 100},
    )
    sql = "SELECT b.segment, COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid GROUP BY b.segment"
    out = zone.submit("analyst", {"sql": sql})
    assert out["min_group_size"] == 100
    assert all(row[1] >= 100 for row in out["rows"])
    assert len(out["rows"]) < 3  # some segment falls under 100 people


def test_arithmetic_on_suppressed_groups_cannot_fail(fake_zone: FakeZone) -> None:
    """An overflow that happens only for a group under the threshold is never evaluated."""
    sql = "SELECT segment, 9223372036854775807 + (5 - COUNT(*)) AS probe FROM bank GROUP BY segment"
    con = fake_zone.as_party("analyst").connection()
    import duckdb

    with pytest.raises(duckdb.Error):  # the oracle works on the raw engine ('new' has 1 row)
        con.sql(sql).fetchall()
    con.close()
    out = fake_zone.submit("analyst", {"sql": sql})
    assert {row[0] for row in out["rows"]} == {"gold", "silver", "bronze"}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM bank WHERE region = 5",
        "SELECT COUNT(*) FROM bank WHERE age = 'forty'",
        "SELECT COUNT(*) FROM bank WHERE age IN (30, '31')",
    ],
)
def test_literal_type_mismatch_is_refused(fake_zone: FakeZone, sql: str) -> None:
    """Casting every row's value to the literal's type could fail data-dependently."""
    assert rejected(fake_zone, sql) == "TYPE_MISMATCH"


def test_owner_may_use_own_columns_but_not_join_keys() -> None:
    zone = make_fake_zone()
    sql = (
        "SELECT b.age, COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid "
        "WHERE b.name <> 'x' GROUP BY b.age"
    )
    with pytest.raises(PolicyRefusal):
        zone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank WHERE name <> 'x'"})
    assert zone.submit("bank", {"sql": sql})["analysis"] == "aggregation"
    with pytest.raises(PolicyRefusal) as info:
        zone.submit(
            "bank",
            {
                "sql": "SELECT b.pid, COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid GROUP BY b.pid"
            },
        )
    assert "JOIN_KEY_MISUSE" in {r.code for r in info.value.reasons}


def test_sum_of_text_is_refused_and_booleans_count(fake_zone: FakeZone) -> None:
    assert rejected(fake_zone, "SELECT SUM(segment) FROM bank") == "TYPE_MISMATCH"


def test_two_agreements_on_one_dataset_keep_what_both_allow() -> None:
    from collabzone.techniques.sql._rules import merge

    eff = merge(
        {
            "bank": [
                {
                    "analysis": ["aggregation", "dp"],
                    "dimensions": ["segment", "region"],
                    "min_group_size": 5,
                },
                {"analysis": ["dp"], "dimensions": ["segment"], "min_group_size": 20},
            ]
        }
    )
    assert eff.of("bank")["analysis"] == ["dp"]
    assert eff.of("bank")["dimensions"] == ["segment"]
    assert eff.min_group_size == 20
