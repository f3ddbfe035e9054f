"""Zone operations for accountability: budgets spent, audit verification and export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from collabzone import audit
from collabzone.budget import BudgetLimit, PrivacyCost, remaining, total
from collabzone.model import (
    Role,
)
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.zone_base import ZoneBase, _now
from collabzone.zone_keys import head_keys


class AuditOps(ZoneBase):
    """Privacy budgets and the audit log, as one party may read them."""

    def budget(self) -> list[dict[str, Any]]:
        """Privacy budget spent and remaining per (party, dataset, period) this party may see."""
        me = self.me
        with self._engine.connect() as conn:
            debits = list(conn.execute(select(t.budget_debits)).mappings())
            owned = repo.owned_dataset_names(conn, me.name)
            agreements = repo.list_agreements(conn)
        seen_all = me.has_role(Role.AUDITOR) or me.has_role(Role.OPERATOR)
        groups: dict[tuple[str, str, str], list[Any]] = {}
        for row in debits:
            if seen_all or row["party"] == me.name or row["dataset"] in owned:
                groups.setdefault((row["party"], row["dataset"], row["period"]), []).append(row)
        out = []
        for (party, dataset, period), rows in sorted(groups.items()):
            spent = total(
                PrivacyCost(float(r["epsilon"]), float(r["delta"]), float(r["rho"])) for r in rows
            )
            granted = next(
                (
                    a.rules
                    for a in reversed(agreements)
                    if a.dataset == dataset and a.is_active(_now()) and "epsilon_budget" in a.rules
                ),
                {},
            )
            limit = BudgetLimit(
                granted.get("epsilon_budget"),
                granted.get("delta_budget"),
                granted.get("rho_budget"),
            )
            out.append(
                {
                    "party": party,
                    "dataset": dataset,
                    "period": period,
                    "spent": spent.as_dict(),
                    "remaining": remaining([spent], limit),
                    "debits": len(rows),
                }
            )
        return out

    def verify_audit(self) -> audit.Verification:
        """Recompute the audit chain and its signed head; report the first broken link."""
        _ = self.me  # authenticated parties only
        with self._engine.connect() as conn:
            return audit.verify_chain(
                audit.read_events(conn), audit.read_head(conn), head_keys(self._keys, self.zone_id)
            )

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit log (auditors and operators: all of it; others: events that concern them)."""
        me = self.me
        with self._engine.connect() as conn:
            events = audit.read_events(conn)
        if me.has_role(Role.AUDITOR) or me.has_role(Role.OPERATOR):
            return [e.as_dict() for e in events]
        return [e.as_dict() for e in events if me.name in e.parties or e.actor == me.name]

    def export_audit(self, path: str | Path) -> int:
        """Write the audit log this party may read as JSON Lines; returns the event count."""
        events = self.audit_events()
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for event in events:
                handle.write(audit.canonical_json(event) + "\n")
        tmp.replace(target)
        return len(events)
