"""Running zone-placed requests and releasing their outcomes, with pacing and recovery.

:class:`ExecutionEngine` runs an approved request inside the zone, filters its outcome and
commits the release (budget re-check and debit, result, receipt and audit event in one
transaction, so a crash leaves either nothing released or all of it). It also owns the
request clocks that pace every ending onto a public ladder step, the last-resort ``failed``
ending after an unexpected error, and the recovery of requests a dead process left half-way.
Kept apart from submission and approval (``requests.py``) because this is where data is
touched and privacy budget is spent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select

from collabzone import audit, lifecycle, workers
from collabzone.audit_ledger import debit_entry
from collabzone.budget import PrivacyCost, overspend, remaining
from collabzone.errors import (
    BudgetExhaustedError,
    CollabzoneError,
    ConflictError,
    PolicyRefusal,
    Reason,
)
from collabzone.model import Party, Receipt, RequestStatus
from collabzone.pacing import Clock
from collabzone.request_core import (
    _OPEN,
    MAX_AUDIT_RETRIES,
    AuditRace,
    EngineCore,
    _limit,
    _plan_from_json,
    crashpoint,
    log,
)
from collabzone.runtime import budget_period_of
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.techniques import registry
from collabzone.techniques.base import (
    PARTS_KEY,
    FailedAfterSpending,
    Outcome,
    Plan,
    Rules,
    Technique,
)
from collabzone.zone_derived import register_derived, write_derived


class ExecutionEngine(EngineCore):
    """Runs and releases zone-placed requests; paces endings and recovers abandoned ones."""

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
        with self._timed(request_id):
            try:
                self._execute(request_id, requester, plan, row["technique"], row["purpose"])
            except Exception as exc:  # whatever broke, the request ends in a final state
                self._settle(request_id, exc)

    def _execute(
        self, request_id: str, requester: Party, plan: Plan, technique_name: str, purpose: str
    ) -> None:
        technique = registry.get(technique_name)
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            self._move(conn, request_id, RequestStatus.RUNNING, "zone", worker=workers.current())
        try:
            ctx_rules = self._rules_now(requester, technique, plan, purpose)
        except PolicyRefusal as exc:
            self._finish_refused(request_id, "zone", exc.reasons)
            return
        self._raise_quantum(request_id, ctx_rules)
        for _attempt in range(MAX_AUDIT_RETRIES):
            outcome = self._run(request_id, requester, technique, plan, purpose, ctx_rules)
            if outcome is None:
                return
            try:
                self.release(request_id, requester, plan, outcome, ctx_rules)
                return
            except AuditRace:
                continue  # another release changed what this one must be audited against
        self._fail(
            request_id,
            "other releases on the same datasets kept changing the disclosure audit while "
            "this request ran; submit it again",
        )

    def _run(
        self,
        request_id: str,
        requester: Party,
        technique: Technique,
        plan: Plan,
        purpose: str,
        rules: Rules,
    ) -> Outcome | None:
        """Run and filter the outcome; on a refusal or failure, finish the request (None)."""
        ctx = self._run_context(requester, technique, plan, rules, purpose)
        try:
            outcome = technique.run(plan, ctx)
            crashpoint("after_run")
            return technique.release(plan, outcome, rules)
        except PolicyRefusal as exc:
            self._finish_refused(request_id, "zone", exc.reasons)
        except FailedAfterSpending as exc:  # what a mechanism spent before failing is charged
            self._fail(request_id, exc.message, charge=(requester, exc.spent, rules))
        except CollabzoneError as exc:
            self._fail(request_id, exc.message)
        except Exception as exc:  # a bug or an engine error: never leak data-dependent text
            log.exception("request %s: technique %s failed", request_id, plan.technique)
            self._fail(
                request_id,
                f"the technique failed ({type(exc).__name__}); the operator can see the log",
            )
        finally:
            ctx.close()
        return None

    def release(
        self, request_id: str, requester: Party, plan: Plan, outcome: Outcome, rules: Rules
    ) -> None:
        """Commit the outcome: budget re-check and debit, result, receipt, audit, together."""
        payload = {k: v for k, v in outcome.payload.items() if not str(k).startswith("_")}
        monitor = outcome.payload.get("_monitor")
        released_to = tuple(outcome.released_to) or (requester.name,)
        if outcome.parts:  # each part is stored apart and shown only to its party
            payload[PARTS_KEY] = {str(k): dict(v) for k, v in outcome.parts.items()}
            released_to += tuple(p for p in outcome.parts if p not in released_to)
        self._pace(request_id)  # a release and a refusal end on the same public ladder step
        sealed = write_derived(self._data, outcome.derived) if outcome.derived else None
        try:
            with self._engine.begin() as conn:
                audit.lock_head(conn)
                crashpoint("before_debit")
                spent_after: dict[str, dict[str, float | None]] = {}
                debits: list[dict[str, str]] = []
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
                    debits.append(_debit(requester.name, dataset, period, cost))
                    spent_after[dataset] = remaining([*already, cost], _limit(dataset_rules))
                for change in outcome.audit_updates:
                    try:
                        repo.store_audit_state(
                            conn, change.space, change.base_version, change.state, repo.iso(now)
                        )
                    except ConflictError:
                        raise AuditRace(f"audit space {change.space} changed") from None
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
                    {"receipt": receipt_doc, "released_to": list(released_to), "debits": debits},
                )
                _write_debits(conn, request_id, event, debits, now)
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
                if outcome.derived is not None and sealed is not None:
                    register_derived(
                        conn,
                        self._mac_key(),
                        owner=requester.name,
                        derived=outcome.derived,
                        sealed=sealed,
                        request_id=request_id,
                        now=now,
                    )
                crashpoint("before_commit")
        except BudgetExhaustedError as exc:
            if sealed is not None:
                self._data.remove(sealed[0])
            self._finish_refused(request_id, "zone", exc.reasons)
            return
        except BaseException:
            if sealed is not None:
                self._data.remove(sealed[0])
            raise
        crashpoint("after_commit")

    def _fail(
        self,
        request_id: str,
        message: str,
        charge: tuple[Party, Mapping[str, PrivacyCost], Rules] | None = None,
    ) -> None:
        """End the request ``failed``; ``charge`` debits privacy loss already spent (no
        cap check: it cannot be unspent) in the same transaction as the audit event."""
        self._pace(request_id)
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            details: dict[str, Any] = {"error": message}
            debits: list[dict[str, str]] = []
            if charge is not None:
                requester, spent, rules = charge
                now = dt.datetime.now(dt.UTC)
                details["charged"] = {dataset: cost.as_dict() for dataset, cost in spent.items()}
                debits = [
                    _debit(
                        requester.name,
                        dataset,
                        budget_period_of(rules.by_dataset.get(dataset, {}), now),
                        cost,
                    )
                    for dataset, cost in spent.items()
                ]
                details["debits"] = debits
            event = self._move(
                conn,
                request_id,
                RequestStatus.FAILED,
                "zone",
                details,
                reasons=[message],
            )
            if debits:
                _write_debits(conn, request_id, event, debits, dt.datetime.now(dt.UTC))

    # -- pacing and last-resort endings ----------------------------------------------------

    @contextmanager
    def _timed(self, request_id: str) -> Iterator[None]:
        """Start the request's clock (see pacing.py) unless an outer step already did."""
        if request_id in self._clocks:
            yield
            return
        self._clocks[request_id] = Clock(self._pacing)
        try:
            yield
        finally:
            self._clocks.pop(request_id, None)

    def _raise_quantum(self, request_id: str, rules: Rules) -> None:
        clock = self._clocks.get(request_id)
        if clock is not None:
            clock.pacing = clock.pacing.raised(rules.get("response_quantum"))

    def _pace(self, request_id: str) -> None:
        """Hold an outcome until the next public ladder step of its request's clock."""
        clock = self._clocks.get(request_id)
        if clock is not None:
            clock.wait()

    def _settle(self, request_id: str, error: Exception) -> None:
        """Last resort after an unexpected error: the request ends ``failed`` (audited,
        with a message naming only the error's type), never stuck half-way."""
        log.error("request %s: unexpected %s", request_id, type(error).__name__, exc_info=error)
        try:
            with self._engine.connect() as conn:
                status = RequestStatus(repo.get_request_row(conn, request_id)["status"])
            if status not in lifecycle.FINAL:
                self._fail(
                    request_id,
                    f"the zone failed while handling the request ({type(error).__name__}); "
                    "the operator can see the log",
                )
        except Exception:
            log.exception("request %s could not be marked failed", request_id)
            raise error from None

    def recover(self) -> list[str]:
        """Fail the requests that a dead process left half-way; returns their ids.

        Called when a zone opens. A request is abandoned when it is being carried
        (submitted, checked, approved, running) and its worker is dead on this host, or
        untouched beyond the lease elsewhere (see workers.py). Owner-placed jobs waiting in
        ``approved`` for their node, and requests awaiting approval, are never touched.
        Nothing was released or charged for an abandoned request (release and debit
        commit together), so failing it is safe; the audit event names the worker.
        """
        now = dt.datetime.now(dt.UTC)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    t.requests.c.id,
                    t.requests.c.status,
                    t.requests.c.placement,
                    t.requests.c.worker,
                    t.requests.c.updated_at,
                ).where(t.requests.c.status.in_([s.value for s in _OPEN]))
            ).all()
        failed = []
        for row in rows:
            if row.placement == "owner" and row.status == RequestStatus.APPROVED.value:
                continue  # a job waiting for its node, not for a zone process
            if not workers.abandoned(row.worker, dt.datetime.fromisoformat(row.updated_at), now):
                continue
            with self._engine.begin() as conn:
                audit.lock_head(conn)
                current = repo.get_request_row(conn, row.id, for_update=True)
                if current["status"] != row.status or current.get("worker") != row.worker:
                    continue  # someone moved it meanwhile
                message = "the zone process carrying this request stopped; submit it again"
                self._move(
                    conn,
                    row.id,
                    RequestStatus.FAILED,
                    "zone",
                    {"error": message, "recovered_from": row.status, "worker": row.worker},
                    reasons=[message],
                )
            failed.append(row.id)
        return failed


def _debit(party: str, dataset: str, period: str, cost: PrivacyCost) -> dict[str, str]:
    """One ledger debit as its audit event lists it (exact decimal strings)."""
    return debit_entry(party, dataset, period, repr(cost.epsilon), repr(cost.delta), repr(cost.rho))


def _write_debits(
    conn: Connection,
    request_id: str,
    event: audit.AuditEvent,
    debits: list[dict[str, str]],
    now: dt.datetime,
) -> None:
    """Write the ledger rows ``event`` lists, each naming it (see audit_ledger.py)."""
    for debit in debits:
        conn.execute(
            t.budget_debits.insert().values(
                request_id=request_id, event_id=event.id, at=repo.iso(now), **debit
            )
        )
