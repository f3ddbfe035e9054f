"""Synthetic data of a join over linked tokens: every owner agrees, approves and pays, and a
person counts once however many rows an owner's side holds for them."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collabzone.errors import InvalidInputError
from collabzone.techniques.synthetic.join import Source, bounded_join, one_row_per_person
from tests.conftest import Parties

CUSTOMERS = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "region", "type": "string", "class": "dimension", "domain": ["n", "s", "e"]},
        {"name": "plan", "type": "string", "class": "dimension", "domain": ["basic", "gold"]},
    ]
}
POLICIES = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "cover", "type": "string", "class": "dimension", "domain": ["low", "high"]},
        {"name": "plan", "type": "string", "class": "dimension", "domain": ["basic", "gold"]},
    ]
}


def _customers(path: Path, people: int, victim_region: str | None = None) -> Path:
    rng = random.Random(3)
    lines = ["token,region,plan"]
    for i in range(people):
        lines.append(f"t{i},{rng.choice(['n', 's'])},{rng.choice(['basic', 'gold'])}")
    if victim_region is not None:
        lines.append(f"victim,{victim_region},gold")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _policies(path: Path, people: int, victim_rows: int = 0) -> Path:
    rng = random.Random(4)
    lines = ["token,cover,plan"]
    for i in range(0, people + 40, 1):  # 40 policy holders are not customers
        token = f"t{i}" if i < people else f"p{i}"
        lines.append(f"{token},{rng.choice(['low', 'high'])},{rng.choice(['basic', 'gold'])}")
    lines += ["victim,high,gold"] * victim_rows
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _agree(zone: Parties, epsilon_budget: float) -> None:
    for owner, dataset in ((zone.bank, "customers"), (zone.insurer, "policies")):
        owner.add_agreement(
            dataset,
            grantees=["partner"],
            technique="synthetic",
            purposes=["research"],
            rules={"methods": ["mst"], "epsilon_budget": epsilon_budget, "delta_budget": 1e-5},
            approval="manual",
        )


def test_a_join_over_linked_tokens_needs_every_owner_and_charges_each(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    zone = sqlite_zone
    zone.bank.add_dataset("customers", _customers(tmp_path / "c.csv", 150), CUSTOMERS)
    zone.insurer.add_dataset("policies", _policies(tmp_path / "p.csv", 150), POLICIES)
    _agree(zone, 1.5)
    spec = {
        "datasets": ["customers", "policies"],
        "epsilon": 1.0,
        "iters": 20,
        "name": "joined",
    }
    request = zone.partner.submit("synthetic", spec, "research")
    assert zone.partner.request(request.id).status.value == "awaiting_approval"  # type: ignore[union-attr]
    zone.bank.approve(request.id, "ok")  # type: ignore[union-attr]
    assert zone.partner.request(request.id).status.value == "awaiting_approval"  # type: ignore[union-attr]
    zone.insurer.approve(request.id, "ok")  # type: ignore[union-attr]
    released = zone.partner.result(request.id)  # type: ignore[union-attr]
    # `plan` is in both: qualified by its dataset; the tokens are never synthesised
    assert released.payload["columns"] == ["region", "customers_plan", "cover", "policies_plan"]
    assert 100 < len(released.payload["rows"]) < 200  # ~150 linked people, not 190 policies
    assert released.receipt.budget_spent == {
        "customers": {"epsilon": 1.0, "delta": 1e-6, "rho": 0.0},
        "policies": {"epsilon": 1.0, "delta": 1e-6, "rho": 0.0},
    }
    ledger = {b["dataset"]: b for b in zone.auditor.budget()}
    for dataset in ("customers", "policies"):
        assert ledger[dataset]["spent"]["epsilon"] == 1.0 and ledger[dataset]["debits"] == 1
    (event,) = [e for e in zone.auditor.audit_events() if e["action"] == "dataset.derived"]
    sources = event["details"]["provenance"]["sources"]
    assert [(s["dataset"], s["token"]) for s in sources] == [
        ("customers", "token"),
        ("policies", "token"),
    ]


def test_an_owner_repeating_a_person_cannot_weigh_them_up(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """The attack: the insurer holds 3,000 rows for the victim, the only customer in region
    "e", to make the synthetic table say "e" loudly (unbounded, 3,000 of ~3,100 joined rows
    would be the victim's). Bounded, the victim is one row among ~100: "e" stays at noise."""
    zone = sqlite_zone
    zone.bank.add_dataset(
        "customers", _customers(tmp_path / "c.csv", 100, victim_region="e"), CUSTOMERS
    )
    zone.insurer.add_dataset(
        "policies", _policies(tmp_path / "p.csv", 100, victim_rows=3000), POLICIES
    )
    _agree(zone, 10.0)
    spec = {"datasets": ["customers", "policies"], "epsilon": 10.0, "iters": 20}
    request = zone.partner.submit("synthetic", spec, "research")
    zone.bank.approve(request.id, "ok")  # type: ignore[union-attr]
    zone.insurer.approve(request.id, "ok")  # type: ignore[union-attr]
    released = zone.partner.result(request.id)  # type: ignore[union-attr]
    rows = pd.DataFrame(released.payload["rows"], columns=released.payload["columns"])
    assert len(rows) < 150
    assert (rows["region"] == "e").mean() < 0.1
    (region,) = [m for m in released.payload["report"]["one_way"] if m["column"] == "region"]
    assert region["labels"][2] == "e" and region["measured"][2] < 0.1  # one row, plus noise


def test_one_dataset_with_an_entity_column_is_bounded_per_person_too(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """The same attack without a join: the insurer's own dataset repeats the victim 3,000
    times. Synthesised alone it is still bounded to one row per token (its join key), so the
    released table is the ~190 policy holders, not 3,190 rows mostly the victim's."""
    zone = sqlite_zone
    zone.insurer.add_dataset(
        "policies", _policies(tmp_path / "p.csv", 150, victim_rows=3000), POLICIES
    )
    zone.insurer.add_agreement(
        "policies", grantees=["partner"], technique="synthetic", purposes=["research"],
        rules={"methods": ["mst"], "epsilon_budget": 10.0, "delta_budget": 1e-5},
    )  # fmt: skip
    spec = {"dataset": "policies", "epsilon": 10.0, "iters": 20}
    request = zone.partner.submit("synthetic", spec, "research")
    released = zone.partner.result(request.id)  # type: ignore[union-attr]
    rows = pd.DataFrame(released.payload["rows"], columns=released.payload["columns"])
    assert 150 < len(rows) < 250  # 191 people (noise of a few rows at epsilon 10)
    assert (rows["cover"] == "high").mean() < 0.8  # unbounded, 3,000 of 3,190 rows say high


def test_one_row_per_person_keeps_order_and_tokenless_rows() -> None:
    frame = pd.DataFrame({"k": ["a", None, "a", "b", "a"], "x": [1, 2, 3, 4, 5]})
    unique = frame.drop_duplicates(subset=["k"])
    assert one_row_per_person(unique, "k", np.random.default_rng(0)) is unique  # untouched
    kept = set()
    for seed in range(30):
        out = one_row_per_person(frame, "k", np.random.default_rng(seed))
        assert sorted(out["k"].fillna("-")) == ["-", "a", "b"]
        assert list(out.index) == sorted(out.index)  # the original order
        assert 2 in set(out["x"]) and 4 in set(out["x"])
        kept.add(int(out.loc[out["k"] == "a", "x"].iloc[0]))
    assert kept == {1, 3, 5}


def test_each_side_keeps_one_random_row_per_token() -> None:
    left = pd.DataFrame({"k": ["a", "a", "a", "b", None], "x": [1, 2, 3, 4, 5]})
    right = pd.DataFrame({"k": ["a", "b", "b", "c"], "y": [6, 7, 8, 9]})
    sources = [Source("l", "k", (("x", "x"),)), Source("r", "k", (("y", "y"),))]
    kept = set()
    for seed in range(30):
        joined = bounded_join({"l": left, "r": right}, sources, np.random.default_rng(seed))
        assert len(joined) == 2  # a and b, once each; c and the null token do not link
        kept.add(int(joined.loc[joined["y"] == 6, "x"].iloc[0]))
    assert kept == {1, 2, 3}  # the row kept is random, not always the first


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"datasets": ["customers"]}, "two or more"),
        ({"datasets": ["customers", "customers"]}, "once"),
        ({"dataset": "customers", "datasets": ["customers", "policies"]}, "or `datasets`"),
        ({"on": {"customers": "region"}}, "not one of its join_key"),
        ({"on": {"claims": "token"}}, "not joined"),
        ({"columns": ["plan", "cover"]}, "write it as <dataset>.plan"),
        ({"columns": ["customers.token", "cover"]}, "never synthesised"),
    ],
)
def test_bad_join_specs_are_refused_before_anything_runs(
    sqlite_zone: Parties, tmp_path: Path, spec: dict[str, object], message: str
) -> None:
    zone = sqlite_zone
    zone.bank.add_dataset("customers", _customers(tmp_path / "c.csv", 5), CUSTOMERS)
    zone.insurer.add_dataset("policies", _policies(tmp_path / "p.csv", 5), POLICIES)
    _agree(zone, 1.0)
    full = {"datasets": ["customers", "policies"], "epsilon": 1.0, **spec}
    with pytest.raises(InvalidInputError, match=message):
        zone.partner.submit("synthetic", full, "research", dry_run=True)
