"""The node agent: runs owner-placed techniques where the data lives.

A node is a party's process next to its own files (the data owner's premises, or a
mediator entrusted with tokenised data). It pulls the approved jobs the zone queued for
it, runs each technique against local files through a :class:`LocalRunContext` (the
:class:`~collabzone.techniques.base.RunContext` protocol, without any zone storage), and
hands back the outcome with :meth:`Zone.complete_job` (with the new states of the job's
disclosure-audit spaces, read from ``job_context``); the zone then filters, charges and
releases it, storing those states in the same transaction. The agent only uses zone
methods (``me``, ``jobs``, ``request``, ``parties``, ``datasets``, ``agreements``,
``job_context``, ``complete_job``), so the embedded Zone and the remote client work alike.

>>> agent = NodeAgent(zone, {"labels": "labels.csv"}, keys=keyring)   # doctest: +SKIP
>>> agent.run_once()                                                  # doctest: +SKIP

Refusals raised at the node (a bad token, a differencing attempt) go back as a payload
``{"_refused": [reason, ...]}``; the technique's ``release`` turns it into the refusal.

Fan-out jobs (``federated``: one job at every owner's node, see
:func:`collabzone.request_jobs.fanout_nodes`) are not completed by a node: the node checks
the job against what its owner approved **at this node** (:meth:`NodeAgent.approve` records
the spec digest the owner was shown, in ``approvals``, optionally a JSON file) and the
zone's signature, then joins the zone's aggregator (the technique's ``join``); only a
refusal goes back through ``complete_job``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa

from collabzone.budget import PrivacyCost
from collabzone.errors import (
    CollabzoneError,
    ConflictError,
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
    PolicyRefusal,
    Reason,
)
from collabzone.keys import KeyProvider, derive
from collabzone.model import Agreement, Dataset, Party, Request
from collabzone.runtime import sandboxed_duckdb
from collabzone.techniques import registry
from collabzone.techniques.base import Outcome, Plan

log = logging.getLogger("collabzone.node")
NODE_KEY = "node-techniques"


class ZoneAPI(Protocol):
    """The zone methods a node uses (the embedded Zone and the remote client offer them)."""

    @property
    def me(self) -> Party: ...

    def jobs(self) -> list[Request]: ...

    def parties(self) -> list[Party]: ...

    def datasets(self) -> list[Dataset]: ...

    def agreements(self, dataset: str | None = None) -> list[Agreement]: ...

    def job_context(self, request_id: str) -> dict[str, Any]: ...

    def request_plan(self, request_id: str) -> dict[str, Any]: ...

    def request(self, request_id: str) -> Request: ...

    def approve(self, request_id: str, reason: str) -> Request: ...

    def complete_job(
        self,
        request_id: str,
        payload: Mapping[str, Any],
        spent: Mapping[str, Mapping[str, float]] | None = None,
        **outcome: Any,
    ) -> Request: ...


def plan_of(request: Request, doc: Mapping[str, Any]) -> Plan:
    """Rebuild the plan the zone stored for a job (from ``Zone.job_context``)."""
    return Plan(
        technique=request.technique,
        datasets=tuple(doc.get("datasets", request.datasets)),
        cost={k: PrivacyCost(**v) for k, v in (doc.get("cost") or {}).items()},
        columns={k: tuple(v) for k, v in (doc.get("columns") or {}).items()},
        outputs=doc.get("outputs", ""),
        details=doc.get("details", {}),
        placement="owner",
        node=doc.get("node"),
    )


def read_local(path: str | Path) -> pa.Table:
    """Read a node's local data file (CSV or Parquet); it never leaves this process."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    source = Path(path)
    try:
        if source.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(source)
        # empty cells are missing values, not empty strings (a missing label is no label)
        return pacsv.read_csv(
            source, convert_options=pacsv.ConvertOptions(strings_can_be_null=True)
        )
    except FileNotFoundError:
        raise NotFoundError(f"no local data file at {source}") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInputError(
            f"{source.name} is not a readable CSV/Parquet file ({type(exc).__name__})"
        ) from None


@dataclass
class LocalRunContext:
    """RunContext over a node's own files: data never leaves this process."""

    zone: ZoneAPI
    request: Request
    tables: Mapping[str, pa.Table]
    monitor: Mapping[str, list[dict[str, Any]]]
    keys: KeyProvider | None
    ephemeral_key: bytes
    seed: int | None = None
    audit: Mapping[str, tuple[int, bytes]] = field(default_factory=dict)
    """The job's disclosure-audit states (space -> version, state) from ``job_context``."""

    def __post_init__(self) -> None:
        self._now = dt.datetime.now(dt.UTC)
        self._parties = {p.name: p for p in self.zone.parties()}
        self._rng = np.random.default_rng(self.seed)
        self._connection: duckdb.DuckDBPyConnection | None = None

    @property
    def requester(self) -> Party:
        return self._parties[self.request.requester]

    @property
    def now(self) -> dt.datetime:
        return self._now

    @property
    def purpose(self) -> str:
        return self.request.purpose

    def dataset(self, name: str) -> Dataset:
        for dataset in self.zone.datasets():
            if dataset.name == name:
                return dataset
        raise NotFoundError(f"the node cannot see dataset {name!r}")

    def visible_datasets(self) -> list[Dataset]:
        return self.zone.datasets()

    def agreements_for(self, dataset: str) -> list[Agreement]:
        return [
            a
            for a in self.zone.agreements(dataset)
            if a.grants(self.requester) and a.is_active(self._now)
        ]

    def party(self, name: str) -> Party:
        if name not in self._parties:
            raise NotFoundError(f"no party named {name!r}")
        return self._parties[name]

    def table(self, dataset: str) -> pa.Table:
        if dataset not in self.request.datasets:
            raise NotAuthorisedError(f"dataset {dataset!r} is not part of this job's plan")
        if dataset not in self.tables:
            raise NotFoundError(f"this node holds no local file for {dataset!r} (--data)")
        return self.tables[dataset]

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            con = sandboxed_duckdb()
            for name in self.request.datasets:
                con.register(name, self.table(name))
            self._connection = con
        return self._connection

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        if self.keys is None:
            return derive(self.ephemeral_key, purpose, length, context=NODE_KEY)
        self.keys.create(NODE_KEY)
        return self.keys.derive(NODE_KEY, purpose, length)

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    def spent(self, dataset: str) -> PrivacyCost:
        return PrivacyCost()  # the zone re-checks and debits the budget at release

    def history(self, dataset: str) -> list[Mapping[str, Any]]:
        return list(self.monitor.get(dataset, []))

    def audit_state(self, space: str) -> tuple[int, bytes] | None:
        return self.audit.get(space)

    def technique_dir(self) -> Path:
        raise ConflictError(
            f"{self.request.technique} keeps files in the zone, not at a node: "
            "it cannot run at an owner's premises"
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class NodeAgent:
    """Pulls this party's approved jobs, runs them on local files, completes them.

    ``keys`` holds the node's own key (sealing key, monitor digests); without it a random
    per-process key is used, which is fine for tests but loses monitoring across restarts
    and changes the node's public key: give a keyring in production.
    """

    def __init__(
        self,
        zone: ZoneAPI,
        local_datasets: Mapping[str, str | Path],
        *,
        keys: KeyProvider | None = None,
        seed: int | None = None,
        approvals: Path | None = None,
        zone_key: str | None = None,
        superlink: str | None = None,
        workdir: Path | None = None,
        node_config: Mapping[str, str] | None = None,
        root_certificates: Path | None = None,
    ) -> None:
        self.zone = zone
        self.local_datasets = {name: Path(path) for name, path in local_datasets.items()}
        self.keys = keys
        self._ephemeral = secrets.token_bytes(32)
        self._seed = seed
        self._tables: dict[str, pa.Table] = {}
        self._approvals_file = approvals
        self.approvals: dict[str, str] = (
            json.loads(approvals.read_text(encoding="utf-8"))
            if approvals is not None and approvals.exists()
            else {}
        )
        """Request id -> the spec digest this node's owner approved (fan-out jobs)."""
        self.zone_key = zone_key
        """The zone's job-signing public key (hex) pinned by the owner; None: as sent."""
        self.joined: set[str] = set()
        """Fan-out jobs this node joined (it does not join them again)."""
        self.superlink = superlink
        """The zone's Flower SuperLink (host:port): fan-out jobs start a SuperNode there."""
        self.workdir = workdir or Path(".")
        self.node_config = dict(node_config or {})
        self.root_certificates = root_certificates
        """The zone's CA (PEM) the SuperNode verifies the SuperLink with; None: insecure
        (tests and demos only)."""

    def approve(self, request_id: str, reason: str) -> Request:
        """The owner approves a request from its node: the spec digest it was shown is
        recorded in the node's approval book before the approval reaches the zone."""
        digest = self.zone.request_plan(request_id).get("details", {}).get("spec_sha256")
        if digest:
            self.approvals[request_id] = str(digest)
            if self._approvals_file is not None:
                self._approvals_file.write_text(json.dumps(self.approvals), encoding="utf-8")
        return self.zone.approve(request_id, reason)

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        """The node key for ``purpose`` (e.g. the validator's sealing seed)."""
        if self.keys is None:
            return derive(self._ephemeral, purpose, length, context=NODE_KEY)
        self.keys.create(NODE_KEY)
        return self.keys.derive(NODE_KEY, purpose, length)

    def _load(self, names: tuple[str, ...]) -> dict[str, pa.Table]:
        for name in names:
            if name not in self._tables and name in self.local_datasets:
                self._tables[name] = read_local(self.local_datasets[name])
        return {n: self._tables[n] for n in names if n in self._tables}

    def run_job(self, request: Request) -> Request:
        """Run one job and hand its outcome (or refusal) back to the zone."""
        try:
            context = self.zone.job_context(request.id)
            plan = plan_of(request, context["plan"])
            technique = registry.get(request.technique)
            join = getattr(technique, "join", None)
            fan_out = plan.node is None and join is not None
            if fan_out:  # before a row is read: is this what the owner approved here?
                technique.check_at_node(  # type: ignore[attr-defined]
                    plan, context, self.zone.me.name, self.approvals.get(request.id),
                    self.zone_key,
                )  # fmt: skip
            ctx = LocalRunContext(
                self.zone,
                request,
                self._load(plan.datasets),
                context.get("history", {}),
                self.keys,
                self._ephemeral,
                self._seed,
                audit={
                    space: (int(doc["version"]), base64.b64decode(doc["state"]))
                    for space, doc in (context.get("audit") or {}).items()
                },
            )
            if fan_out and join is not None:  # a fan-out job: join, do not complete
                options = {
                    "superlink": self.superlink,
                    "workdir": self.workdir,
                    "approved": self.approvals.get(request.id),
                    "paths": self.local_datasets,
                    "node_config": self.node_config,
                    "root_certificates": self.root_certificates,
                }
                try:
                    if join(request.id, plan, ctx, self.zone.me.name, options):
                        self.joined.add(request.id)
                    return request
                finally:
                    ctx.close()
            try:
                outcome = technique.run(plan, ctx)
            finally:
                ctx.close()
        except PolicyRefusal as exc:
            outcome = Outcome(payload={"_refused": [r.__dict__ for r in exc.reasons]})
        except CollabzoneError as exc:
            reason = Reason(exc.code, "node", exc.message, self.zone.me.name)
            outcome = Outcome(payload={"_refused": [reason.__dict__]})
        except Exception as exc:  # never leak data-dependent text from a failed run
            log.exception("job %s failed at the node", request.id)
            reason = Reason("NODE_FAILED", "node", f"the node failed ({type(exc).__name__})")
            outcome = Outcome(payload={"_refused": [reason.__dict__]})
        return self.zone.complete_job(
            request.id,
            dict(outcome.payload),
            spent={k: v.as_dict() for k, v in outcome.spent.items()},
            rows_suppressed=outcome.rows_suppressed,
            mechanism=outcome.mechanism,
            noise_scale=outcome.noise_scale,
            audit_updates=[
                {
                    "space": u.space,
                    "base_version": u.base_version,
                    "state": base64.b64encode(u.state).decode("ascii"),
                }
                for u in outcome.audit_updates
            ],
        )

    def run_once(self) -> list[Request]:
        """Run every job waiting now; returns the requests as the zone left them."""
        waiting = self.zone.jobs()
        self._leave_finished({job.id for job in waiting})
        return [self.run_job(job) for job in waiting if job.id not in self.joined]

    def _leave_finished(self, waiting: set[str]) -> None:
        """Stop what this node started for fan-out jobs no longer waiting (e.g. a SuperNode)."""
        for request_id in sorted(self.joined - waiting):
            technique = registry.get(self.zone.request(request_id).technique)
            leave = getattr(technique, "leave", None)
            if leave is not None:
                leave(request_id, self.zone.me.name)
            self.joined.discard(request_id)

    def close(self) -> None:
        """Stop everything this node started for the jobs it joined."""
        self._leave_finished(set())

    def serve(self, poll_seconds: float = 5.0, max_jobs: int | None = None) -> int:
        """Poll for jobs until ``max_jobs`` have run (forever if None); returns the count."""
        if poll_seconds <= 0:
            raise InvalidInputError("poll_seconds must be positive")
        done = 0
        while max_jobs is None or done < max_jobs:
            waiting = self.zone.jobs()
            self._leave_finished({job.id for job in waiting})
            for job in waiting:
                if job.id in self.joined:
                    continue
                self.run_job(job)
                done += 1
                if max_jobs is not None and done >= max_jobs:
                    return done
            time.sleep(poll_seconds)
        return done
