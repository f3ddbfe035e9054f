"""Starting a real Flower deployment for one job: the zone's SuperLink, one SuperNode per
owner, and the run (the zone's ServerApp, the owners' ClientApp).

Offline by construction: ``FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1`` stops Flower from
building a per-run environment with ``uv`` (which needs a package index), so the apps run in
the installed environment. The run is submitted with ``flwr run <app dir> <connection>``
against a Flower configuration written into a private ``FLWR_HOME``; the app directory holds
only a ``pyproject.toml`` naming :mod:`._flower`'s apps. Insecure (no TLS) gRPC on
127.0.0.1 is for tests and the demo only; a deployment gives the SuperLink the certificates
the zone generates (:mod:`._tls`, ``collabzone fl certs``, docs/federated.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collabzone.errors import CollabzoneError, InternalError
from collabzone.techniques.federated import _tls

APP_TOML = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "collabzone-fl-job"
version = "1.0.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "collabzone"

[tool.flwr.app.components]
serverapp = "collabzone.techniques.federated._flower:server_app"
clientapp = "collabzone.techniques.federated._flower:client_app"

[tool.flwr.app.config]
{config}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


@dataclass
class Deployment:
    """The processes of one job; :meth:`stop` ends exactly the ones it started."""

    root: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["FLWR_HOME"] = str(self.root / "flwr-home")
        env["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] = "1"
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        return env

    def start(self, name: str, args: list[str]) -> None:
        log = (self.root / f"{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                args,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,  # its own process group: stop() ends its children
            )
        )

    def stop(self) -> None:
        """End every process this deployment started and their children (the SuperExec,
        ServerApp and ClientApp processes Flower spawns), by process group."""
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
        for process in self.processes:  # children that outlived their parent
            _signal_group(process, signal.SIGKILL)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def start_link(
    root: Path,
    tls: _tls.Certificates | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    advertised: str | None = None,
) -> tuple[Deployment, str]:
    """The zone's SuperLink on ``host:port`` (a free port on 127.0.0.1 by default) and a
    private ``FLWR_HOME`` naming it; returns the deployment and the SuperLink's address.

    With ``tls`` (the zone's certificates, :mod:`._tls`) it serves TLS and ``flwr`` checks
    it against the zone's CA; without, it runs ``--insecure`` (tests and the demo only).
    ``advertised`` is the address the nodes dial (default ``host:port``; the zone's own
    ``flwr`` connects to 127.0.0.1 when ``host`` is a wildcard, so the certificate must also
    name 127.0.0.1 or localhost in that case)."""
    root.mkdir(parents=True, exist_ok=True)
    link = port or free_port()  # Flower 1.41 serves Fleet, Control and Runtime APIs on one port
    deployment = Deployment(root)
    home = root / "flwr-home"
    home.mkdir(exist_ok=True)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    security = f"root-certificates = {json.dumps(str(tls.ca))}\n" if tls else "insecure = true\n"
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "zone"\n\n[superlink.zone]\n'
        f'address = "{local}:{link}"\n{security}',
        encoding="utf-8",
    )
    security_args = (
        ["--ssl-ca-certfile", str(tls.ca), "--ssl-certfile", str(tls.cert),
         "--ssl-keyfile", str(tls.key)]
        if tls
        else ["--insecure"]
    )  # fmt: skip
    deployment.start("superlink", [
        str(Path(sys.executable).parent / "flower-superlink"), *security_args,
        "--host", host, "--port", str(link),
        "--database", str(root / "link.db"),
    ])  # fmt: skip
    return deployment, advertised or f"{local}:{link}"


def start_supernode(
    deployment: Deployment,
    name: str,
    address: str,
    node_config: Mapping[str, Any],
    root_certificates: Path | None = None,
) -> None:
    """One owner's SuperNode against the SuperLink at ``address``; ``node_config`` carries
    its data path and the digest its owner approved (read by the ClientApp). With
    ``root_certificates`` (the zone's CA) it connects over TLS and verifies the SuperLink;
    without, insecure (tests and the demo only)."""
    pairs = " ".join(f"{k}={_toml_value(v)}" for k, v in node_config.items())
    security = (
        ["--root-certificates", str(root_certificates)] if root_certificates else ["--insecure"]
    )
    deployment.start(f"supernode-{name}", [
        str(Path(sys.executable).parent / "flower-supernode"), *security,
        "--superlink", address,
        "--port", str(free_port()),
        "--node-config", pairs,
    ])  # fmt: skip


def run_app(
    deployment: Deployment,
    run_config: Mapping[str, Any],
    timeout: float = 600.0,
    on_round: Callable[[int, list[Any]], None] | None = None,
    on_nodes: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Submit the run (the zone's ServerApp, the owners' ClientApp) and wait for the
    ServerApp's result file; the SuperLink must be the deployment's first process.
    ``on_round(r, model)`` is called as each round is aggregated, with that round's global
    model after the DP noise (the ServerApp's progress file, :class:`._flower._Reporting`;
    ``model`` is one nested list per parameter array). Until the first round,
    ``on_nodes(k)`` is called whenever the number of SuperNodes online at the SuperLink
    changes (:func:`online_supernodes`, every :data:`NODES_POLL` seconds)."""
    root = deployment.root
    result_path = root / "result.json"
    progress_path = root / "progress.jsonl"
    tail = ProgressTail(progress_path)
    config = {**run_config, "result-path": str(result_path), "progress-path": str(progress_path)}
    app = root / "app"
    app.mkdir(exist_ok=True)
    (app / "pyproject.toml").write_text(
        APP_TOML.format(config="\n".join(f"{k} = {_toml_value(v)}" for k, v in config.items())),
        encoding="utf-8",
    )
    _submit(deployment, app, timeout=240.0)
    deadline = time.monotonic() + timeout
    rounds_seen, online, polled = False, -1, 0.0
    while True:
        for record in tail.read():
            rounds_seen = True
            if on_round is not None:
                on_round(int(record["round"]), list(record["model"]))
        if on_nodes is not None and not rounds_seen and time.monotonic() - polled > NODES_POLL:
            polled = time.monotonic()
            count = online_supernodes(deployment)
            if count is not None and count != online:
                online = count
                on_nodes(count)
        if result_path.exists():
            break
        if time.monotonic() > deadline or deployment.processes[0].poll() is not None:
            raise InternalError(
                "the federated run did not finish; SuperLink log:\n"
                + deployment.log("superlink")[-3000:]
            )
        time.sleep(0.5)
    time.sleep(0.2)  # the ServerApp writes the file in one call; let it close
    if on_round is not None:  # rounds written after the last poll (before the result)
        for record in tail.read():
            on_round(int(record["round"]), list(record["model"]))
    return dict(json.loads(result_path.read_text(encoding="utf-8")))


NODES_POLL = 5.0
"""Seconds between two counts of the SuperNodes online before round 1 (each count is one
``flwr`` process, about a second of CPU)."""


def online_supernodes(deployment: Deployment) -> int | None:
    """How many SuperNodes the deployment's SuperLink lists as online (``flwr supernode
    list``, its Control API), or None if it does not answer. A count, not who: without
    SuperNode authentication (node keys registered per owner) the SuperLink cannot tell
    which owner's node a SuperNode is."""
    flwr = shutil.which("flwr", path=deployment.env()["PATH"]) or "flwr"
    try:
        done = subprocess.run(
            [flwr, "supernode", "list", "zone", "--format", "json"], env=deployment.env(),
            capture_output=True, cwd=deployment.root, timeout=30, check=False,
        )  # fmt: skip
        nodes = json.loads(done.stdout).get("nodes", []) if done.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError):
        return None
    return None if nodes is None else sum(1 for n in nodes if n.get("status") == "online")


class ProgressTail:
    """Reads a JSON-lines file another process appends to: each call returns the records
    of the lines completed (newline-terminated) since the last call, so a line half
    written is read once it is whole, and the file is never re-read from the start (a
    line holds a whole model)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in chunk[:end].splitlines() if line.strip()]


def run_job(
    root: Path,
    run_config: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Start a SuperLink and one SuperNode per owner (``nodes``: owner -> node config),
    submit the run, wait for the ServerApp's result file, stop everything, return it."""
    deployment, address = start_link(root)
    try:
        for owner, node_config in nodes.items():
            start_supernode(deployment, owner, address, node_config)
        return run_app(deployment, run_config, timeout)
    finally:
        deployment.stop()


def _submit(deployment: Deployment, app: Path, timeout: float) -> None:
    """``flwr run`` retried until the SuperLink's Control API answers."""
    flwr = shutil.which("flwr", path=deployment.env()["PATH"]) or "flwr"
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            [flwr, "run", str(app), "zone"], env=deployment.env(), capture_output=True,
            cwd=deployment.root, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise CollabzoneError(
                "could not submit the run to the SuperLink: "
                + (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            )
        time.sleep(1.0)
