"""Issue 20 §1-2: list and template rules hold on the neighbouring paths that broke them."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collabzone.errors import PolicyRefusal
from collabzone.techniques.sql import QueryRejected
from tests.sql.sql_support import (
    BANK,
    SHOP,
    FakeZone,
    agreement,
    bank_people,
    col,
    dataset,
    shop_people,
)

LIST = {"analysis": ["aggregation", "list", "template"], "min_group_size": 5,
        "list_recipients": ["shop", "bank"], "list_columns": ["token", "segment", "shop_segment"]}  # fmt: skip


def zone_of(bank_rules: dict[str, Any], shop_rules: dict[str, Any]) -> FakeZone:
    return FakeZone(
        datasets={"bank": BANK, "shop": SHOP},
        agreements=[agreement("bank", "bank", bank_rules), agreement("shop", "shop", shop_rules)],
        tables={"bank": bank_people(), "shop": shop_people()},
    )


def codes(zone: FakeZone, party: str, spec: dict[str, Any]) -> set[str]:
    with pytest.raises(PolicyRefusal) as info:
        zone.submit(party, spec)
    return {r.code for r in info.value.reasons}


# -- §1 list rules ---------------------------------------------------------------------


def test_a_list_of_a_dataset_joined_with_itself_is_not_an_overlap() -> None:
    """Found: `shop s JOIN shop t` counted as an overlap and listed people not in the
    bank at all."""
    zone = zone_of(LIST, LIST)
    sql = "SELECT s.token FROM shop s JOIN shop t ON s.pid = t.pid WHERE s.shop_segment = 'kids'"
    assert codes(zone, "bank", {"sql": sql}) & {"SELF_JOIN", "LIST_NEEDS_OVERLAP"}


def test_a_list_joined_through_an_unlisted_key_is_refused() -> None:
    """Found: join_keys: [link_email] did not stop a join on link_phone."""
    people = [col("pid", "string", "join_key"), col("phone", "string", "join_key"),
              col("token", "string", "other")]  # fmt: skip
    shop = dataset("shop", "shop", people, 3)
    bank = dataset("bank", "bank", [col("pid", "string", "join_key"),
                                    col("phone", "string", "join_key")], 3)  # fmt: skip
    rows = {"pid": ["a", "b", "c"], "phone": ["1", "2", "3"], "token": ["x", "y", "z"]}
    zone = FakeZone(
        datasets={"bank": bank, "shop": shop},
        agreements=[
            agreement("bank", "bank", {**LIST, "join_keys": ["pid"], "min_group_size": 1}),
            agreement("shop", "shop", {**LIST, "join_keys": ["pid"], "min_group_size": 1}),
        ],
        tables={"bank": pa.table({k: rows[k] for k in ("pid", "phone")}), "shop": pa.table(rows)},
    )
    by_phone = "SELECT s.token FROM shop s JOIN bank b ON s.phone = b.phone"
    assert "JOIN_NOT_ALLOWED" in codes(zone, "analyst", {"sql": by_phone, "analysis": "list"})
    by_pid = "SELECT s.token FROM shop s JOIN bank b ON s.pid = b.pid"
    assert zone.submit("shop", {"sql": by_pid})["rows"]  # the listed key still works


def test_an_owner_may_list_its_own_columns_for_the_overlap() -> None:
    """Found: COLUMN_NOT_ALLOWED ... (owner bank) for the bank's own column."""
    zone = zone_of({**LIST, "list_columns": []}, {**LIST, "list_columns": ["token"]})
    sql = "SELECT b.segment, s.shop_segment FROM bank b JOIN shop s ON b.pid = s.pid"
    with pytest.raises(PolicyRefusal) as info:
        zone.submit("bank", {"sql": sql})
    assert {r.owner for r in info.value.reasons} == {"shop"}  # only the partner's column
    ok = zone.submit("bank", {"sql": "SELECT b.segment, s.token FROM bank b JOIN shop s "
                                     "ON b.pid = s.pid"})  # fmt: skip
    assert ok["rows"]


THIRD = dataset(
    "third", "third", [col("pid", "string", "join_key"), col("ref", "string", "other"),
                       col("tier", "string", "dimension", ["a", "b"])], 300)  # fmt: skip


def _three_party_zone(
    bank_pids: list[int], shop_pids: list[int], third_pids: list[int]
) -> FakeZone:
    def table(ids: list[int], **extra: list[Any]) -> pa.Table:
        return pa.table({"pid": [f"p{i:05d}" for i in ids], **extra})

    bank = bank_people(900)
    keep = pa.array([int(p[1:]) in set(bank_pids) for p in bank.column("pid").to_pylist()])
    rules = {**LIST, "min_group_size": 2, "list_columns": ["token", "ref"],
             "list_recipients": ["analyst"]}  # fmt: skip
    shop_ids = sorted(set(shop_pids))
    return FakeZone(
        datasets={"bank": BANK, "shop": SHOP, "third": THIRD},
        agreements=[agreement(d, d, rules) for d in ("bank", "shop", "third")],
        tables={
            "bank": bank.filter(keep),
            "shop": table(shop_ids, token=[f"t{i}" for i in shop_ids],
                          shop_segment=["kids"] * len(shop_ids), spend=[1.0] * len(shop_ids)),
            "third": table(sorted(set(third_pids)), tier=["a"] * len(set(third_pids)),
                           ref=[f"r{i}" for i in sorted(set(third_pids))]),
        },
    )  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 60), min_size=5, max_size=50),
    st.lists(st.integers(0, 60), min_size=5, max_size=50),
    st.lists(st.integers(0, 60), min_size=5, max_size=50),
    st.sampled_from(["s.token", "t.ref"]),
    st.permutations(["bank b", "shop s", "third t"]),
)
def test_every_listed_row_is_in_every_joined_partys_data(
    bank_ids: list[int], shop_ids: list[int], third_ids: list[int], column: str, order: list[str]
) -> None:
    zone = _three_party_zone(bank_ids, shop_ids, third_ids)
    first, second, third = order
    a, b, c = (x.split()[1] for x in order)
    sql = (
        f"SELECT {column} FROM {first} JOIN {second} ON {a}.pid = {b}.pid "
        f"JOIN {third} ON {b}.pid = {c}.pid"
    )
    rows = zone.submit("analyst", {"sql": sql})["rows"]
    everywhere = set(bank_ids) & set(shop_ids) & set(third_ids)
    listed = {int(row[0][1:]) for row in rows}  # t<i> / r<i> name person i
    assert listed <= everywhere
    assert listed == everywhere or len(everywhere) < 2  # a list under the minimum is empty


# -- §2 templates ------------------------------------------------------------------------

REPORT = {
    "sql": "SELECT b.segment, MAX(s.spend) AS top, COUNT(*) AS n FROM bank b JOIN shop s "
    "ON b.pid = s.pid WHERE s.spend >= :floor GROUP BY b.segment",
    "params": {"floor": {"type": "float", "min": 0, "max": 500}},
}
TEMPLATE = {"analysis": ["aggregation", "template"], "min_group_size": 5}


def test_a_template_of_one_owner_cannot_read_another_owners_columns() -> None:
    """Found: the bank's template read MAX(s.spend), a partner column no partner rule
    allows, and was released; the same body as free SQL broke the partner's rules."""
    zone = zone_of({**TEMPLATE, "templates": {"report": REPORT}}, TEMPLATE)
    spec = {"template": "report", "params": {"floor": 10.0}}
    found = codes(zone, "analyst", spec)
    assert found == {"TEMPLATE_NOT_APPROVED"}
    free = codes(zone, "analyst", {"sql": REPORT["sql"].replace(":floor", "10")})
    assert "AGGREGATE_NOT_ALLOWED" in free or "COLUMN_NOT_ALLOWED" in free


def test_a_template_both_owners_approved_runs_and_keeps_every_other_rule() -> None:
    zone = zone_of(
        {**TEMPLATE, "templates": {"report": REPORT}},
        {**TEMPLATE, "templates": {"report": REPORT}, "min_group_size": 40},
    )
    out = zone.submit("analyst", {"template": "report", "params": {"floor": 10.0}})
    assert out["min_group_size"] == 40  # the partner's stricter minimum still applies
    assert all(row[2] >= 40 for row in out["rows"])


def test_a_template_with_another_body_under_the_same_name_is_refused() -> None:
    other = {**REPORT, "sql": REPORT["sql"].replace("MAX(s.spend)", "MIN(s.spend)")}
    zone = zone_of(
        {**TEMPLATE, "templates": {"report": REPORT}}, {**TEMPLATE, "templates": {"report": other}}
    )
    with pytest.raises(QueryRejected, match="differently"):
        zone.submit("analyst", {"template": "report", "params": {"floor": 10.0}})


def test_a_template_only_the_requester_defines_is_a_refusal() -> None:
    """Found: the template in the requester's own agreement raised and left the request
    in `submitted`; here it is a clean refusal naming the rule."""
    zone = zone_of(TEMPLATE, {**TEMPLATE, "templates": {"report": REPORT}})
    spec = {"template": "report", "params": {"floor": 10.0}}
    assert codes(zone, "shop", spec) == {"TEMPLATE_NOT_APPROVED"}
