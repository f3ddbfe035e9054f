"""Owner-placed requests run as jobs at the data owner's node.

:class:`JobsEngine` lists the approved jobs waiting for a node and takes back what the node
computed: it checks the job belongs to that node, accepts only the audit spaces of that job
(:func:`node_audit_spaces`), re-checks the rules, filters the outcome and releases it through
the same path as a zone-run request. Kept apart because a node's answer is untrusted input
arriving from outside the zone process.

Fan-out jobs (a federated job runs at the nodes of *every* owner it touches): an
owner-placed plan without a single ``node`` lists its nodes in ``details["nodes"]``. Each
of them sees the job only once it is approved (every owner approved); a node may hand back
only a refusal (it checked the spec its owner approved and refused it); the result comes
from the zone's own aggregator through :meth:`JobsEngine.complete_fanout`. The zone signs
the plan's ``details["spec_sha256"]`` (Ed25519, :meth:`JobsEngine.job_signature`) so a node
can tell the zone's word from anyone else's.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from collabzone import audit, workers
from collabzone.budget import PrivacyCost
from collabzone.errors import (
    CollabzoneError,
    InvalidInputError,
    NotAuthorisedError,
    PolicyRefusal,
    Reason,
)
from collabzone.model import Party, Request, RequestStatus
from collabzone.request_core import REFUSED_KEY, AuditRace, EngineCore, _plan_from_json
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.techniques import registry
from collabzone.techniques.base import AuditUpdate, Outcome


def node_audit_spaces(technique: str, datasets: Sequence[str], requester: str) -> list[str]:
    """The audit spaces a node job may read and write: per planned dataset, every
    requester's (``<technique>:<dataset>:all``) and this requester's
    (``<technique>:<dataset>:requester:<name>``). Nothing else a node sends is stored."""
    return [
        f"{technique}:{dataset}:{scope}"
        for dataset in datasets
        for scope in ("all", f"requester:{requester}")
    ]


def fanout_nodes(plan: Mapping[str, Any]) -> tuple[str, ...]:
    """The nodes of a fan-out job (empty for a one-node or zone-placed plan)."""
    if plan.get("placement") != "owner" or plan.get("node") is not None:
        return ()
    return tuple(str(n) for n in (plan.get("details") or {}).get("nodes", ()))


def is_job_node(row: Mapping[str, Any], node: str) -> bool:
    """Whether ``node`` runs (part of) the owner-placed job of request ``row``: its single
    node, or one of a fan-out job's nodes once every owner approved it."""
    if row["placement"] != "owner":
        return False
    if row["node"] is not None:
        return bool(row["node"] == node)
    live = row["status"] in (RequestStatus.APPROVED.value, RequestStatus.RUNNING.value)
    return live and node in fanout_nodes(dict(row["plan"] or {}))


def _node_updates(
    updates: Sequence[Mapping[str, Any]], allowed: Sequence[str]
) -> tuple[AuditUpdate, ...]:
    """Decode a node's audit updates (base64 states), refusing spaces outside its job."""
    out = []
    for doc in updates:
        space, version, state = doc.get("space"), doc.get("base_version"), doc.get("state")
        if space not in allowed:
            raise NotAuthorisedError("a node may only update the audit spaces of its own job")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise InvalidInputError("an audit update's base_version must be an integer or null")
        try:
            blob = base64.b64decode(str(state), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError("an audit update's state must be base64") from None
        out.append(AuditUpdate(str(space), version, blob))
    return tuple(out)


class JobsEngine(EngineCore):
    """Hands owner-placed jobs to their nodes and releases what the nodes send back."""

    def complete(
        self,
        node: Party,
        request_id: str,
        payload: Mapping[str, Any],
        spent: Mapping[str, Mapping[str, float]],
        rows_suppressed: int = 0,
        mechanism: str | None = None,
        noise_scale: float | None = None,
        audit_updates: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """A node returns the outcome of an owner-placed job; the zone filters and releases it.

        Errors before the job starts running here (wrong node, a job already finished)
        reach the caller; once it runs, any error ends it ``failed`` (see :meth:`_settle`).
        """
        with self._timed(request_id):
            try:
                self._complete(node, request_id, payload, spent, rows_suppressed, mechanism,
                               noise_scale, audit_updates)  # fmt: skip
            except Exception as exc:
                with self._engine.connect() as conn:
                    row = repo.get_request_row(conn, request_id)
                running_here = row["status"] == RequestStatus.RUNNING.value
                if not (running_here and row["worker"] == workers.current()):
                    raise
                self._settle(request_id, exc)

    def _complete(
        self,
        node: Party,
        request_id: str,
        payload: Mapping[str, Any],
        spent: Mapping[str, Mapping[str, float]],
        rows_suppressed: int = 0,
        mechanism: str | None = None,
        noise_scale: float | None = None,
        audit_updates: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """The steps of :meth:`complete`.

        ``audit_updates`` (``{space, base_version, state}``, state base64) are the node's new
        disclosure-audit states, stored in the release transaction (compare-and-swap).
        """
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
        if not is_job_node(row, node.name):
            self.audit_denied(
                node.name, request_id, {node.name, row["requester"]}, {"attempt": "complete_job"}
            )
            raise NotAuthorisedError(f"request {request_id} is not a job for node {node.name!r}")
        if row["node"] is None and not payload.get(REFUSED_KEY):
            self.audit_denied(
                node.name, request_id, {node.name, row["requester"]}, {"attempt": "complete_job"}
            )
            raise NotAuthorisedError(
                f"a node of fan-out job {request_id} may only refuse it; its result comes "
                "from the zone's aggregator"
            )
        self._release_job(node.name, request_id, payload, spent, rows_suppressed, mechanism,
                          noise_scale, audit_updates)  # fmt: skip

    def complete_fanout(
        self,
        request_id: str,
        payload: Mapping[str, Any],
        spent: Mapping[str, Mapping[str, float]],
        mechanism: str | None = None,
    ) -> None:
        """The zone's aggregator hands back a fan-out job's result (host processes only:
        no party reaches this); filtered, charged and released like a node's result."""
        with self._timed(request_id):
            with self._engine.connect() as conn:
                row = repo.get_request_row(conn, request_id)
            if not fanout_nodes(dict(row["plan"] or {})):
                raise InvalidInputError(f"request {request_id} is not a fan-out job")
            running_here = (
                row["status"] == RequestStatus.RUNNING.value and row["worker"] == workers.current()
            )
            if row["status"] != RequestStatus.APPROVED.value and not running_here:
                raise InvalidInputError(
                    f"request {request_id} is {row['status']}; only an approved fan-out job, "
                    "or one this process's aggregator runs, takes its aggregator's result"
                )
            try:
                self._release_job("zone", request_id, payload, spent, 0, mechanism, None, ())
            except Exception as exc:
                self._settle(request_id, exc)

    def start_fanout(self, request_id: str, details: Mapping[str, Any]) -> None:
        """The zone's aggregator takes an approved fan-out job: ``running``, carried by this
        process (``requests.worker``), so a crash leaves it to :meth:`recover` to fail."""
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            row = repo.get_request_row(conn, request_id, for_update=True)
            if not fanout_nodes(dict(row["plan"] or {})):
                raise InvalidInputError(f"request {request_id} is not a fan-out job")
            if row["status"] != RequestStatus.APPROVED.value:
                raise InvalidInputError(
                    f"request {request_id} is {row['status']}: an aggregator starts only an "
                    "approved fan-out job"
                )
            self._move(conn, request_id, RequestStatus.RUNNING, "zone", dict(details),
                       worker=workers.current())  # fmt: skip

    def fail_fanout(
        self, request_id: str, message: str, spent: Mapping[str, PrivacyCost] | None = None
    ) -> None:
        """The aggregator of a fan-out job stopped before its release: ``failed``, audited,
        debiting ``spent`` (privacy loss of rounds already run) in the same transaction."""
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
            requester = repo.get_party(conn, row["requester"])
        if not fanout_nodes(dict(row["plan"] or {})):
            raise InvalidInputError(f"request {request_id} is not a fan-out job")
        if row["status"] not in (RequestStatus.APPROVED.value, RequestStatus.RUNNING.value):
            return  # already ended (released, refused or failed)
        charge = None
        if spent and any(c.epsilon > 0 for c in spent.values()):
            plan = _plan_from_json(row["plan"])
            rules = self._rules_now(requester, registry.get(row["technique"]), plan,
                                    row["purpose"])  # fmt: skip
            charge = (requester, dict(spent), rules)
        self._fail(request_id, message, charge)

    def job_event(self, request_id: str, action: str, details: Mapping[str, Any]) -> None:
        """Audit one step of a running fan-out job (see ``Zone.job_event``)."""
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
            owners = set(repo.dataset_owners(conn, list(row["datasets"])).values())
        if not fanout_nodes(dict(row["plan"] or {})):
            raise InvalidInputError(f"request {request_id} is not a fan-out job")
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            audit.append(
                conn,
                self._mac_key(),
                actor="zone",
                action=f"job.{action}",
                subject=request_id,
                parties=sorted({row["requester"], *owners}),
                details=dict(details),
            )

    def job_signature(self, digest: str) -> tuple[str, str]:
        """The zone's Ed25519 signature (hex) over a fan-out job's spec digest, and the
        zone's job-signing public key (hex raw bytes) a node pins."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from collabzone.zone_base import SERVICES_KEY  # zone_base imports this module

        self._keys.create(SERVICES_KEY)
        seed = self._keys.derive(SERVICES_KEY, f"{self._zone_id}/job-signing")
        key = Ed25519PrivateKey.from_private_bytes(seed[:32])
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return key.sign(digest.encode()).hex(), public.hex()

    def _release_job(
        self,
        actor: str,
        request_id: str,
        payload: Mapping[str, Any],
        spent: Mapping[str, Mapping[str, float]],
        rows_suppressed: int | None,
        mechanism: str | None,
        noise_scale: float | None,
        audit_updates: Sequence[Mapping[str, Any]],
    ) -> None:
        """Run a job's result through the technique's ``release`` and the zone's."""
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
            requester = repo.get_party(conn, row["requester"])
        plan = _plan_from_json(row["plan"])
        technique = registry.get(row["technique"])
        updates = _node_updates(
            audit_updates, node_audit_spaces(technique.name, plan.datasets, row["requester"])
        )
        if row["status"] != RequestStatus.RUNNING.value:  # a fan-out job runs already
            with self._engine.begin() as conn:
                audit.lock_head(conn)
                self._move(conn, request_id, RequestStatus.RUNNING, actor,
                           worker=workers.current())  # fmt: skip
        refused = payload.get(REFUSED_KEY)
        if refused:
            # the node's own checks (monitor, bad input) refused the job: nothing is released
            reasons = [
                Reason(**{k: r.get(k) for k in ("code", "rule", "message", "owner")})
                for r in refused
            ]
            self._finish_refused(request_id, actor, reasons)
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
                    audit_updates=updates,
                ),
                rules,
            )
        except PolicyRefusal as exc:
            self._finish_refused(request_id, "zone", exc.reasons)
            return
        except CollabzoneError as exc:  # a malformed result from the node
            self._fail(request_id, exc.message)
            return
        if updates and not outcome.audit_updates:
            outcome = dataclasses.replace(outcome, audit_updates=updates)  # never dropped
        try:
            self.release(request_id, requester, plan, outcome, rules)
        except AuditRace:
            self._finish_refused(
                request_id,
                "zone",
                [
                    Reason(
                        "CONCURRENT_RELEASE",
                        "disclosure audit",
                        "another release on the same data came first; submit the job again",
                    )
                ],
            )

    def jobs_for(self, node: Party) -> list[Request]:
        """Approved owner-placed requests waiting for ``node``, and the fan-out jobs it takes
        part in while approved or running (their aggregator runs; the node stays joined)."""
        with self._engine.connect() as conn:
            live = (RequestStatus.APPROVED, RequestStatus.RUNNING)
            requests = [r for r in repo.list_requests(conn) if r.status in live]
            fanout = {
                row.id
                for row in conn.execute(
                    select(t.requests.c.id, t.requests.c.plan).where(
                        t.requests.c.status.in_([s.value for s in live]),
                        t.requests.c.placement == "owner",
                        t.requests.c.node.is_(None),
                    )
                )
                if node.name in fanout_nodes(dict(row.plan or {}))
            }
        return [
            r
            for r in requests
            if r.id in fanout
            or (r.status is RequestStatus.APPROVED and r.runs_at == f"owner:{node.name}")
        ]

    def approved_fanout(self, technique: str) -> list[str]:
        """Ids of approved fan-out jobs of ``technique`` no aggregator has taken yet,
        oldest first (the zone's aggregator polls them)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(t.requests.c.id, t.requests.c.plan)
                .where(
                    t.requests.c.status == RequestStatus.APPROVED.value,
                    t.requests.c.technique == technique,
                    t.requests.c.placement == "owner",
                    t.requests.c.node.is_(None),
                )
                .order_by(t.requests.c.created_at)
            ).all()
        return [row.id for row in rows if fanout_nodes(dict(row.plan or {}))]
