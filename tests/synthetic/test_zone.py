"""Through the zone: the synthetic table is released, debited once and registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from collabzone.errors import ConflictError, InvalidInputError
from tests.conftest import Parties

SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {
            "name": "region",
            "type": "string",
            "class": "dimension",
            "domain": ["north", "south", "east"],
        },
        {"name": "plan", "type": "string", "class": "dimension", "domain": ["basic", "gold"]},
        {
            "name": "age",
            "type": "integer",
            "class": "quasi_identifier",
            "domain": {"min": 18, "max": 90},
        },
    ]
}


def _write(path: Path, rows: int) -> Path:
    import random

    rng = random.Random(5)
    lines = ["token,region,plan,age"]
    for i in range(rows):
        region = rng.choice(["north", "south", "east"])
        plan = "gold" if (region == "north") == (rng.random() < 0.8) else "basic"
        lines.append(f"t{i},{region},{plan},{rng.randint(18, 90)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_release_registers_the_synthetic_dataset_with_provenance(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    zone = sqlite_zone
    zone.bank.add_dataset("customers", _write(tmp_path / "c.csv", 300), SPEC)
    zone.bank.add_agreement(
        "customers",
        grantees=["partner"],
        technique="synthetic",
        purposes=["exploration"],
        rules={"methods": ["mst"], "epsilon_budget": 1.5, "delta_budget": 1e-5},
    )
    spec = {"dataset": "customers", "epsilon": 1.0, "delta": 1e-6, "iters": 20, "bins": 4}
    request = zone.partner.submit("synthetic", spec, "exploration")
    released = zone.partner.result(request.id)  # type: ignore[union-attr]
    assert released.payload["columns"] == ["region", "plan", "age"]  # no join key
    assert len(released.payload["rows"]) > 200
    assert released.receipt.budget_spent == {
        "customers": {"epsilon": 1.0, "delta": 1e-6, "rho": 0.0}
    }
    new = {d.name: d for d in zone.partner.datasets()}["customers_synthetic"]
    assert new.owner == "partner" and new.row_count == len(released.payload["rows"])
    events = [e for e in zone.auditor.audit_events() if e["action"] == "dataset.derived"]
    assert len(events) == 1
    assert events[0]["details"]["provenance"]["source"] == "customers"
    assert events[0]["details"]["provenance"]["method"] == "mst"
    assert events[0]["details"]["provenance"]["epsilon"] == 1.0
    # a second request for the same name is refused after the budget check, and the first
    # debit is not repeated: 0.5 left cannot buy another epsilon of 1
    again = zone.partner.submit("synthetic", {**spec, "name": "other"}, "exploration")
    assert zone.partner.request(again.id).status.value in {"refused", "rejected"}  # type: ignore[union-attr]
    with pytest.raises(ConflictError):
        zone.partner.result(again.id)  # type: ignore[union-attr]
    ledger = [b for b in zone.auditor.budget() if b["dataset"] == "customers"]
    assert len(ledger) == 1 and ledger[0]["party"] == "partner"
    assert ledger[0]["spent"]["epsilon"] == 1.0 and ledger[0]["debits"] == 1  # debited once
    assert "customers_synthetic" not in {b["dataset"] for b in zone.auditor.budget()}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"columns": ["token", "region"]}, "identifiers are never synthesised"),
        ({"epsilon": 1e-9}, "epsilon must be"),
        ({"rho": 0.1, "epsilon": 1.0}, "not both"),
        ({"bins": 100000}, "bins must be"),
        ({"method": "ctgan"}, "method must be one of"),
        ({"columns": ["region", "nope"]}, "no column 'nope'"),
        ({"name": "customers"}, "already exists"),
        ({"degree": 2}, "`degree` is an option of aim and privbayes, not of mst"),
        ({"method": "aim", "degree": 5}, "degree of aim must be an integer from 2 to 3"),
        ({"method": "aim", "max_cells": 2.5}, "max_cells of aim must be an integer"),
        ({"method": "aim", "max_model_size": "big"}, "max_model_size of aim must be a number"),
        ({"method": "privbayes", "max_cells": 500}, "is an option of aim, not of privbayes"),
    ],
)
def test_bad_or_hostile_specs_are_refused_before_anything_runs(
    sqlite_zone: Parties, tmp_path: Path, spec: dict[str, object], message: str
) -> None:
    sqlite_zone.bank.add_dataset("customers", _write(tmp_path / "c.csv", 20), SPEC)
    sqlite_zone.bank.add_agreement(
        "customers", grantees=["partner"], technique="synthetic", purposes=["exploration"], rules={}
    )
    full = {"dataset": "customers", "epsilon": 1.0, **spec}
    with pytest.raises(InvalidInputError, match=message):
        sqlite_zone.partner.submit("synthetic", full, "exploration", dry_run=True)


def test_an_agreement_limiting_methods_is_enforced(sqlite_zone: Parties, tmp_path: Path) -> None:
    from collabzone.techniques.base import Plan, Rules
    from collabzone.techniques.synthetic import Synthetic

    plan = Plan(technique="synthetic", datasets=("d",), details={"method": "mst"})
    reasons = Synthetic().check(plan, Rules(by_dataset={}, merged={"methods": []}), None)  # type: ignore[arg-type]
    assert [r.code for r in reasons] == ["METHOD_NOT_ALLOWED"]
    assert Synthetic().check(plan, Rules(by_dataset={}, merged={"methods": ["mst"]}), None) == []  # type: ignore[arg-type]


def test_a_failure_after_measuring_is_charged(
    sqlite_zone: Parties, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collabzone.techniques.synthetic import mst as mst_module

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("estimation diverged")

    monkeypatch.setattr(mst_module, "mst", broken)
    sqlite_zone.bank.add_dataset("customers", _write(tmp_path / "c.csv", 30), SPEC)
    sqlite_zone.bank.add_agreement(
        "customers",
        grantees=["partner"],
        technique="synthetic",
        purposes=["exploration"],
        rules={"epsilon_budget": 2.0, "delta_budget": 1e-5},
    )
    request = sqlite_zone.partner.submit(
        "synthetic", {"dataset": "customers", "epsilon": 0.5}, "exploration"
    )
    assert sqlite_zone.partner.request(request.id).status.value == "failed"  # type: ignore[union-attr]
    ledger = [b for b in sqlite_zone.auditor.budget() if b["dataset"] == "customers"]
    assert ledger[0]["spent"]["epsilon"] == 0.5


def test_aim_requests_run_aim_and_are_debited_once(
    sqlite_zone: Parties, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dispatch and accounting through the zone; AIM itself is tested in test_aim (here a
    stand-in returns MST's table as AIM's so the zone test stays short)."""
    from collabzone.techniques.synthetic import aim as aim_module
    from collabzone.techniques.synthetic import mst as mst_module

    calls: list[float] = []

    options: list[dict[str, object]] = []

    def quick_aim(codes, shape, rho, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(rho)
        options.append({k: kwargs[k] for k in ("degree", "max_cells", "max_model_size")})
        done = mst_module.mst(codes, shape, rho, rows=kwargs["rows"], iters=20, seed=1)
        return aim_module.AIMResult(done.codes, done.spend, done.tree, 0.0, done.measurements)

    monkeypatch.setattr(aim_module, "aim", quick_aim)
    sqlite_zone.bank.add_dataset("customers", _write(tmp_path / "c.csv", 200), SPEC)
    sqlite_zone.bank.add_agreement(
        "customers",
        grantees=["partner"],
        technique="synthetic",
        purposes=["exploration"],
        rules={"methods": ["aim"], "epsilon_budget": 1.0, "delta_budget": 1e-5},
    )
    spec = {"dataset": "customers", "method": "aim", "epsilon": 0.8, "bins": 4,
            "degree": 2, "max_cells": 500, "max_model_size": 2.5}  # fmt: skip
    price = sqlite_zone.partner.submit("synthetic", spec, "exploration", dry_run=True)
    assert isinstance(price, dict)  # what the owners see: the method's options in the plan
    assert "degree=2, max_cells=500, max_model_size=2.5" in price["plan"]["outputs"]
    assert price["plan"]["details"]["options"] == {"degree": 2, "max_cells": 500,
                                                   "max_model_size": 2.5}  # fmt: skip
    request = sqlite_zone.partner.submit("synthetic", spec, "exploration")
    released = sqlite_zone.partner.result(request.id)  # type: ignore[union-attr]
    assert len(calls) == 1 and released.payload["method"] == "aim"
    assert options == [{"degree": 2, "max_cells": 500, "max_model_size": 2.5}]
    assert "measured" in released.payload and "tree" not in released.payload
    privacy = released.payload["report"]["privacy"]
    assert privacy["rho_spent"] == pytest.approx(calls[0], rel=1e-9)
    ledger = [b for b in sqlite_zone.auditor.budget() if b["dataset"] == "customers"]
    assert ledger[0]["spent"]["epsilon"] == 0.8 and ledger[0]["debits"] == 1
    mst_only = sqlite_zone.partner.submit(
        "synthetic",
        {"dataset": "customers", "method": "mst", "name": "b", "epsilon": 0.1},
        "exploration",
    )
    assert sqlite_zone.partner.request(mst_only.id).status.value in {"refused", "rejected"}  # type: ignore[union-attr]
