"""The zone's host operations that drive a fan-out job's aggregator (see request_jobs.py).

A fan-out job (federated learning: one job at every owner's node) is aggregated by the
zone's host process. These host-only operations let a background aggregator find the
approved jobs, take one (``approved -> running``, carried by this process, so a crash
leaves it to the recovery of the next zone opening, which fails it and audits that), and
end it ``failed`` when its run breaks. The result itself goes through
``Zone.complete_fanout``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collabzone.budget import PrivacyCost
from collabzone.errors import InvalidInputError, NotAuthorisedError
from collabzone.model import Request
from collabzone.request_jobs import fanout_nodes
from collabzone.store import repo
from collabzone.zone_base import ZoneBase


class FanoutOps(ZoneBase):
    """Host operations of a fan-out job's aggregator."""

    def approved_fanout(self, technique: str) -> list[str]:
        """Ids of approved fan-out jobs of ``technique`` waiting for an aggregator, oldest
        first (host processes only)."""
        self._require_host("approved_fanout")
        return self._requests.approved_fanout(technique)

    def start_fanout(self, request_id: str, details: Mapping[str, Any] | None = None) -> None:
        """Take an approved fan-out job: it becomes ``running``, carried by this process
        (``details`` go into the audit event, e.g. the aggregator's mode). Host only."""
        self._require_host("start_fanout")
        self._requests.start_fanout(request_id, details or {})

    def fail_fanout(
        self, request_id: str, message: str, spent: Mapping[str, PrivacyCost] | None = None
    ) -> None:
        """End a fan-out job whose aggregator stopped ``failed``, audited, debiting ``spent``
        (the privacy loss of rounds already run). A job already ended is left as it is."""
        self._require_host("fail_fanout")
        self._requests.fail_fanout(request_id, message, spent)

    def job_signing_key(self) -> str:
        """The zone's public job-signing key (hex): the operator hands it to the owners,
        whose nodes pin it to check fan-out job specs (host processes only)."""
        self._require_host("job_signing_key")
        return self._requests.job_signature("")[1]

    def complete_fanout(
        self,
        request_id: str,
        payload: Mapping[str, Any],
        spent: Mapping[str, Mapping[str, float]] | None = None,
        mechanism: str | None = None,
    ) -> Request:
        """The zone's aggregator (a host process) hands back a fan-out job's result; the
        zone filters, charges and releases it as it would a node's."""
        self._require_host("complete_fanout")
        self._requests.complete_fanout(request_id, payload, spent or {}, mechanism)
        with self._engine.connect() as conn:
            return repo.get_request(conn, request_id)

    def fanout_job(self, request_id: str) -> dict[str, Any]:
        """A fan-out job as its aggregator needs it (host processes only): ``status``,
        ``requester``, the stored ``plan`` and the zone's ``signature`` over its spec digest
        with the ``zone_key`` to check it (what a ServerApp hands the ClientApps)."""
        self._require_host("fanout_job")
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
        plan = dict(row["plan"] or {})
        if not fanout_nodes(plan):
            raise InvalidInputError(f"request {request_id} is not a fan-out job")
        signature, key = self._requests.job_signature(str(plan["details"]["spec_sha256"]))
        return {
            "status": row["status"],
            "requester": row["requester"],
            "plan": plan,
            "signature": signature,
            "zone_key": key,
        }

    def job_evaluation_table(self, request_id: str) -> Any:
        """The dataset a fan-out plan names to score its rounds on (``details["evaluation"]``),
        as an Arrow table; it must belong to the requester (host processes only)."""
        self._require_host("job_evaluation_table")
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
            name = (dict(row["plan"] or {}).get("details") or {}).get("evaluation")
            if not name or not fanout_nodes(dict(row["plan"] or {})):
                raise InvalidInputError(f"request {request_id} names no evaluation dataset")
            dataset = repo.get_dataset_row(conn, str(name))
        if dataset["owner"] != row["requester"]:
            raise NotAuthorisedError(f"{name!r} does not belong to {row['requester']!r}")
        return self._data.read(str(name), dataset["version"], dataset["data_file"])

    def job_event(self, request_id: str, action: str, details: Mapping[str, Any]) -> None:
        """Append a ``job.<action>`` audit event of a running fan-out job (e.g. one per
        federated round: who took part, clipping, noise, epsilon so far), visible to the
        requester and the owners of its datasets. Host processes only."""
        self._require_host("job_event")
        self._requests.job_event(request_id, action, details)
