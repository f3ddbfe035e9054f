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
