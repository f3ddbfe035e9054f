"""Running requests through their lifecycle: plan, check, approve, run, release.

The :class:`RequestEngine` is the only code that moves a request between states. Each move
is one metadata transaction with its audit event; the release additionally re-checks and
debits the privacy budget and stores the result, all in that same transaction, so a crash
leaves either nothing released or release + debit + audit event together.

The engine is assembled from parts, one idea each:

* ``request_core.py`` -- shared state, policy and budget evaluation, audited transitions,
  refusals, and the constants and fault injection (:func:`crashpoint`) they use;
* ``request_execution.py`` -- running a zone-placed request and releasing its outcome,
  pacing, last-resort failure and recovery of abandoned requests;
* ``request_jobs.py`` -- owner-placed jobs run at a node (:func:`node_audit_spaces`);
* this module -- pricing, submission, owner decisions and risk assessment, i.e. the entry
  points that carry a request up to the run.

The names other modules and tests use stay importable from here.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from collabzone import assess, audit, lifecycle, workers
from collabzone.budget import remaining
from collabzone.errors import (
    CollabzoneError,
    InvalidInputError,
    NotAuthorisedError,
    PolicyRefusal,
    Reason,
)
from collabzone.model import Party, RequestStatus
from collabzone.request_core import (
    CRASH_ENV,
    MAX_AUDIT_RETRIES,
    REFUSED_KEY,
    AuditRace,
    _limit,
    _now,
    _plan_from_json,
    _plan_json,
    crashpoint,
)
from collabzone.request_execution import ExecutionEngine
from collabzone.request_jobs import JobsEngine, node_audit_spaces
from collabzone.runtime import ZoneContext, budget_period_of
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.techniques import registry
from collabzone.techniques.base import Technique

__all__ = [
    "CRASH_ENV",
    "MAX_AUDIT_RETRIES",
    "REFUSED_KEY",
    "AuditRace",
    "RequestEngine",
    "crashpoint",
    "node_audit_spaces",
]


class RequestEngine(ExecutionEngine, JobsEngine):
    """Moves requests through the lifecycle for one zone."""

    def price(
        self, requester: Party, technique_name: str, spec: Mapping[str, Any], purpose: str
    ) -> dict[str, Any]:
        """What a request would touch, which rules apply, what it costs, what budget remains."""
        technique = registry.get(technique_name)
        ctx = ZoneContext(self._engine, requester, technique=technique.name, purpose=purpose)
        try:
            plan = technique.plan(spec, ctx)
        except PolicyRefusal as exc:
            return {"technique": technique.name, "would_be_refused": [str(r) for r in exc.reasons]}
        result, reasons = self._evaluate(requester, technique, plan, purpose, ctx)
        budget = {}
        for dataset in plan.datasets:
            rules = result.rules.by_dataset.get(dataset, {})
            spent = ctx.spent_in(dataset, budget_period_of(rules, ctx.now))
            budget[dataset] = {
                "spent": spent.as_dict(),
                "remaining": remaining([spent], _limit(rules)),
            }
        return {
            "technique": technique.name,
            "plan": _plan_json(plan),
            "rules": dict(result.rules.merged),
            "rules_by_dataset": {k: dict(v) for k, v in result.rules.by_dataset.items()},
            "agreements": {k: a.id for k, a in result.agreements.items()},
            "would_be_refused": [str(r) for r in reasons],
            "needs_approval_from": list(result.owners_to_approve),
            "budget": budget,
        }

    def submit(
        self, requester: Party, technique_name: str, spec: Mapping[str, Any], purpose: str
    ) -> str:
        """Record the request, check it, and carry it as far as the agreements let it go."""
        technique = registry.get(technique_name)
        if not isinstance(spec, Mapping):
            raise InvalidInputError("a request spec must be a JSON object")
        request_id = f"rq-{uuid.uuid4().hex[:12]}"
        with self._timed(request_id):
            self._record(request_id, requester, technique, spec, purpose)
            try:
                self._carry(request_id, requester, technique, spec, purpose)
            except Exception as exc:  # whatever broke, the request ends in a final state
                self._settle(request_id, exc)
        return request_id

    def _record(
        self,
        request_id: str,
        requester: Party,
        technique: Technique,
        spec: Mapping[str, Any],
        purpose: str,
    ) -> None:
        """Insert the request (``submitted``, carried by this process) with its audit event."""
        now = _now()
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            conn.execute(
                t.requests.insert().values(
                    id=request_id,
                    requester=requester.name,
                    technique=technique.name,
                    spec=json.loads(audit.canonical_json(dict(spec))),
                    purpose=purpose,
                    status=RequestStatus.SUBMITTED.value,
                    datasets=[],
                    owners_to_approve=[],
                    reasons=[],
                    cost={},
                    plan={},
                    placement=technique.placement,
                    node=None,
                    created_at=now,
                    updated_at=now,
                    worker=workers.current(),
                )
            )
            audit.append(
                conn,
                self._mac_key(),
                actor=requester.name,
                action="request.submitted",
                subject=request_id,
                parties=[requester.name],
                details={"technique": technique.name, "purpose": purpose, "spec": dict(spec)},
            )

    def _carry(
        self,
        request_id: str,
        requester: Party,
        technique: Technique,
        spec: Mapping[str, Any],
        purpose: str,
    ) -> None:
        """Plan, check and price a recorded request, then approve, park or refuse it."""
        ctx = ZoneContext(self._engine, requester, technique=technique.name, purpose=purpose)
        try:
            plan = technique.plan(spec, ctx)
            result, reasons = self._evaluate(requester, technique, plan, purpose, ctx)
        except PolicyRefusal as exc:
            self._finish_refused(request_id, "zone", exc.reasons)
            return
        except CollabzoneError as exc:
            self._finish_refused(
                request_id, requester.name, [Reason(exc.code, "request spec", exc.message)]
            )
            return
        self._raise_quantum(request_id, result.rules)
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            self._move(
                conn,
                request_id,
                RequestStatus.CHECKED,
                "zone",
                {
                    "datasets": list(plan.datasets),
                    "cost": {k: v.as_dict() for k, v in plan.cost.items()},
                },
                datasets=list(plan.datasets),
                plan=_plan_json(plan),
                node=plan.node,
                cost={k: v.as_dict() for k, v in plan.cost.items()},
            )
        if reasons:
            self._finish_refused(request_id, "zone", reasons)
            return
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            if result.owners_to_approve:
                self._move(
                    conn,
                    request_id,
                    RequestStatus.AWAITING_APPROVAL,
                    "zone",
                    {"owners": list(result.owners_to_approve)},
                    owners_to_approve=list(result.owners_to_approve),
                )
                return
            self._move(conn, request_id, RequestStatus.APPROVED, "zone", {"approval": "auto"})
        self.execute(request_id)

    def decide(self, owner: Party, request_id: str, approve: bool, reason: str) -> None:
        """An owner's approval or denial; the last approval starts the run."""
        if not reason.strip():
            raise InvalidInputError("give a reason for the decision")
        start = False
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
        if owner.name not in row["owners_to_approve"]:
            self.audit_denied(
                owner.name,
                request_id,
                {owner.name, row["requester"]},
                {"attempt": "approve" if approve else "deny"},
            )
            raise NotAuthorisedError(
                f"{owner.name!r} is not an owner whose approval {request_id} awaits"
            )
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            row = repo.get_request_row(conn, request_id, for_update=True)
            if row["status"] != RequestStatus.AWAITING_APPROVAL.value:
                lifecycle.check_transition(RequestStatus(row["status"]), RequestStatus.APPROVED)
            already = {d.owner for d in repo.decisions_of(conn, request_id)}
            if owner.name in already:
                raise InvalidInputError(f"{owner.name!r} has already decided on {request_id}")
            conn.execute(
                t.decisions.insert().values(
                    request_id=request_id,
                    owner=owner.name,
                    approved=approve,
                    reason=reason,
                    at=_now(),
                )
            )
            audit.append(
                conn,
                self._mac_key(),
                actor=owner.name,
                action="request.approved_by" if approve else "request.denied_by",
                subject=request_id,
                parties=[owner.name, row["requester"]],
                details={"reason": reason},
            )
            if not approve:
                refusal = Reason(
                    "OWNER_DENIED", f"manual approval by {owner.name}", reason, owner.name
                )
                self._move(
                    conn,
                    request_id,
                    RequestStatus.REFUSED,
                    owner.name,
                    {"reasons": [refusal.__dict__]},
                    reasons=[str(refusal)],
                )
            elif already | {owner.name} >= set(row["owners_to_approve"]):
                self._move(
                    conn,
                    request_id,
                    RequestStatus.APPROVED,
                    owner.name,
                    {"approval": "manual"},
                    worker=workers.current(),  # this process runs it next
                )
                start = True
        if start:
            self.execute(request_id)

    def assess(self, viewer: Party, request_id: str) -> dict[str, Any]:
        """What ``request_id`` would disclose if it were released now, for the owners of
        the data it touches (see :mod:`collabzone.assess`): nothing is released or stored."""
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
            requester = repo.get_party(conn, row["requester"])
            owners = {
                r.name: r.owner
                for r in conn.execute(
                    select(t.datasets.c.name, t.datasets.c.owner).where(
                        t.datasets.c.name.in_(list(row["datasets"]))
                    )
                )
            }
        try:
            owned = assess.may_assess(viewer, owners)
        except NotAuthorisedError:
            self.audit_denied(viewer.name, request_id, {viewer.name}, {"attempt": "assess"})
            raise
        summary = functools.partial(
            assess.summarise,
            request_id=request_id,
            technique=row["technique"],
            requester=requester.name,
            viewer=viewer,
            owned=owned,
        )
        if not row["plan"]:
            return summary(outcome=None, refusal=list(row["reasons"]), spent_before={})
        plan = _plan_from_json(row["plan"])
        technique = registry.get(row["technique"])
        if plan.placement == "owner":
            report = summary(outcome=None, refusal=None, spent_before={})
            node_risk = getattr(technique, "node_risk", None)  # e.g. federated's MIA check
            report.update(
                node_risk(plan)
                if node_risk is not None
                else {
                    "would_be": "assessed at the owner's node",
                    "summary": ["this request runs at the owner's node, which audits it there"],
                }
            )
            return report
        try:
            rules = self._rules_now(requester, technique, plan, row["purpose"])
        except PolicyRefusal as exc:
            return summary(outcome=None, refusal=[str(r) for r in exc.reasons], spent_before={})
        ctx = self._run_context(requester, technique, plan, rules, row["purpose"])
        try:
            outcome, refusal = assess.outcome_or_reasons(
                lambda: technique.release(plan, technique.run(plan, ctx), rules)
            )
            spent = {d: ctx.spent(d).epsilon for d in plan.datasets}
        finally:
            ctx.close()
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            audit.append(
                conn,
                self._mac_key(),
                actor=viewer.name,
                action="request.risk_assessed",
                subject=request_id,
                parties=[viewer.name],
                details={"datasets": sorted(owned)},
            )
        return summary(outcome=outcome, refusal=refusal, spent_before=spent)
