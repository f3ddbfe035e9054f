"""The shared base of the request engine: its state, evaluation and audited transitions.

:class:`EngineCore` holds what every part of :class:`~collabzone.requests.RequestEngine`
needs: the zone's stores and keys, policy and budget evaluation, the one audited state move
(:meth:`EngineCore._move`), refusals, and the plan (de)serialisation and constants they use.
Running and releasing (``request_execution.py``) and node jobs (``request_jobs.py``) build on
it; the steps only the execution side provides are declared here as abstract methods, so
each part type-checks on its own and this module imports neither of them.
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import logging
import os
import signal
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from collabzone import audit, lifecycle, policy
from collabzone.budget import BudgetLimit, PrivacyCost, overspend
from collabzone.errors import ConflictError, PolicyRefusal, Reason
from collabzone.keys import KeyProvider
from collabzone.model import Party, RequestStatus
from collabzone.pacing import Clock, Pacing
from collabzone.runtime import ZoneContext, ZoneRunContext, budget_period_of
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.store.data import DataStore
from collabzone.techniques.base import Outcome, Plan, Rules, Technique

CRASH_ENV = "COLLABZONE_CRASH_AT"
REFUSED_KEY = "_refused"
"""Payload key a node uses to hand back a refusal (a list of Reason dicts) instead of a result."""
log = logging.getLogger("collabzone.requests")
MAX_AUDIT_RETRIES = 5
"""How often a request is run again when concurrent releases changed its audit spaces."""
_OPEN = frozenset(
    {RequestStatus.SUBMITTED, RequestStatus.CHECKED, RequestStatus.APPROVED, RequestStatus.RUNNING}
)
"""States in which a zone process is carrying the request (not waiting for anyone)."""


class AuditRace(ConflictError):
    """Another release changed an audit space this outcome was computed against."""


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


class EngineCore(abc.ABC):
    """State, evaluation and audited transitions shared by every part of the engine."""

    def __init__(
        self,
        engine: Engine,
        data: DataStore,
        keys: KeyProvider,
        zone_id: str,
        pacing: Pacing | None = None,
    ) -> None:
        self._engine = engine
        self._data = data
        self._keys = keys
        self._zone_id = zone_id
        self._pacing = pacing or Pacing()
        self._clocks: dict[str, Clock] = {}
        """Per request being carried by this engine: when the zone started on it."""

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
        # a spec's privacy parameters may only tighten what the agreements set
        caps = {name: rules.get(f"max_{name}_per_request") for name in ("epsilon", "delta", "rho")}
        for dataset, amount in cost.items():
            dataset_rules = rules.by_dataset.get(dataset, {})
            owner = ctx.dataset(dataset).owner
            if owner == requester.name or amount.is_free:
                continue
            for name, cap in caps.items():
                if cap is not None and getattr(amount, name) > cap:
                    reasons.append(
                        Reason(
                            f"{name.upper()}_TOO_LARGE",
                            f"max_{name}_per_request",
                            f"{name} {getattr(amount, name)} exceeds the per-request cap {cap}",
                            owner,
                        )
                    )
            spent = ctx.spent_in(dataset, budget_period_of(dataset_rules, ctx.now))
            for problem in overspend([spent], amount, _limit(dataset_rules)):
                reasons.append(Reason("BUDGET_EXHAUSTED", f"budget on {dataset}", problem, owner))
        return reasons

    def _run_context(
        self, requester: Party, technique: Technique, plan: Plan, rules: Rules, purpose: str
    ) -> ZoneRunContext:
        """What a technique's ``run`` sees for this request (its datasets, merged rules)."""
        return ZoneRunContext(
            self._engine,
            requester,
            self._data,
            self._keys,
            plan.datasets,
            rules.by_dataset,
            self._zone_id,
            technique=technique.name,
            purpose=purpose,
        )

    def _rules_now(self, requester: Party, technique: Technique, plan: Plan, purpose: str) -> Rules:
        ctx = ZoneContext(self._engine, requester, technique=technique.name, purpose=purpose)
        result, reasons = self._evaluate(requester, technique, plan, purpose, ctx)
        # re-checked at run time: an agreement revoked or expired since approval stops the run
        hard = [r for r in reasons if r.code != "BUDGET_EXHAUSTED"]
        if hard:
            raise PolicyRefusal(hard)
        return result.rules

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

    def _finish_refused(self, request_id: str, actor: str, reasons: list[Reason]) -> None:
        self._pace(request_id)
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

    # -- provided by the execution side (request_execution.py) ----------------------------

    @abc.abstractmethod
    def _timed(self, request_id: str) -> AbstractContextManager[None]:
        """Start the request's clock (see pacing.py) unless an outer step already did."""

    @abc.abstractmethod
    def _pace(self, request_id: str) -> None:
        """Hold an outcome until the next public ladder step of its request's clock."""

    @abc.abstractmethod
    def _settle(self, request_id: str, error: Exception) -> None:
        """Last resort after an unexpected error: the request ends ``failed``."""

    @abc.abstractmethod
    def _fail(
        self,
        request_id: str,
        message: str,
        charge: tuple[Party, Mapping[str, PrivacyCost], Rules] | None = None,
    ) -> None:
        """End the request ``failed``, debiting ``charge`` if privacy loss was spent."""

    @abc.abstractmethod
    def release(
        self, request_id: str, requester: Party, plan: Plan, outcome: Outcome, rules: Rules
    ) -> None:
        """Commit the outcome: budget re-check and debit, result, receipt, audit, together."""
