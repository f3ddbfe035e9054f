"""Zone operations on agreements: sign, read (every participant can audit them), revoke."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import update

from collabzone import audit, policy
from collabzone.budget import Period
from collabzone.errors import (
    ConflictError,
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
)
from collabzone.model import (
    Agreement,
    Approval,
    Role,
)
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.techniques import registry
from collabzone.zone_base import ZoneBase, _now

SEALED_MANIFEST_KIND = "collabzone.sealed/1"
"""Marks a sealed module's dataset (see techniques/sealed): no agreement may share it."""


class AgreementOps(ZoneBase):
    """Agreements owners sign on their datasets."""

    def add_agreement(
        self,
        dataset: str,
        *,
        grantees: Sequence[str],
        technique: str,
        purposes: Sequence[str],
        rules: Mapping[str, Any] | None = None,
        approval: Approval | str = Approval.AUTO,
        valid_from: dt.datetime | None = None,
        valid_until: dt.datetime | None = None,
    ) -> Agreement:
        """Sign an agreement on one's own dataset: who may use it, by which technique, why, until when."""
        me = self.me
        with self._engine.connect() as conn:
            row = repo.get_dataset_row(conn, dataset)
            party_names = {p.name for p in repo.list_parties(conn)}
        if row["owner"] != me.name:
            self._requests.audit_denied(
                me.name, f"dataset:{dataset}", {me.name, row["owner"]}, {"attempt": "agreement"}
            )
            raise NotAuthorisedError(f"only {row['owner']!r} can sign agreements on {dataset!r}")
        if SEALED_MANIFEST_KIND in str(row["description"] or ""):
            raise InvalidInputError(
                f"{dataset!r} holds sealed code: it is never shared by an agreement (the data "
                "owner approves the job through an agreement on its own dataset)"
            )
        technique_obj = registry.get(technique)
        if not grantees:
            raise InvalidInputError(
                "an agreement needs at least one grantee (a party name or role:<role>)"
            )
        for grantee in grantees:
            if grantee.startswith("role:"):
                if grantee[5:] not in {r.value for r in Role}:
                    raise InvalidInputError(f"unknown role in grantee {grantee!r}")
            elif grantee not in party_names:
                raise InvalidInputError(f"grantee {grantee!r} is not a party of this zone")
        if not purposes or any(not p.strip() for p in purposes):
            raise InvalidInputError("an agreement needs at least one non-empty purpose (or '*')")
        rules = dict(rules or {})
        problems = policy.validate_rules(rules, technique_obj.rule_specs)
        if problems:
            raise InvalidInputError("; ".join(problems))
        if "budget_period" in rules:
            try:
                Period(rules["budget_period"])
            except ValueError:
                raise InvalidInputError(
                    f"budget_period must be one of {', '.join(p.value for p in Period)}"
                ) from None
        now = _now()
        start = valid_from or now
        for label, value in (("valid_from", valid_from), ("valid_until", valid_until)):
            if value is not None and value.tzinfo is None:
                raise InvalidInputError(
                    f"{label} must carry a timezone (e.g. 2027-01-01T00:00:00+00:00)"
                )
        if valid_until is not None and valid_until <= start:
            raise InvalidInputError("valid_until must be after valid_from")
        agreement = Agreement(
            id=f"ag-{uuid.uuid4().hex[:10]}",
            dataset=dataset,
            owner=me.name,
            grantees=tuple(grantees),
            technique=technique_obj.name,
            purposes=tuple(purposes),
            rules=rules,
            approval=Approval(approval),
            valid_from=start,
            valid_until=valid_until,
            created_at=now,
        )
        with self._engine.begin() as conn:
            conn.execute(
                t.agreements.insert().values(
                    id=agreement.id,
                    dataset=dataset,
                    owner=me.name,
                    grantees=list(grantees),
                    technique=agreement.technique,
                    purposes=list(purposes),
                    rules=rules,
                    approval=agreement.approval.value,
                    valid_from=repo.iso(start),
                    valid_until=repo.iso(valid_until) if valid_until else None,
                    created_at=repo.iso(now),
                )
            )
            audit.append(
                conn,
                self._mac_key(),
                actor=me.name,
                action="agreement.signed",
                subject=agreement.id,
                parties=[me.name, *[g for g in grantees if not g.startswith("role:")]],
                details=json.loads(agreement.model_dump_json()),
            )
        return agreement

    def agreements(self, dataset: str | None = None) -> list[Agreement]:
        """Agreements governing data this party touches: its own, those granting it, and
        those on datasets its requests used (every participant can audit them)."""
        me = self.me
        with self._engine.connect() as conn:
            everything = repo.list_agreements(conn, dataset)
            mine = repo.owned_dataset_names(conn, me.name)
            touched = repo.datasets_requested_by(conn, me.name)
        if me.has_role(Role.AUDITOR) or me.has_role(Role.OPERATOR):
            return everything
        return [a for a in everything if a.dataset in mine or a.grants(me) or a.dataset in touched]

    def agreement(self, agreement_id: str) -> Agreement:
        for agreement in self.agreements():
            if agreement.id == agreement_id:
                return agreement
        raise NotFoundError(f"no agreement {agreement_id!r} visible to {self.me.name!r}")

    def revoke_agreement(self, agreement_id: str, reason: str) -> Agreement:
        """End an agreement now (owner only); requests not yet released under it are refused."""
        me = self.me
        with self._engine.connect() as conn:
            agreement = repo.get_agreement(conn, agreement_id)
        if agreement.owner != me.name:
            self._requests.audit_denied(
                me.name, agreement_id, {me.name, agreement.owner}, {"attempt": "revoke"}
            )
            raise NotAuthorisedError(f"only {agreement.owner!r} can revoke {agreement_id}")
        if agreement.revoked_at is not None:
            raise ConflictError(f"{agreement_id} is already revoked")
        if not reason.strip():
            raise InvalidInputError("give a reason for revoking")
        now = _now()
        with self._engine.begin() as conn:
            conn.execute(
                update(t.agreements)
                .where(t.agreements.c.id == agreement_id)
                .values(revoked_at=repo.iso(now), revoke_reason=reason)
            )
            audit.append(
                conn,
                self._mac_key(),
                actor=me.name,
                action="agreement.revoked",
                subject=agreement_id,
                parties=[me.name, *agreement.grantees],
                details={"reason": reason},
            )
        return agreement.model_copy(update={"revoked_at": now, "revoke_reason": reason})
