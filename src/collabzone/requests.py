"""Running requests through their lifecycle: plan, check, approve, run, release.

The :class:`RequestEngine` is the only code that moves a request between states. Each move
is one metadata transaction with its audit event; the release additionally re-checks and
debits the privacy budget and stores the result, all in that same transaction, so a crash
leaves either nothing released or release + debit + audit event together.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from collabzone import audit, lifecycle, policy
from collabzone.budget import BudgetLimit, PrivacyCost, overspend, remaining
from collabzone.errors import (
    BudgetExhaustedError,
    CollabzoneError,
    InvalidInputError,
    NotAuthorisedError,
    PolicyRefusal,
    Reason,
)
from collabzone.keys import KeyProvider
from collabzone.model import Party, Receipt, Request, RequestStatus
from collabzone.runtime import ZoneContext, ZoneRunContext, budget_period_of
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.store.data import DataStore
from collabzone.techniques import registry
from collabzone.techniques.base import Outcome, Plan, Rules, Technique

CRASH_ENV = "COLLABZONE_CRASH_AT"
REFUSED_KEY = "_refused"
"""Payload key a node uses to hand back a refusal (a list of Reason dicts) instead of a result."""
log = logging.getLogger("collabzone.requests")


def crashpoint(step: str) -> None:
    """Fault injection for the crash tests: die here, like a power cut, if asked to."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _now() -> str:
    return repo.iso(dt.datetime.now(dt.UTC))


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "technique": plan.technique,
        "datasets": list(plan.datasets),
        "cost": {k: v.as_dict() for k, v in plan.cost.items()},
        "columns": {k: list(v) for k, v in plan.columns.items()},
        "outputs": plan.outputs,
        "details": json.loads(audit.canonical_json(dict(plan.details))),
        "placement": plan.placement,
        "node": plan.node,
    }


def _plan_from_json(doc: Mapping[str, Any]) -> Plan:
    return Plan(
        technique=doc["technique"],
        datasets=tuple(doc["datasets"]),
        cost={k: PrivacyCost(**v) for k, v in doc["cost"].items()},
        columns={k: tuple(v) for k, v in doc["columns"].items()},
        outputs=doc["outputs"],
        details=doc["details"],
        placement=doc["placement"],
        node=doc["node"],
    )


def _limit(rules: Mapping[str, Any]) -> BudgetLimit:
    return BudgetLimit(
        rules.get("epsilon_budget"), rules.get("delta_budget"), rules.get("rho_budget")
    )


class RequestEngine:
    """Moves requests through the lifecycle for one zone."""

    def __init__(self, engine: Engine, data: DataStore, keys: KeyProvider, zone_id: str) -> None:
        self._engine = engine
        self._data = data
        self._keys = keys
        self._zone_id = zone_id

    def _mac_key(self) -> bytes:
        return self._keys.derive("audit-head", self._zone_id)

    # -- evaluation (pure parts in policy.py and Technique.check) ------------------------

    def _evaluate(
        self, requester: Party, technique: Technique, plan: Plan, purpose: str, ctx: ZoneContext
    ) -> tuple[policy.PolicyResult, list[Reason]]:
        datasets = [ctx.dataset(name) for name in plan.datasets]
        agreements = [a for d in plan.datasets for a in ctx.all_agreements(d)]
        result = policy.evaluate(
            requester=requester,
            technique=technique.name,
            purpose=purpose,
            datasets=datasets,
            agreements=agreements,
            rule_specs=technique.rule_specs,
            needs_agreement=technique.needs_agreement,
            now=ctx.now,
        )
        reasons = list(result.reasons)
        if result.allowed:
            reasons.extend(technique.check(plan, result.rules, ctx))
            reasons.extend(self._budget_reasons(requester, plan.cost, result.rules, ctx))
        return result, reasons

    def _budget_reasons(
        self, requester: Party, cost: Mapping[str, PrivacyCost], rules: Rules, ctx: ZoneContext
    ) -> list[Reason]:
        reasons = []
        cap = rules.get("max_epsilon_per_request")
        for dataset, amount in cost.items():
            dataset_rules = rules.by_dataset.get(dataset, {})
            owner = ctx.dataset(dataset).owner
            if owner == requester.name or amount.is_free:
                continue
            if cap is not None and amount.epsilon > cap:
                reasons.append(
                    Reason(
                        "EPSILON_TOO_LARGE",
                        "max_epsilon_per_request",
                        f"epsilon {amount.epsilon} exceeds the per-request cap {cap}",
                        owner,
                    )
                )
            spent = ctx.spent_in(dataset, budget_period_of(dataset_rules, ctx.now))
            for problem in overspend([spent], amount, _limit(dataset_rules)):
                reasons.append(Reason("BUDGET_EXHAUSTED", f"budget on {dataset}", problem, owner))
        return reasons

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

    # -- transitions ----------------------------------------------------------------------

    def _move(
        self,
        conn: Connection,
        request_id: str,
        new: RequestStatus,
        actor: str,
        details: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> audit.AuditEvent:
        row = repo.get_request_row(conn, request_id, for_update=True)
        lifecycle.check_transition(RequestStatus(row["status"]), new)
        conn.execute(
            update(t.requests)
            .where(t.requests.c.id == request_id)
            .values(status=new.value, updated_at=_now(), **values)
        )
        parties = {row["requester"], *(self._owners(conn, row["datasets"]))}
        return audit.append(
            conn,
            self._mac_key(),
            actor=actor,
            action=f"request.{new.value}",
            subject=request_id,
            parties=parties,
            details=details,
        )

    def audit_denied(
        self, actor: str, subject: str, parties: set[str], details: Mapping[str, Any]
    ) -> None:
        """Record a refused attempt (wrong party, wrong owner) in its own transaction."""
        with self._engine.begin() as conn:
            audit.append(
                conn,
                self._mac_key(),
                actor=actor,
                action="auth.denied",
                subject=subject,
                parties=parties,
                details=details,
            )

    def _owners(self, conn: Connection, datasets: list[str]) -> set[str]:
        rows = conn.execute(select(t.datasets.c.owner).where(t.datasets.c.name.in_(datasets)))
        return {r.owner for r in rows}

    def submit(
        self, requester: Party, technique_name: str, spec: Mapping[str, Any], purpose: str
    ) -> str:
        """Record the request, check it, and carry it as far as the agreements let it go."""
        technique = registry.get(technique_name)
        if not isinstance(spec, Mapping):
            raise InvalidInputError("a request spec must be a JSON object")
        request_id = f"rq-{uuid.uuid4().hex[:12]}"
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
        ctx = ZoneContext(self._engine, requester, technique=technique.name, purpose=purpose)
        try:
            plan = technique.plan(spec, ctx)
        except PolicyRefusal as exc:
            self._finish_refused(request_id, "zone", exc.reasons)
            return request_id
        except CollabzoneError as exc:
            self._finish_refused(
                request_id, requester.name, [Reason(exc.code, "request spec", exc.message)]
            )
            return request_id
        result, reasons = self._evaluate(requester, technique, plan, purpose, ctx)
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
            return request_id
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
                return request_id
            self._move(conn, request_id, RequestStatus.APPROVED, "zone", {"approval": "auto"})
        self.execute(request_id)
        return request_id

    def _finish_refused(self, request_id: str, actor: str, reasons: list[Reason]) -> None:
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            self._move(
                conn,
                request_id,
                RequestStatus.REFUSED,
                actor,
                {"reasons": [r.__dict__ for r in reasons]},
                reasons=[str(r) for r in reasons],
            )

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
                    conn, request_id, RequestStatus.APPROVED, owner.name, {"approval": "manual"}
                )
                start = True
        if start:
            self.execute(request_id)

    # -- running and releasing ------------------------------------------------------------

    def execute(self, request_id: str) -> None:
        """Run an approved zone-placed request and release it (owner-placed ones wait for
        their node, see :meth:`complete`)."""
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
            requester = repo.get_party(conn, row["requester"])
        plan = _plan_from_json(row["plan"])
        if plan.placement == "owner":
            return
        technique = registry.get(row["technique"])
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            self._move(conn, request_id, RequestStatus.RUNNING, "zone")
        try:
            ctx_rules = self._rules_now(requester, technique, plan, row["purpose"])
        except PolicyRefusal as exc:
            self._finish_refused(request_id, "zone", exc.reasons)
            return
        ctx = ZoneRunContext(
            self._engine,
            requester,
            self._data,
            self._keys,
            plan.datasets,
            ctx_rules.by_dataset,
            self._zone_id,
            technique=technique.name,
            purpose=row["purpose"],
        )
        try:
            outcome = technique.run(plan, ctx)
            crashpoint("after_run")
            outcome = technique.release(plan, outcome, ctx_rules)
        except PolicyRefusal as exc:
            self._finish_refused(request_id, "zone", exc.reasons)
            return
        except CollabzoneError as exc:
            self._fail(request_id, exc.message)
            return
        except Exception as exc:  # a bug or an engine error: never leak data-dependent text
            log.exception("request %s: technique %s failed", request_id, plan.technique)
            self._fail(
                request_id,
                f"the technique failed ({type(exc).__name__}); the operator can see the log",
            )
            return
        finally:
            ctx.close()
        self.release(request_id, requester, plan, outcome, ctx_rules)

    def _rules_now(self, requester: Party, technique: Technique, plan: Plan, purpose: str) -> Rules:
        ctx = ZoneContext(self._engine, requester, technique=technique.name, purpose=purpose)
        result, reasons = self._evaluate(requester, technique, plan, purpose, ctx)
        # re-checked at run time: an agreement revoked or expired since approval stops the run
        hard = [r for r in reasons if r.code != "BUDGET_EXHAUSTED"]
        if hard:
            raise PolicyRefusal(hard)
        return result.rules

    def _fail(self, request_id: str, message: str) -> None:
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            self._move(
                conn,
                request_id,
                RequestStatus.FAILED,
                "zone",
                {"error": message},
                reasons=[message],
            )

    def release(
        self, request_id: str, requester: Party, plan: Plan, outcome: Outcome, rules: Rules
    ) -> None:
        """Commit the outcome: budget re-check and debit, result, receipt, audit, together."""
        payload = {k: v for k, v in outcome.payload.items() if not str(k).startswith("_")}
        monitor = outcome.payload.get("_monitor")
        released_to = tuple(outcome.released_to) or (requester.name,)
        try:
            with self._engine.begin() as conn:
                audit.lock_head(conn)
                crashpoint("before_debit")
                spent_after: dict[str, dict[str, float | None]] = {}
                now = dt.datetime.now(dt.UTC)
                for dataset, cost in outcome.spent.items():
                    dataset_rules = rules.by_dataset.get(dataset, {})
                    owner = self._owners(conn, [dataset])
                    period = budget_period_of(dataset_rules, now)
                    already = repo.spent(conn, requester.name, dataset, period)
                    if requester.name not in owner:
                        problems = overspend(already, cost, _limit(dataset_rules))
                        if problems:
                            raise BudgetExhaustedError(
                                [
                                    Reason(
                                        "BUDGET_EXHAUSTED",
                                        f"budget on {dataset}",
                                        p,
                                        next(iter(owner), None),
                                    )
                                    for p in problems
                                ]
                            )
                    conn.execute(
                        t.budget_debits.insert().values(
                            request_id=request_id,
                            party=requester.name,
                            dataset=dataset,
                            period=period,
                            epsilon=repr(cost.epsilon),
                            delta=repr(cost.delta),
                            rho=repr(cost.rho),
                            at=repo.iso(now),
                        )
                    )
                    spent_after[dataset] = remaining([*already, cost], _limit(dataset_rules))
                crashpoint("after_debit")
                receipt = Receipt(
                    request_id=request_id,
                    technique=plan.technique,
                    rules_applied={
                        "merged": dict(rules.merged),
                        "agreements": {k: list(v) for k, v in rules.agreements.items()},
                    },
                    rows_suppressed=outcome.rows_suppressed,
                    mechanism=outcome.mechanism,
                    noise_scale=outcome.noise_scale,
                    budget_spent={k: v.as_dict() for k, v in outcome.spent.items()},
                    budget_remaining=spent_after,
                    audit_event_id="",
                    released_to=released_to,
                    released_at=now,
                    notes=tuple(outcome.notes),
                )
                receipt_doc = json.loads(receipt.model_dump_json(exclude={"audit_event_id"}))
                event = self._move(
                    conn,
                    request_id,
                    RequestStatus.RELEASED,
                    "zone",
                    {"receipt": receipt_doc, "released_to": list(released_to)},
                )
                receipt = receipt.model_copy(update={"audit_event_id": event.id})
                crashpoint("after_audit")
                conn.execute(
                    t.releases.insert().values(
                        request_id=request_id,
                        payload=json.loads(audit.canonical_json(payload)),
                        monitor=json.loads(audit.canonical_json(monitor))
                        if monitor is not None
                        else None,
                        receipt=json.loads(receipt.model_dump_json()),
                        released_to=list(released_to),
                        released_at=repo.iso(now),
                    )
                )
                crashpoint("before_commit")
        except BudgetExhaustedError as exc:
            self._finish_refused(request_id, "zone", exc.reasons)
            return
        crashpoint("after_commit")

    def complete(
        self,
        node: Party,
        request_id: str,
        payload: Mapping[str, Any],
        spent: Mapping[str, Mapping[str, float]],
        rows_suppressed: int = 0,
        mechanism: str | None = None,
        noise_scale: float | None = None,
    ) -> None:
        """A node returns the outcome of an owner-placed job; the zone filters and releases it."""
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
            requester = repo.get_party(conn, row["requester"])
        if row["placement"] != "owner" or row["node"] != node.name:
            self.audit_denied(
                node.name, request_id, {node.name, row["requester"]}, {"attempt": "complete_job"}
            )
            raise NotAuthorisedError(f"request {request_id} is not a job for node {node.name!r}")
        plan = _plan_from_json(row["plan"])
        technique = registry.get(row["technique"])
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            self._move(conn, request_id, RequestStatus.RUNNING, node.name)
        refused = payload.get(REFUSED_KEY)
        if refused:
            # the node's own checks (monitor, bad input) refused the job: nothing is released
            reasons = [
                Reason(**{k: r.get(k) for k in ("code", "rule", "message", "owner")})
                for r in refused
            ]
            self._finish_refused(request_id, node.name, reasons)
            return
        try:
            rules = self._rules_now(requester, technique, plan, row["purpose"])
            outcome = technique.release(
                plan,
                Outcome(
                    payload=dict(payload),
                    rows_suppressed=rows_suppressed,
                    mechanism=mechanism,
                    noise_scale=noise_scale,
                    spent={k: PrivacyCost(**v) for k, v in spent.items()},
                ),
                rules,
            )
        except PolicyRefusal as exc:
            self._finish_refused(request_id, "zone", exc.reasons)
            return
        self.release(request_id, requester, plan, outcome, rules)

    def jobs_for(self, node: Party) -> list[Request]:
        """Approved owner-placed requests waiting for ``node``."""
        with self._engine.connect() as conn:
            return [
                r
                for r in repo.list_requests(conn)
                if r.status is RequestStatus.APPROVED and r.runs_at == f"owner:{node.name}"
            ]
