"""SQL as analysts write it elsewhere: unquoted names in any case, schema-qualified datasets,
and a hint for T-SQL's TOP (issue 11, "Familiar SQL")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.model import Dataset
from collabzone.techniques.sql import QueryRejected, parse_select, resolve
from tests.sql.sql_support import BANK, SHOP, col, dataset, make_fake_zone

CATALOGUE = [BANK, SHOP]


def _resolved_sql(sql: str, catalogue: list[Dataset] = CATALOGUE) -> str:
    return resolve(parse_select(sql), catalogue).tree.sql(dialect="duckdb")


def test_unquoted_names_match_in_any_case_and_run_like_the_exact_ones() -> None:
    exact = _resolved_sql("SELECT b.region, COUNT(*) AS n FROM bank b GROUP BY b.region")
    shouted = _resolved_sql("SELECT B.REGION, COUNT(*) AS n FROM BANK b GROUP BY b.Region")
    assert shouted == exact  # resolved to the declared names, quoted
    zone = make_fake_zone()
    lower = zone.submit(
        "analyst", {"sql": "SELECT region, COUNT(*) AS n FROM bank GROUP BY region"}
    )
    upper = zone.submit(
        "analyst", {"sql": "SELECT Region, COUNT(*) AS n FROM Bank GROUP BY REGION"}
    )
    assert sorted(map(tuple, upper["rows"])) == sorted(map(tuple, lower["rows"]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=6, max_size=6))
def test_any_casing_of_an_unquoted_name_resolves_to_the_declared_one(flips: list[bool]) -> None:
    name = "".join(c.upper() if f else c for c, f in zip("region", flips, strict=True))
    assert '"region"' in _resolved_sql(f"SELECT {name}, COUNT(*) AS n FROM bank GROUP BY {name}")


def test_quoted_names_stay_exact() -> None:
    with pytest.raises(QueryRejected) as caught:
        _resolved_sql('SELECT "Region" FROM bank')
    assert caught.value.reason == "UNKNOWN_COLUMN"
    with pytest.raises(QueryRejected) as caught:
        _resolved_sql('SELECT region FROM "Bank"')
    assert caught.value.reason == "UNKNOWN_TABLE"


def test_names_that_differ_only_in_case_must_be_quoted() -> None:
    twin = dataset(
        "twins",
        "bank",
        [col("Score", "integer", "measure"), col("score", "integer", "measure")],
        10,
    )
    assert '"score"' in _resolved_sql("SELECT score FROM twins", [twin])  # exact wins
    with pytest.raises(QueryRejected) as caught:
        _resolved_sql("SELECT SCORE FROM twins", [twin])
    assert caught.value.reason == "AMBIGUOUS_NAME"
    assert "Score" in str(caught.value) and "quote" in str(caught.value)


@pytest.mark.parametrize("schema", ["bank", "BANK", "zone"])
def test_a_dataset_may_be_named_in_its_owners_schema_or_the_zone_schema(schema: str) -> None:
    sql = f"SELECT b.region, COUNT(*) AS n FROM {schema}.bank b GROUP BY b.region"
    assert _resolved_sql(sql) == _resolved_sql(
        "SELECT b.region, COUNT(*) AS n FROM bank b GROUP BY b.region"
    )


def test_another_schema_or_a_catalogue_is_refused_naming_the_right_one() -> None:
    with pytest.raises(QueryRejected) as caught:
        _resolved_sql("SELECT COUNT(*) FROM shop.bank")
    assert caught.value.reason == "UNKNOWN_TABLE" and "'bank'" in str(caught.value)
    with pytest.raises(QueryRejected) as caught:
        _resolved_sql("SELECT COUNT(*) FROM db.bank.bank")
    assert "catalogue" in str(caught.value)


@pytest.mark.parametrize(
    "sql", ["SELECT TOP 5 region FROM bank", "select top (10) region from bank",
            "SELECT DISTINCT TOP 3 region FROM bank"],
)  # fmt: skip
def test_t_sql_top_gets_a_hint_to_use_limit(sql: str) -> None:
    with pytest.raises(QueryRejected) as caught:
        parse_select(sql)
    assert "LIMIT" in str(caught.value)


def test_a_column_named_top_is_not_mistaken_for_t_sql() -> None:
    tops = dataset("tops", "bank", [col("top", "string", "dimension", ["a", "b"])], 10)
    assert '"top"' in _resolved_sql("SELECT top, COUNT(*) AS n FROM tops GROUP BY top", [tops])
