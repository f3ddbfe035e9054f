"""Zone operations for accountability: budgets spent, audit verification and export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from collabzone import audit, audit_ledger
from collabzone import audit_checkpoint as checkpoints
from collabzone.audit_checkpoint import Checkpoint, consistency_problem, public_key_of
from collabzone.audit_export import export_records, write_export
from collabzone.budget import BudgetLimit, PrivacyCost, remaining, total
from collabzone.errors import IntegrityError
from collabzone.model import (
    Role,
)
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.zone_base import ZoneBase, _now
from collabzone.zone_keys import AUDIT_KEY, checkpoint_seed, head_keys


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

    def verify_audit(self, against: Checkpoint | None = None) -> audit.Verification:
        """Check the audit log: its hash chain and signed head, the budget ledger against
        the debits the chain records, and (``against``) a checkpoint kept outside the zone.

        Only a kept checkpoint catches a rollback to an older head (see
        audit_checkpoint.py); the ledger check catches debits deleted or inserted by hand.
        Details of ledger rows are for auditors and operators; others get the count.
        """
        me = self.me
        with self._engine.connect() as conn:
            events = audit.read_events(conn)
            head = audit.read_head(conn)
            debits = list(conn.execute(select(t.budget_debits)).mappings())
        result = audit.verify_chain(events, head, head_keys(self._keys, self.zone_id))
        anchor = None
        if against is not None:
            problem = self._checkpoint_problem(against, events)
            if problem is not None:
                result = result.with_problem(problem, at=min(against.size, len(events) + 1))
            else:
                anchor = against.describe()
        problems = audit_ledger.reconcile(events, debits)
        if problems:
            seen_all = me.has_role(Role.AUDITOR) or me.has_role(Role.OPERATOR)
            result = result.with_problem(
                f"the budget ledger disagrees with the audit chain in {len(problems)} place(s)",
                problems=problems if seen_all else (),
            )
        if result.ok and anchor is not None:
            result = replace(result, anchor=anchor)
        return result

    def _checkpoint_problem(
        self, against: Checkpoint, events: list[audit.AuditEvent]
    ) -> str | None:
        if not against.signature_ok():
            return "the checkpoint's signature does not verify (edited, or not a zone's)"
        if against.zone != self.zone_id:
            return f"the checkpoint is for zone {against.zone}, not {self.zone_id}"
        announced = events[: against.size]  # a key is recorded before it signs anything
        if against.public_key not in self._checkpoint_keys(against.key_version, announced):
            return (
                f"the checkpoint is not signed by this zone's key (version "
                f"{against.key_version} of {AUDIT_KEY!r})"
            )
        hash_at = events[against.size - 1].hash if 0 < against.size <= len(events) else None
        return consistency_problem(against, self.zone_id, len(events), hash_at)

    def _checkpoint_keys(self, version: int, events: list[audit.AuditEvent]) -> set[str]:
        """The public checkpoint keys of ``audit-head`` version ``version``: derived while
        the zone holds it, and as ``zone.created`` / ``key.rotated`` recorded it (so a
        checkpoint stays checkable after its version is destroyed)."""
        found = {
            str(note["public_key"])
            for e in events
            if e.action in ("zone.created", "key.rotated")
            and isinstance(note := e.details.get("checkpoint_key"), dict)
            and note.get("version") == version
        }
        if version in self._keys.versions(AUDIT_KEY):
            found.add(public_key_of(checkpoint_seed(self._keys, self.zone_id, version)))
        return found

    def audit_checkpoint(self) -> Checkpoint:
        """A signed checkpoint of the audit log's head, to keep outside the zone.

        Owners and auditors fetch one now and then and keep it (``collabzone audit
        checkpoint --out FILE``); ``verify_audit(against=...)`` later proves the log still
        continues it. Refused with IntegrityError if the log does not verify now.

        >>> checkpoint = auditor.audit_checkpoint()                     # doctest: +SKIP
        >>> auditor.verify_audit(against=checkpoint).ok                 # doctest: +SKIP
        True
        """
        _ = self.me  # authenticated parties only
        with self._engine.connect() as conn:
            events = audit.read_events(conn)
            head = audit.read_head(conn)
        return self._sign_checkpoint(events, head)

    def _sign_checkpoint(
        self, events: list[audit.AuditEvent], head: tuple[int, str, str] | None
    ) -> Checkpoint:
        result = audit.verify_chain(events, head, head_keys(self._keys, self.zone_id))
        if not result.ok:
            raise IntegrityError(f"no checkpoint issued: {result}")
        version = self._keys.current(AUDIT_KEY)
        return checkpoints.sign(
            checkpoint_seed(self._keys, self.zone_id, version),
            zone=self.zone_id,
            size=len(events),
            head=events[-1].hash if events else audit.GENESIS,
            at=audit.now_iso(),
            key_version=version,
        )

    def _can_read(self, event: audit.AuditEvent) -> bool:
        me = self.me
        if me.has_role(Role.AUDITOR) or me.has_role(Role.OPERATOR):
            return True
        return me.name in event.parties or event.actor == me.name

    def audit_events(self, subject: str | None = None) -> list[dict[str, Any]]:
        """The audit log (auditors and operators: all of it; others: events that concern
        them); ``subject`` keeps the events about one request, dataset or party."""
        _ = self.me
        with self._engine.connect() as conn:
            events = audit.read_events(conn, subject)
        return [e.as_dict() for e in events if self._can_read(e)]

    def audit_export(self) -> list[dict[str, Any]]:
        """The audit log as a verifiable export (see audit_export.py): every event this
        party may read, the others redacted to their hashes, and a signed checkpoint."""
        me = self.me
        with self._engine.connect() as conn:
            events = audit.read_events(conn)
            head = audit.read_head(conn)
        checkpoint = self._sign_checkpoint(events, head)
        return list(export_records(events, self._can_read, checkpoint, party=me.name))

    def export_audit(self, path: str | Path) -> int:
        """Write the verifiable export as JSON Lines; returns the number of events shown."""
        return write_export(path, self.audit_export())
