"""Governed SQL through the real zone: release, differencing refusal, DP budgets, CLI price.

The concurrency test (50 DP requests at once must never overspend the ledger) runs on
PostgreSQL when COLLABZONE_TEST_POSTGRES_URL is set, and on SQLite otherwise.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from collabzone.model import RequestStatus
from collabzone.zone import Zone, connect
from tests.conftest import Parties

BANK_SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "segment", "type": "string", "class": "dimension",
         "domain": ["gold", "silver", "bronze", "new"]},
        {"name": "converted", "type": "integer", "class": "measure", "domain": {"min": 0, "max": 1}},
    ]
}  # fmt: skip
PARTNER_SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "partner_segment", "type": "string", "class": "dimension",
         "domain": ["sport", "home", "kids"]},
    ]
}  # fmt: skip
CONVERSION = (
    "SELECT p.partner_segment, COUNT(*) AS customers, AVG(b.converted) AS conversion "
    "FROM bank b JOIN partner p ON b.token = p.token GROUP BY p.partner_segment"
)


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _populate(parties: Parties, tmp: Path, *, dp_budget: float | None = None) -> None:
    rng = random.Random(3)
    bank_rows = []
    for i in range(400):
        segment = "new" if i == 0 else rng.choice(["gold", "silver", "bronze"])
        bank_rows.append(f"t{i},{segment},{rng.randint(0, 1)}")
    partner_rows = [f"t{i},{rng.choice(['sport', 'home', 'kids'])}" for i in range(0, 600, 2)]
    parties.bank.add_dataset(
        "bank", _write(tmp / "bank.csv", "token,segment,converted", bank_rows), BANK_SPEC
    )
    parties.partner.add_dataset(
        "partner", _write(tmp / "partner.csv", "token,partner_segment", partner_rows), PARTNER_SPEC
    )
    rules: dict[str, Any] = {"analysis": ["aggregation", "dp"], "min_group_size": 5,
                             "max_rows_per_entity": 1, "max_groups_per_entity": 1}  # fmt: skip
    if dp_budget is not None:
        rules["epsilon_budget"] = dp_budget
    for owner, dataset in ((parties.bank, "bank"), (parties.partner, "partner")):
        grantees = ["partner"] if dataset == "bank" else ["bank"]
        owner.add_agreement(dataset, grantees=grantees, technique="sql", purposes=["marketing"],
                            rules=rules)  # fmt: skip


def _ask(zone: Zone, spec: dict[str, Any]) -> Any:
    request = zone.submit("sql", spec, "marketing")
    assert not isinstance(request, dict)
    return request


@pytest.fixture
def populated(make_zone: Callable[[str | None], Parties], tmp_path: Path) -> Parties:
    parties = make_zone(None)
    _populate(parties, tmp_path, dp_budget=1.0)
    return parties


def test_conversion_by_partner_segment_is_released(populated: Parties) -> None:
    request = _ask(populated.bank, {"sql": CONVERSION})
    assert request.status == RequestStatus.RELEASED, request.reasons
    release = populated.bank.result(request.id)
    assert release.payload["columns"] == ["partner_segment", "customers", "conversion"]
    assert {row[0] for row in release.payload["rows"]} <= {"sport", "home", "kids"}
    assert "_monitor" not in release.payload


def test_small_group_suppressed_and_the_total_cannot_give_it_away(populated: Parties) -> None:
    by_segment = "SELECT b.segment, COUNT(*) FROM bank b JOIN partner p ON b.token = p.token GROUP BY b.segment"
    first = _ask(
        populated.partner,
        {"sql": "SELECT COUNT(*) FROM bank b JOIN partner p ON b.token = p.token"},
    )
    assert first.status == RequestStatus.RELEASED
    total = populated.partner.result(first.id).payload["rows"][0][0]
    second = _ask(populated.partner, {"sql": by_segment})
    assert second.status == RequestStatus.RELEASED
    shown = populated.partner.result(second.id).payload["rows"]
    # the groups left out (small, plus one more to cover them) hold at least the minimum
    assert total - sum(row[1] for row in shown) >= 5


def test_dp_query_spends_budget_until_exhausted(populated: Parties) -> None:
    spec = {"sql": "SELECT p.partner_segment, COUNT(*) FROM bank b JOIN partner p "
                   "ON b.token = p.token GROUP BY p.partner_segment", "epsilon": 0.6}  # fmt: skip
    price = populated.partner.submit("sql", spec, "marketing", dry_run=True)
    assert isinstance(price, dict) and not price["would_be_refused"]
    assert price["plan"]["cost"]["bank"]["epsilon"] == 0.6
    first = _ask(populated.partner, spec)
    assert first.status == RequestStatus.RELEASED, first.reasons
    receipt = populated.partner.receipt(first.id)
    assert receipt.budget_spent["bank"]["epsilon"] == 0.6
    spec2 = {**spec, "epsilon": 0.5}
    second = _ask(populated.partner, spec2)
    assert second.status == RequestStatus.REFUSED
    assert any("BUDGET" in r for r in second.reasons)


def test_bad_epsilon_leaves_no_ledger_row(populated: Parties) -> None:
    for bad in (-1, 0, float("nan"), float("inf")):
        request = _ask(populated.partner, {"sql": "SELECT COUNT(*) FROM bank", "epsilon": bad})
        assert request.status == RequestStatus.REFUSED
        assert any("INVALID_INPUT" in r for r in request.reasons)
    assert populated.partner.budget() == []
    ok = _ask(populated.partner, {"sql": "SELECT COUNT(*) FROM bank", "epsilon": 0.1})
    assert ok.status == RequestStatus.RELEASED, ok.reasons
    (row,) = populated.partner.budget()
    assert row["debits"] == 1 and row["spent"]["epsilon"] == 0.1


@pytest.mark.slow
def test_fifty_concurrent_dp_requests_never_overspend(
    make_zone: Callable[[str | None], Parties], tmp_path: Path, db_url: str | None
) -> None:
    parties = make_zone(db_url)
    _populate(parties, tmp_path, dp_budget=1.0)
    token = parties.tokens["partner"]
    spec = {
        "sql": "SELECT COUNT(*) FROM bank b JOIN partner p ON b.token = p.token",
        "epsilon": 0.1,
    }

    # one handle per request, opened first: opening runs the schema migration, which is
    # not meant to run from many threads at once; the requests themselves race.
    zones = [connect(parties.root, token, db_url=db_url) for _ in range(50)]

    def one(i: int) -> str:
        request = zones[i].submit("sql", {**spec, "alpha": 0.05 + i * 1e-4}, "marketing")
        assert not isinstance(request, dict)
        return request.status.value

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(one, range(50)))
    released = statuses.count("released")
    assert released == 10, statuses
    assert statuses.count("refused") + statuses.count("failed") == 40
