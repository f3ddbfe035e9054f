"""The zone's side of remote compute servers (:class:`RelayDriver`), with the servers'
answers written straight into their mailboxes (the real processes are
tests/server/test_mpc_remote.py): what the zone waits for, what it refuses, what it keeps."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from collabzone.errors import ConflictError, InvalidInputError
from collabzone.techniques.mpc import ReportSpec
from collabzone.techniques.mpc._relay import Mailbox, open_sealed, seal
from collabzone.techniques.mpc._remote import RelayDriver, configured_driver

SERVERS = ("s0", "s1", "s2")
SPEC = ReportSpec("mean", ("adult",), ("age",), "bank")


def _answer_when_asked(relay: Path, answers: dict[str, bytes | str]) -> threading.Thread:
    """Each server answers the first job it sees: bytes as a share, text as an error."""

    def run() -> None:
        deadline = time.monotonic() + 10
        pending = dict(answers)
        while pending and time.monotonic() < deadline:
            for server, answer in list(pending.items()):
                jobs = Mailbox(relay, server).jobs()
                if jobs:
                    if isinstance(answer, bytes):
                        Mailbox(relay, server).answer(jobs[0]["id"], share=answer)
                    else:
                        Mailbox(relay, server).answer(jobs[0]["id"], error=answer)
                    del pending[server]
            time.sleep(0.01)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "mpc"


@pytest.fixture
def recipient(root: Path) -> PrivateKey:
    key = PrivateKey.generate()
    Mailbox(root / "relay", "bank").publish_key(bytes(key.public_key))
    return key


def test_the_bundle_holds_the_servers_sealed_shares_in_order(
    root: Path, recipient: PrivateKey
) -> None:
    public = bytes(recipient.public_key)
    shares = {s: seal({"server": i, "shares": [i]}, public) for i, s in enumerate(SERVERS)}
    thread = _answer_when_asked(root / "relay", dict(shares))
    reference = RelayDriver(root, SERVERS, poll=0.01, timeout=10)(SPEC)
    thread.join()
    body = Path(reference["path"]).read_bytes()
    assert reference["servers"] == 3 and reference["threshold"] == 1
    doc = json.loads(body)
    opened = [open_sealed(base64.b64decode(s), recipient, "share") for s in doc["sealed_outputs"]]
    assert [o["server"] for o in opened] == [0, 1, 2]
    for server in SERVERS:  # the jobs and answers are gone from the relay
        assert not list((root / "relay" / server / "jobs").iterdir())


def test_a_server_that_refuses_fails_the_report_with_its_reason(
    root: Path, recipient: PrivateKey
) -> None:
    share = seal({"server": 0}, bytes(recipient.public_key))
    thread = _answer_when_asked(
        root / "relay", {"s0": share, "s1": "error: REPORT_NOT_ACCEPTED", "s2": share}
    )
    with pytest.raises(ConflictError, match="'s1' refused or failed: error: REPORT_NOT"):
        RelayDriver(root, SERVERS, poll=0.01, timeout=10)(SPEC)
    thread.join()
    assert not list((root / "relay" / "s0" / "jobs").iterdir())
    assert not (root / "outbox").exists()  # nothing delivered


def test_silent_servers_are_named_after_the_timeout(root: Path, recipient: PrivateKey) -> None:
    share = seal({"server": 0}, bytes(recipient.public_key))
    thread = _answer_when_asked(root / "relay", {"s0": share})
    with pytest.raises(ConflictError, match=r"\['s1', 's2'\] did not answer"):
        RelayDriver(root, SERVERS, poll=0.01, timeout=0.5)(SPEC)
    thread.join()
    assert Mailbox(root / "relay", "s1").jobs() == []  # a late server finds no stale job


def test_a_recipient_without_a_key_is_refused_before_any_job(root: Path) -> None:
    with pytest.raises(ConflictError, match="recipient-key"):
        RelayDriver(root, SERVERS)(SPEC)
    assert not (root / "relay" / "s0").exists()


def test_configuration_comes_from_the_environment(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert configured_driver(root) is None
    monkeypatch.setenv("COLLABZONE_MPC_SERVERS", "s0, s1 ,s2")
    driver = configured_driver(root)
    assert driver is not None and driver.servers == ["s0", "s1", "s2"]
    monkeypatch.setenv("COLLABZONE_MPC_SERVERS", "s0,s1")
    with pytest.raises(InvalidInputError, match="2t < n"):
        configured_driver(root)
