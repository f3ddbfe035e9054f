"""Row-level lists (overlap only, named recipient) and pre-approved templates."""

from __future__ import annotations

import pytest

from collabzone.errors import PolicyRefusal
from collabzone.techniques.sql import QueryRejected
from tests.sql.sql_support import make_fake_zone

LIST_BANK = {"analysis": ["aggregation", "list"], "min_group_size": 5, "list_recipients": ["shop"]}
LIST_SHOP = {
    "analysis": ["aggregation", "list"],
    "min_group_size": 5,
    "list_columns": ["token"],
    "list_recipients": ["shop"],
}
SEGMENT_LIST = (
    "SELECT s.token FROM shop s JOIN bank b ON s.pid = b.pid WHERE b.segment = 'gold' ORDER BY 1"
)


def test_partner_gets_its_own_tokens_in_a_segment() -> None:
    zone = make_fake_zone(LIST_BANK, LIST_SHOP)
    payload, outcome = zone.submit_outcome("shop", {"sql": SEGMENT_LIST})
    bank, shop = zone.tables["bank"].to_pylist(), zone.tables["shop"].to_pylist()
    gold = {r["pid"] for r in bank if r["segment"] == "gold"}
    expected = sorted(r["token"] for r in shop if r["pid"] in gold)
    assert [row[0] for row in payload["rows"]] == expected
    assert outcome.released_to == ("shop",)


def test_list_refused_to_other_parties_and_columns() -> None:
    zone = make_fake_zone(LIST_BANK, LIST_SHOP)
    with pytest.raises(PolicyRefusal) as info:
        zone.submit("analyst", {"sql": SEGMENT_LIST})
    assert "LIST_RECIPIENT" in {r.code for r in info.value.reasons}
    with pytest.raises(PolicyRefusal) as info:
        zone.submit("shop", {"sql": "SELECT b.segment FROM shop s JOIN bank b ON s.pid = b.pid"})
    assert "COLUMN_NOT_ALLOWED" in {r.code for r in info.value.reasons}
    with pytest.raises(PolicyRefusal) as info:
        zone.submit("shop", {"sql": "SELECT token FROM shop"})
    assert "LIST_NEEDS_OVERLAP" in {r.code for r in info.value.reasons}


def test_small_list_is_suppressed() -> None:
    zone = make_fake_zone(LIST_BANK, LIST_SHOP)
    sql = "SELECT s.token FROM shop s JOIN bank b ON s.pid = b.pid WHERE b.segment = 'new'"
    payload = zone.submit("shop", {"sql": sql})
    assert payload["rows"] == []
    assert "suppressed" in payload["notes"][0]


TEMPLATE_RULES = {
    "analysis": ["template"],
    "min_group_size": 5,
    "templates": {
        "conversion_by_age": {
            "sql": "SELECT segment, COUNT(*) AS n, AVG(converted) AS rate FROM bank "
            "WHERE age >= :min_age AND region = :region GROUP BY segment",
            "params": {
                "min_age": {"type": "integer", "min": 18, "max": 80},
                "region": {"type": "string", "values": ["north", "south", "east", "west"]},
            },
        }
    },
}


def test_template_runs_with_typed_parameters() -> None:
    zone = make_fake_zone(TEMPLATE_RULES, TEMPLATE_RULES)
    payload = zone.submit(
        "analyst", {"template": "conversion_by_age", "params": {"min_age": 30, "region": "north"}}
    )
    assert payload["columns"] == ["segment", "n", "rate"]
    assert all(row[1] >= 5 for row in payload["rows"])


@pytest.mark.parametrize(
    "params",
    [
        {"min_age": 10, "region": "north"},
        {"min_age": "30", "region": "north"},
        {"min_age": 30.5, "region": "north"},
        {"min_age": 30, "region": "north' OR '1'='1"},
        {"min_age": 30},
        {"min_age": 30, "region": "north", "extra": 1},
    ],
)
def test_template_parameters_are_checked(params: dict[str, object]) -> None:
    zone = make_fake_zone(TEMPLATE_RULES, TEMPLATE_RULES)
    with pytest.raises(QueryRejected) as info:
        zone.submit("analyst", {"template": "conversion_by_age", "params": params})
    assert info.value.reason == "BAD_PARAMETER"


def test_free_sql_refused_where_only_templates_are_allowed() -> None:
    zone = make_fake_zone(TEMPLATE_RULES, TEMPLATE_RULES)
    with pytest.raises(PolicyRefusal) as info:
        zone.submit("analyst", {"sql": "SELECT segment, COUNT(*) FROM bank GROUP BY segment"})
    assert {r.code for r in info.value.reasons} == {"ANALYSIS_NOT_ALLOWED"}
    with pytest.raises(QueryRejected):
        zone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank WHERE age > :x"})


def test_list_with_aggregates_is_refused() -> None:
    zone = make_fake_zone(LIST_BANK, LIST_SHOP)
    sql = "SELECT COUNT(*) FROM shop s JOIN bank b ON s.pid = b.pid"
    with pytest.raises(PolicyRefusal) as info:
        zone.submit("shop", {"sql": sql, "analysis": "list"})
    assert "BAD_SHAPE" in {r.code for r in info.value.reasons}
