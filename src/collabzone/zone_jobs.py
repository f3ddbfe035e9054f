"""The zone's operations for node agents: the jobs waiting for a party's node, what a node
needs to run one (the checked plan, the monitor history, the disclosure-audit spaces), and
handing its outcome back (see node.py and request_jobs.py)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from collabzone.errors import NotAuthorisedError
from collabzone.model import Request
from collabzone.request_jobs import fanout_nodes, is_job_node
from collabzone.requests import node_audit_spaces
from collabzone.store import repo
from collabzone.zone_base import ZoneBase


class JobOps(ZoneBase):
    """A party's node agent's operations on its jobs."""

    def jobs(self) -> list[Request]:
        """Approved jobs waiting for this party's node."""
        return self._requests.jobs_for(self.me)

    def complete_job(
        self,
        request_id: str,
        payload: Mapping[str, Any],
        spent: Mapping[str, Mapping[str, float]] | None = None,
        **outcome: Any,
    ) -> Request:
        """Hand back a job's outcome; the zone filters, charges and releases it.

        ``outcome`` may carry ``rows_suppressed``, ``mechanism``, ``noise_scale`` and
        ``audit_updates`` (``[{space, base_version, state}]``, state base64: the new states
        of the spaces :meth:`job_context` handed out).
        """
        self._requests.complete(self.me, request_id, payload, spent or {}, **outcome)
        with self._engine.connect() as conn:  # complete() checked that this is the job's node
            return repo.get_request(conn, request_id)

    def job_context(self, request_id: str) -> dict[str, Any]:
        """What a node needs to run one of its jobs: the stored plan and the monitor history.

        Owner-placed techniques run at a node (see src/collabzone/node.py), which needs the
        plan the zone checked (``plan``: technique, datasets, cost, details, node) and, per
        planned dataset, what earlier releases stored for query monitoring (``history``:
        their hidden ``_monitor`` dicts with ``requester`` and ``released_at`` added), and
        the job's disclosure-audit spaces (``audit``: ``{space: {version, state}}``, state
        base64; the spaces are ``<technique>:<dataset>:all`` and
        ``<technique>:<dataset>:requester:<requester>``, see
        :func:`~collabzone.requests.node_audit_spaces`), so it can refuse combinations of
        releases and hand the new states back with :meth:`complete_job`. Only the job's node
        may read it.
        """
        me = self.me
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
        if not is_job_node(row, me.name):
            self._requests.audit_denied(
                me.name, request_id, {me.name, row["requester"]}, {"attempt": "job_context"}
            )
            raise NotAuthorisedError(f"request {request_id} is not a job for {me.name!r}")
        plan = dict(row["plan"])
        spaces = node_audit_spaces(row["technique"], plan.get("datasets", []), row["requester"])
        with self._engine.connect() as conn:
            history = {name: repo.monitor_history(conn, name) for name in plan.get("datasets", [])}
            stored = {space: repo.audit_state(conn, space) for space in spaces}
        states = {
            space: {"version": found[0], "state": base64.b64encode(found[1]).decode("ascii")}
            for space, found in stored.items()
            if found is not None
        }
        context: dict[str, Any] = {"plan": plan, "history": history, "audit": states}
        if fanout_nodes(plan):  # a fan-out job: the zone's signature over the spec's digest
            digest = str(plan["details"]["spec_sha256"])
            context["signature"], context["zone_key"] = self._requests.job_signature(digest)
        return context
