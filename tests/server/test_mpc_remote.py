"""Remote compute servers: three ``collabzone mpc serve`` processes, each its own
organisation's, reach a real zone server process only over HTTP; the zone relays the
provider's sealed packages and the report, and collects output shares sealed to the
recipient, who alone opens the result. The servers compute among themselves (MPyC over
TCP on 127.0.0.1 ports, as tests/mpc/test_three_processes.py)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from nacl.public import PrivateKey

from collabzone.client import RemoteZone, connect_remote
from collabzone.errors import InvalidInputError
from collabzone.keys import MASTER_KEY_ENV, new_master_key
from collabzone.model import Request, RequestStatus
from collabzone.techniques.mpc import REPORTS, split_upload
from collabzone.techniques.mpc._relay import open_sealed
from collabzone.techniques.mpc._relay_party import Relay, send_packages
from collabzone.techniques.mpc._remote import (
    SERVERS_ENV,
    TIMEOUT_ENV,
    open_sealed_bundle,
    serve,
)
from collabzone.techniques.mpc._store import ShareStore
from collabzone.zone import init
from tests.mpc.conftest import BOUNDS, adult_columns
from tests.mpc.test_three_processes import _free_ports
from tests.server.conftest import ROLES, Server, run_cli, start_server

SERVERS = ("s0", "s1", "s2")
SPEC = {"columns": [{"name": c, "type": "float", "class": "measure",
                     "domain": {"min": lo, "max": hi}} for c, (lo, hi) in BOUNDS.items()]}  # fmt: skip
ROWS = 200


@pytest.mark.slow
def test_remote_servers_compute_a_report_the_zone_only_relays(
    tmp_path: Path, servers: list[Server], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    key = new_master_key()
    root = tmp_path / "zone"
    operator, _ = init(root, master_key=key)
    tokens = {name: operator.add_party(name, roles)[1] for name, roles in ROLES.items()}
    tokens.update({name: operator.add_party(name, ["compute"])[1] for name in SERVERS})
    server = start_server(root, env={MASTER_KEY_ENV: key, SERVERS_ENV: ",".join(SERVERS),
                                     TIMEOUT_ENV: "240"})  # fmt: skip
    servers.append(server)

    def party(name: str) -> RemoteZone:
        return connect_remote(server.url, client_id=name, client_secret=tokens[name], timeout=300)

    keys = {name: new_master_key() for name in SERVERS}
    for name in SERVERS:  # each organisation publishes its relay key from its own store
        store = ShareStore(tmp_path / name, keys[name])
        Relay(party(name)).publish_key(bytes(store.relay_key().public_key))
    partner, bank = party("partner"), party("bank")
    key_file = tmp_path / "bank.key"  # the recipient's key stays on its machine
    code, out = run_cli(monkeypatch, capsys, "--zone", server.url, "--token", tokens["bank"],
                        "mpc", "recipient-key", "--out", str(key_file))  # fmt: skip
    assert code == 0, out
    recipient_key = PrivateKey(key_file.read_bytes())
    data = adult_columns(ROWS)
    partner.register_dataset("adult", SPEC, row_count=ROWS)
    partner.add_agreement(
        "adult", grantees=["bank"], technique="mpc", purposes=["labour statistics"],
        rules={"reports": ["mean"], "recipients": ["bank"], "min_group_size": 10},
    )  # fmt: skip
    packages = split_upload("adult", "partner", data, BOUNDS, reports=list(REPORTS),
                            recipients=["bank"], min_group_size=10)  # fmt: skip
    send_packages(Relay(partner), "adult", packages, SERVERS)

    ports = _free_ports(3)
    addresses = [f"127.0.0.1:{p}" for p in ports]
    # server 0 runs the real command in its own process; 1 and 2 run the same loop in
    # threads here (each still starts its own MPyC process): three CLI start-ups cost
    # seconds of CPU each on CI's two cores
    command = [sys.executable, "-m", "collabzone", "--zone", server.url, "--token", tokens["s0"],
               "mpc", "serve", "--store", str(tmp_path / "s0"),
               *(a for p in addresses for a in ("--party", p)), "--index", "0", "--once",
               "--poll", "0.3", "--wait", "200", "--connect-timeout", "120"]  # fmt: skip
    env = {**os.environ, MASTER_KEY_ENV: keys["s0"], "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    answered: dict[str, int | BaseException] = {}

    def loop(name: str, index: int) -> None:
        try:
            answered[name] = serve(Relay(party(name)), tmp_path / name, keys[name], addresses,
                                   index, once=True, poll=0.3, wait=200, connect_timeout=120)  # fmt: skip
        except BaseException as exc:  # reported by the assertion below
            answered[name] = exc

    threads = [threading.Thread(target=loop, args=(n, i)) for i, n in ((1, "s1"), (2, "s2"))]
    for thread in threads:
        thread.start()
    try:
        request = bank.submit(
            "mpc", {"report": "mean", "datasets": ["adult"], "columns": ["age", "hours"],
                    "recipient": "bank"}, "labour statistics",
        )  # fmt: skip
        assert isinstance(request, Request)
        assert request.status is RequestStatus.RELEASED, request.reasons
        out = proc.communicate(timeout=240)[0].decode()
        for thread in threads:
            thread.join(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and "answered 1 job(s)" in out, out[-2000:]
    assert answered == {"s1": 1, "s2": 1}, answered
    reference = bank.result(request.id).payload["bundle"]
    body = Relay(bank).bundle("bank", reference["sha256"])
    result = open_sealed_bundle(body, reference["sha256"], "bank", recipient_key)
    assert np.allclose(result["result"]["age"], data["age"].mean(), atol=1e-3)
    assert np.allclose(result["result"]["hours"], data["hours"].mean(), atol=1e-3)
    code, out = run_cli(monkeypatch, capsys, "--zone", server.url, "--token", tokens["bank"],
                        "mpc", "open", "--request", request.id, "--recipient", "bank",
                        "--key", str(key_file))  # fmt: skip
    assert code == 0, out
    assert json.loads(out[out.index("{") :])["result"] == result["result"]
    # what the zone collected is sealed to the recipient: no share opens with another key
    doc = json.loads(body)
    assert (
        set(doc) == {"recipient", "threshold", "sealed_outputs"} and len(doc["sealed_outputs"]) == 3
    )
    with pytest.raises(InvalidInputError, match="not sealed to your key"):
        open_sealed(
            base64.b64decode(doc["sealed_outputs"][0]), PrivateKey.generate(), "output share"
        )
    assert not list((root / "techniques" / "mpc" / "relay" / "s0" / "jobs").glob("*"))
    assert not list((root / "techniques" / "mpc" / "relay" / "s0" / "packages").glob("*.sealed"))
