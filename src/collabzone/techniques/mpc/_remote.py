"""Remote compute servers: each organisation runs its own, the zone only relays.

Zone side, :class:`RelayDriver` (the ``mpc`` technique's driver when
``COLLABZONE_MPC_SERVERS`` names the servers, :func:`configured_driver`): it files the
report as a **job** in every server's mailbox (:class:`~._relay.Mailbox`), waits for each
server's answer, and writes the answers as one bundle into the recipient's outbox. Each
answer is the server's output share **sealed to the recipient's relay key** (the
recipient publishes one with ``collabzone mpc recipient-key``), so the zone, which
collects every share, cannot recombine the result.

Server side, :func:`serve` (``collabzone mpc serve``): a loop run by each organisation on
its own machine that reaches the zone only outwards (HTTP): it stores the share packages
relayed to it (:func:`~._relay_party.fetch_packages`), and for each job starts its MPyC
process (``-P``/``-I``/``--ssl`` as for ``collabzone mpc server``; the servers reach each
other over TCP/TLS, not through the zone), seals its output share to the recipient and
answers. The recipient fetches the bundle and opens it on its machine
(:func:`open_sealed_bundle`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from collabzone.errors import ConflictError, InvalidInputError
from collabzone.keys import MASTER_KEY_ENV
from collabzone.techniques.mpc._client import open_report
from collabzone.techniques.mpc._relay import Mailbox, open_sealed, seal
from collabzone.techniques.mpc._relay_party import Relay, fetch_packages
from collabzone.techniques.mpc._reports import ReportSpec

SERVERS_ENV = "COLLABZONE_MPC_SERVERS"
"""Comma-separated compute server parties, in index order (e.g. ``s0,s1,s2``)."""
THRESHOLD_ENV = "COLLABZONE_MPC_THRESHOLD"
TIMEOUT_ENV = "COLLABZONE_MPC_TIMEOUT"


def bundle_path(root: Path, recipient: str, sha256: str) -> Path:
    """Where the bundle ``sha256`` for ``recipient`` lies under the technique's folder."""
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise InvalidInputError(f"{sha256!r} is not a SHA-256")
    return Mailbox(Path(root) / "outbox", recipient).folder / f"{sha256}.json"


class RelayDriver:
    """Runs a report on compute servers that the organisations run themselves."""

    def __init__(
        self,
        root: Path,
        servers: Sequence[str],
        *,
        threshold: int = 1,
        timeout: float = 600.0,
        poll: float = 0.2,
    ) -> None:
        if len(servers) < 2 * threshold + 1:
            raise InvalidInputError(f"{len(servers)} servers cannot hide t={threshold} (2t < n)")
        self.root, self.servers = Path(root), list(servers)
        self.threshold, self.timeout, self.poll = threshold, timeout, poll

    def __call__(self, spec: ReportSpec) -> Mapping[str, Any]:
        relay = self.root / "relay"
        Mailbox(relay, spec.recipient).key()  # the recipient must have published its key
        job_id = uuid.uuid4().hex
        boxes = [Mailbox(relay, server) for server in self.servers]
        job = {"id": job_id, "report": spec.to_json(), "servers": self.servers}
        for index, box in enumerate(boxes):
            box.post_job({**job, "index": index})
        try:
            shares = self._wait(boxes, job_id)
        finally:
            for box in boxes:
                box.clear_job(job_id)
        body = json.dumps(
            {"recipient": spec.recipient, "threshold": self.threshold,
             "sealed_outputs": [base64.b64encode(s).decode("ascii") for s in shares]},
            sort_keys=True,
        ).encode()  # fmt: skip
        digest = hashlib.sha256(body).hexdigest()
        path = bundle_path(self.root, spec.recipient, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return {"path": str(path), "sha256": digest, "servers": len(shares),
                "threshold": self.threshold}  # fmt: skip

    def _wait(self, boxes: Sequence[Mailbox], job_id: str) -> list[bytes]:
        deadline = time.monotonic() + self.timeout
        while True:
            results = [box.result(job_id) for box in boxes]
            for box, (_, error) in zip(boxes, results, strict=True):
                if error is not None:
                    raise ConflictError(f"compute server {box.server!r} refused or failed: {error}")
            if all(share is not None for share, _ in results):
                return [share for share, _ in results if share is not None]
            if time.monotonic() > deadline:
                waiting = [b.server for b, (s, _) in zip(boxes, results, strict=True) if s is None]
                raise ConflictError(
                    f"compute server(s) {waiting} did not answer within {self.timeout:g} s: "
                    "is `collabzone mpc serve` running at each of them?"
                )
            time.sleep(self.poll)


def configured_driver(root: Path) -> RelayDriver | None:
    """The relay driver ``COLLABZONE_MPC_SERVERS`` asks for (None if unset)."""
    names = [n.strip() for n in os.environ.get(SERVERS_ENV, "").split(",") if n.strip()]
    if not names:
        return None
    try:
        threshold = int(os.environ.get(THRESHOLD_ENV, "1"))
        timeout = float(os.environ.get(TIMEOUT_ENV, "600"))
    except ValueError:
        raise InvalidInputError(f"{THRESHOLD_ENV} and {TIMEOUT_ENV} must be numbers") from None
    return RelayDriver(root, names, threshold=threshold, timeout=timeout)


def open_sealed_bundle(
    body: bytes, sha256: str, recipient: str, private_key: Any
) -> dict[str, Any]:
    """The report's result from a relayed bundle (on the recipient's machine)."""
    if hashlib.sha256(body).hexdigest() != sha256:
        raise InvalidInputError("the bundle does not match the released reference (SHA-256)")
    doc = json.loads(body)
    outputs = [
        open_sealed(base64.b64decode(s), private_key, "output share") for s in doc["sealed_outputs"]
    ]
    return open_report(outputs, recipient)


def run_job(
    relay: Relay,
    server: str,
    job: Mapping[str, Any],
    store: Path,
    master_key: str,
    parties: Sequence[str],
    index: int,
    *,
    ssl: bool = False,
    connect_timeout: float = 300.0,
) -> bool:
    """Run one job with the other servers and answer it; True if a share was sent.

    The MPyC process gets ``master_key`` for the store (not whatever this process's
    environment holds)."""
    if int(job.get("index", -1)) != index:
        relay.answer(server, str(job["id"]), error=f"{server!r} runs index {index}, not "
                     f"{job.get('index')}: check COLLABZONE_MPC_SERVERS' order")  # fmt: skip
        return False
    spec = ReportSpec.from_json(job["report"])
    with tempfile.TemporaryDirectory() as tmp:
        report, out = Path(tmp) / "report.json", Path(tmp) / "share.json"
        report.write_text(json.dumps(job["report"]), "utf-8")
        command = [
            sys.executable, "-m", "collabzone.techniques.mpc._process",
            "--store", str(store), "--report", str(report), "--shares-to", str(out),
            "--connect-timeout", str(connect_timeout),
            *(a for p in parties for a in ("-P", p)), "-I", str(index),
            *(["--ssl"] if ssl else []),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), MASTER_KEY_ENV: master_key}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            lines = (done.stderr or "").strip().splitlines()
            relay.answer(server, str(job["id"]), error=lines[-1] if lines else "failed")
            return False
        doc = json.loads(out.read_text("utf-8"))
    relay.answer(server, str(job["id"]), share=seal(doc, relay.key(spec.recipient)))
    return True


def serve(
    relay: Relay,
    store: Path,
    master_key: str,
    parties: Sequence[str],
    index: int,
    *,
    ssl: bool = False,
    once: bool = False,
    poll: float = 2.0,
    wait: float = 300.0,
    connect_timeout: float = 300.0,
) -> int:
    """The compute server's loop: store relayed packages, run and answer jobs.

    With ``once`` it returns after the first round that answered a job (or after
    ``wait`` seconds without one); returns the number of jobs answered with a share.
    """
    from collabzone.techniques.mpc._store import ShareStore

    server = relay.zone.me.name
    started, answered = time.monotonic(), 0
    while True:
        fetch_packages(relay, server, ShareStore(store, master_key), index=index)
        jobs = relay.jobs(server)
        for job in jobs:
            answered += run_job(relay, server, job, store, master_key, parties, index,
                                ssl=ssl, connect_timeout=connect_timeout)  # fmt: skip
        if once and (jobs or time.monotonic() - started > wait):
            return answered
        time.sleep(poll)
