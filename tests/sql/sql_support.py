"""An in-memory zone for governed SQL tests: catalogue, agreements, data, history, driver.

The real zone is exercised in test_zone.py; this one lets the technique be tested alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from collabzone.budget import PrivacyCost
from collabzone.errors import PolicyRefusal
from collabzone.model import Agreement, Approval, Column, Dataset, Party, Role
from collabzone.techniques.base import Outcome, Plan, Rules
from collabzone.techniques.sql import GovernedSQL

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SEGMENTS = ["gold", "silver", "bronze", "new"]
REGIONS = ["north", "south", "east", "west"]


def col(name: str, type_: str, class_: str, domain: Any = None) -> Column:
    return Column.model_validate({"name": name, "type": type_, "class": class_, "domain": domain})


def dataset(name: str, owner: str, columns: list[Column], rows: int) -> Dataset:
    return Dataset(
        name=name, owner=owner, columns=tuple(columns), row_count=rows, version=1, created_at=NOW
    )


def agreement(
    ds: str,
    owner: str,
    rules: Mapping[str, Any],
    grantees: tuple[str, ...] = ("analyst", "bank", "shop"),
) -> Agreement:
    return Agreement(id=f"agr-{ds}", dataset=ds, owner=owner, grantees=grantees, technique="sql",
                     purposes=("*",), rules=dict(rules), approval=Approval.AUTO, valid_from=NOW,
                     valid_until=None, created_at=NOW)  # fmt: skip


def bank_people(n: int = 600, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    pid = [f"p{i:05d}" for i in range(n)]
    segment = rng.choice(SEGMENTS[:3], size=n, p=[0.2, 0.5, 0.3]).tolist()
    segment[0] = "new"  # one person alone in a segment: the small cell
    return pa.table({
        "pid": pid,
        "segment": segment,
        "region": rng.choice(REGIONS, size=n).tolist(),
        "age": rng.integers(18, 90, size=n).tolist(),
        "balance": np.round(rng.normal(5000, 2000, size=n), 2).tolist(),
        "converted": rng.integers(0, 2, size=n).tolist(),
        "name": [f"name{i}" for i in range(n)],
    })  # fmt: skip


def shop_people(n: int = 400, seed: int = 8) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = sorted(rng.choice(900, size=n, replace=False).tolist())
    return pa.table({
        "pid": [f"p{i:05d}" for i in ids],
        "token": [f"t{i:05d}" for i in ids],
        "shop_segment": rng.choice(["sport", "home", "kids"], size=n).tolist(),
        "spend": np.round(rng.uniform(0, 500, size=n), 2).tolist(),
    })  # fmt: skip


BANK = dataset("bank", "bank", [
    col("pid", "string", "join_key"),
    col("segment", "string", "dimension", SEGMENTS),
    col("region", "string", "dimension", REGIONS),
    col("age", "integer", "dimension", {"min": 18, "max": 100}),
    col("balance", "float", "measure", {"min": -1000, "max": 20000}),
    col("converted", "integer", "measure", {"min": 0, "max": 1}),
    col("name", "string", "identifier"),
], 600)  # fmt: skip
SHOP = dataset("shop", "shop", [
    col("pid", "string", "join_key"),
    col("token", "string", "other"),
    col("shop_segment", "string", "dimension", ["sport", "home", "kids"]),
    col("spend", "float", "measure", {"min": 0, "max": 500}),
], 400)  # fmt: skip


@dataclass
class FakeZone:
    """Enough of the zone for the technique: catalogue, rules, data, history, budgets."""

    datasets: dict[str, Dataset]
    agreements: list[Agreement]
    tables: dict[str, pa.Table]
    history_log: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ledger: list[tuple[str, str, PrivacyCost]] = field(default_factory=list)
    technique: GovernedSQL = field(default_factory=GovernedSQL)
    audit_states: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def as_party(self, name: str) -> Ctx:
        return Ctx(self, Party(name=name, roles=(Role.ANALYST,), created_at=NOW))

    def submit(self, party: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """plan -> check -> run -> release -> record, as the zone does; returns the payload."""
        payload, _ = self.submit_outcome(party, spec)
        return payload

    def submit_outcome(self, party: str, spec: Mapping[str, Any]) -> tuple[dict[str, Any], Outcome]:
        ctx = self.as_party(party)
        try:
            return self._submit(ctx, party, spec)
        finally:
            ctx.close()

    def _submit(
        self, ctx: Ctx, party: str, spec: Mapping[str, Any]
    ) -> tuple[dict[str, Any], Outcome]:
        plan = self.technique.plan(spec, ctx)
        rules = self.rules(plan, ctx)
        reasons = self.technique.check(plan, rules, ctx)
        if reasons:
            raise PolicyRefusal(reasons)
        outcome = self.technique.release(plan, self.technique.run(plan, ctx), rules)
        for ds, cost in outcome.spent.items():
            self.ledger.append((party, ds, cost))
        for change in outcome.audit_updates:  # as the release transaction does (CAS)
            current = self.audit_states.get(change.space)
            assert (current[0] if current else None) == change.base_version
            self.audit_states[change.space] = ((current[0] if current else 0) + 1, change.state)
        monitor = outcome.payload.get("_monitor")
        for ds in plan.datasets:
            if monitor:
                self.history_log.setdefault(ds, []).append(
                    {**monitor, "requester": party, "released_at": NOW}
                )
        return {k: v for k, v in outcome.payload.items() if not k.startswith("_")}, outcome

    def rules(self, plan: Plan, ctx: Ctx) -> Rules:
        by = {
            d: next((a.rules for a in ctx.agreements_for(d) if a.technique == "sql"), {})
            for d in plan.datasets
        }
        return Rules(by_dataset=by, merged={})


@dataclass
class Ctx:
    zone: FakeZone
    party: Party

    @property
    def requester(self) -> Party:
        return self.party

    @property
    def now(self) -> dt.datetime:
        return NOW

    def dataset(self, name: str) -> Dataset:
        return self.zone.datasets[name]

    def visible_datasets(self) -> list[Dataset]:
        return list(self.zone.datasets.values())

    def agreements_for(self, dataset: str) -> list[Agreement]:
        return [a for a in self.zone.agreements if a.dataset == dataset and a.grants(self.party)]

    def party(self, name: str) -> Party:  # type: ignore[no-redef]
        return Party(name=name, roles=(Role.ANALYST,), created_at=NOW)

    def table(self, dataset: str) -> pa.Table:
        return self.zone.tables[dataset]

    def connection(self) -> duckdb.DuckDBPyConnection:
        if not hasattr(self, "_con"):
            con = duckdb.connect()
            for name, table in self.zone.tables.items():
                con.register(name, table)
            self._con = con
        return self._con

    def close(self) -> None:
        if hasattr(self, "_con"):
            self._con.close()
            del self._con

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        return b"k" * length

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(0)

    def spent(self, dataset: str) -> PrivacyCost:
        return PrivacyCost()

    def history(self, dataset: str) -> list[Mapping[str, Any]]:
        return list(self.zone.history_log.get(dataset, []))

    def audit_state(self, space: str) -> tuple[int, bytes] | None:
        return self.zone.audit_states.get(space)


AGG_RULES: dict[str, Any] = {"analysis": ["aggregation", "dp", "template"], "min_group_size": 5}
DP_RULES: dict[str, Any] = {
    "analysis": ["dp"],
    "max_rows_per_entity": 1,
    "max_groups_per_entity": 1,
    "max_epsilon_per_query": 5.0,
}


def make_fake_zone(
    bank_rules: Mapping[str, Any] | None = None, shop_rules: Mapping[str, Any] | None = None
) -> FakeZone:
    return FakeZone(
        datasets={"bank": BANK, "shop": SHOP},
        agreements=[
            agreement("bank", "bank", bank_rules if bank_rules is not None else AGG_RULES),
            agreement("shop", "shop", shop_rules if shop_rules is not None else AGG_RULES),
        ],
        tables={"bank": bank_people(), "shop": shop_people()},
    )


def exact_answer(zone: FakeZone, sql: str) -> list[tuple[Any, ...]]:
    """The exact answer of ``sql`` over the zone's data (the analyst's view, no rules)."""
    ctx = zone.as_party("analyst")
    try:
        return list(ctx.connection().sql(sql).fetchall())
    finally:
        ctx.close()
