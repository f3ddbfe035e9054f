"""How the zone's ``mpc`` technique reaches the compute servers: drivers.

A driver runs one report on the servers and writes the servers' output shares, as one
bundle, into the recipient's outbox (``<outbox>/<recipient>/<sha256>.json``); it returns
only the bundle's reference. The recipient opens it on its own machine
(:func:`open_bundle`, or ``collabzone mpc open``).

* :class:`ProcessDriver` starts one MPyC process per server store (the deployment shape:
  each process holds one server's shares; in a real deployment each is started by its own
  organisation and the zone only relays the report and the bundle's files).
* :class:`InProcessDriver` runs a one-party MPyC runtime over a single store with threshold
  0 (tests and demos): with one server its "share" is the value, so this driver is honest
  about nothing but the lifecycle; never configure it for a real zone.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from collabzone.errors import ConflictError, InvalidInputError
from collabzone.techniques.mpc._client import open_report
from collabzone.techniques.mpc._reports import ReportSpec
from collabzone.techniques.mpc._store import ShareStore


def _deliver(
    outbox: Path, spec: ReportSpec, outputs: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    body = json.dumps({"outputs": list(outputs)}, sort_keys=True).encode()
    digest = hashlib.sha256(body).hexdigest()
    folder = outbox / spec.recipient
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.json"
    path.write_bytes(body)
    return {
        "path": str(path),
        "sha256": digest,
        "servers": len(outputs),
        "threshold": int(outputs[0]["threshold"]),
    }


def open_bundle(reference: Mapping[str, Any], recipient: str) -> dict[str, Any]:
    """The report's result from a released bundle reference (on the recipient's machine).

    The file's SHA-256 must match the reference the zone released, so a bundle swapped
    on the way is refused.
    """
    body = Path(reference["path"]).read_bytes()
    if hashlib.sha256(body).hexdigest() != reference["sha256"]:
        raise InvalidInputError("the bundle does not match the released reference (SHA-256)")
    return open_report(json.loads(body)["outputs"], recipient)


class InProcessDriver:
    """One-party MPyC over one threshold-0 store, in this process (tests and demos only)."""

    def __init__(self, store: ShareStore, outbox: Path) -> None:
        self.store, self.outbox = store, Path(outbox)

    def __call__(self, spec: ReportSpec) -> Mapping[str, Any]:
        from collabzone.techniques.mpc._server import run_report
        from collabzone.techniques.mpc._shares import runtime

        return _deliver(self.outbox, spec, [run_report(runtime(), self.store, spec)])


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class ProcessDriver:
    """One MPyC process per server store on 127.0.0.1 (``COLLABZONE_MASTER_KEY`` set)."""

    def __init__(self, stores: Sequence[Path], outbox: Path, *, timeout: float = 600.0) -> None:
        if len(stores) < 3:
            raise InvalidInputError("a process driver needs at least three server stores")
        self.stores, self.outbox, self.timeout = [Path(s) for s in stores], Path(outbox), timeout

    def __call__(self, spec: ReportSpec) -> Mapping[str, Any]:
        ports = _free_ports(len(self.stores))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            report.write_text(json.dumps(spec.to_json()), "utf-8")
            procs = []
            for index, store in enumerate(self.stores):
                command = [sys.executable, "-m", "collabzone.techniques.mpc._process",
                           "--store", str(store), "--report", str(report),
                           "--shares-to", str(Path(tmp) / f"out{index}.json"),
                           *[a for p in ports for a in ("-P", f"127.0.0.1:{p}")],
                           "-I", str(index), "--connect-timeout", "60"]  # fmt: skip
                log = (Path(tmp) / f"err{index}.log").open("w", encoding="utf-8")
                procs.append(subprocess.Popen(command, env=env, stderr=log, stdout=log))
                log.close()  # the child keeps its own descriptor
            errors = []
            try:
                for index, proc in enumerate(procs):
                    if proc.wait(timeout=self.timeout):
                        err = (Path(tmp) / f"err{index}.log").read_text("utf-8").strip()
                        errors.append(err.splitlines()[-1] if err else f"exit {proc.returncode}")
            finally:  # a timeout (or any failure here) leaves no server process behind
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
            if errors:
                raise ConflictError(f"the compute servers refused or failed: {errors[0]}")
            outputs = [
                json.loads((Path(tmp) / f"out{i}.json").read_text("utf-8"))
                for i in range(len(self.stores))
            ]
        return _deliver(self.outbox, spec, outputs)
