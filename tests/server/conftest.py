"""Server fixtures: a zone with parties, served by a real uvicorn process on loopback."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from collabzone.client import RemoteZone, connect_remote
from collabzone.model import Request
from collabzone.zone import init

ROLES = {
    "bank": ["provider", "analyst"],
    "partner": ["provider", "analyst"],
    "insurer": ["provider"],
    "auditor": ["auditor"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running ``python -m collabzone.server`` process."""

    root: Path
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    args: list[str] = field(default_factory=list)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(
    root: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    health_scheme: str = "http",
    ca: Path | None = None,
) -> Server:
    """Start a server on ``root`` and wait until /healthz answers."""
    port = port or free_port()
    log = root.parent / f"server-{port}.log"
    args = [
        sys.executable,
        "-m",
        "collabzone.server",
        "--zone",
        str(root),
        "--port",
        str(port),
        *extra,
    ]
    process = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            health = f"{health_scheme}://127.0.0.1:{port}/healthz"
            tls = ssl.create_default_context(cafile=str(ca)) if ca else True
            if httpx.get(health, timeout=1, verify=tls).status_code == 200:
                return Server(root, url, process, log, args)
        except httpx.TransportError:
            time.sleep(0.1)
        except BaseException:
            process.kill()
            process.wait()
            raise
    process.kill()
    process.wait()
    raise RuntimeError("server did not start within 60 s")


@dataclass
class Handles:
    """One zone seen by each party, through one transport."""

    root: Path
    transport: str
    operator: Any
    bank: Any
    partner: Any
    insurer: Any
    auditor: Any
    tokens: dict[str, str]
    server: Server | None = None


def make_parties(root: Path, db_url: str | None = None) -> tuple[Any, dict[str, str]]:
    operator, operator_token = init(root, db_url=db_url)
    tokens = {"operator": operator_token}
    for name, roles in ROLES.items():
        tokens[name] = operator.add_party(name, roles)[1]
    return operator, tokens


def remote_handles(server: Server, tokens: dict[str, str]) -> dict[str, RemoteZone]:
    return {
        name: connect_remote(server.url, client_id=name, client_secret=token)
        for name, token in tokens.items()
    }


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers started by a test; all stopped at its end."""
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def served(tmp_path: Path, servers: list[Server]) -> Iterator[Handles]:
    """A zone with parties, served over HTTP; handles are RemoteZones."""
    _, tokens = make_parties(tmp_path / "zone")
    server = start_server(tmp_path / "zone")
    servers.append(server)
    h = remote_handles(server, tokens)
    yield Handles(
        tmp_path / "zone",
        "remote",
        h["operator"],
        h["bank"],
        h["partner"],
        h["insurer"],
        h["auditor"],
        tokens,
        server,
    )
    for handle in h.values():
        handle.close()


@pytest.fixture(params=["embedded", "remote"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Handles:
    """The same zone API through both transports: embedded Zone and remote HTTP."""
    if request.param == "remote":
        handles: Handles = request.getfixturevalue("served")
        return handles
    operator, tokens = make_parties(tmp_path / "zone")
    h = {name: operator.as_party(token) for name, token in tokens.items()}
    return Handles(
        tmp_path / "zone",
        "embedded",
        h["operator"],
        h["bank"],
        h["partner"],
        h["insurer"],
        h["auditor"],
        tokens,
    )


StartServer = Callable[..., Server]


@dataclass
class Shared:
    """A module-wide served zone (for tests that do not disturb each other)."""

    root: Path
    server: Server
    tokens: dict[str, str]
    master_key: str
    request_id: str


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One server per module: bank, partner (manual agreement), a pending bank request."""
    from collabzone.keys import MASTER_KEY_ENV, new_master_key
    from tests.conftest import CUSTOMER_SPEC, write_customers

    key = new_master_key()
    base = tmp_path_factory.mktemp("shared")
    root = base / "zone"
    operator, operator_token = init(root, master_key=key)
    tokens = {"operator": operator_token}
    for name, roles in ROLES.items():
        tokens[name] = operator.add_party(name, roles)[1]
    partner = operator.as_party(tokens["partner"])
    partner.add_dataset("partner_data", write_customers(base / "p.csv", 100, "p"), CUSTOMER_SPEC)
    partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": 5.0},
        approval="manual",
    )
    request = operator.as_party(tokens["bank"]).submit(
        "dp_count", {"dataset": "partner_data", "epsilon": 0.1}, "marketing"
    )
    assert isinstance(request, Request)
    server = start_server(
        root,
        *("--rate", "1000", "--burst", "1000", "--max-failures", "1000"),
        env={MASTER_KEY_ENV: key},
    )
    yield Shared(root, server, tokens, key, request.id)
    server.stop()


def console_sign_in(browser: httpx.Client, token: str) -> httpx.Response:
    """Sign in to the console the way a browser does: load the form, post it back with the
    form's CSRF token (the nonce cookie travels in ``browser``'s cookie jar)."""
    import re

    form = browser.get("/console/login")
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
    assert match, "no CSRF token in the sign-in form"
    return browser.post("/console/login", data={"token": token, "csrf": match.group(1)})


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """Run ``collabzone *args`` in this process; its exit code and everything it printed."""
    from collabzone import cli

    monkeypatch.setattr(cli.console, "width", 250)
    monkeypatch.setattr(cli.err_console, "width", 250)
    monkeypatch.setattr(sys, "argv", ["collabzone", *args])
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err
