"""Webhooks: owners hear that a request awaits them, requesters that it was decided; every
delivery is HMAC-signed, and forged, altered or replayed deliveries are rejected."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collabzone.errors import AuthenticationError
from collabzone.model import Request, RequestStatus
from collabzone.server.webhook_targets import parse_allow
from collabzone.server.webhooks import (
    SIGNATURE_HEADER,
    Notifier,
    notices_for,
    sign,
    verify_signature,
)
from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import Server, make_parties, remote_handles, start_server

LOOPBACK = parse_allow(["127.0.0.1"])

SECRET = b"s" * 32


@given(st.binary(max_size=500), st.integers(min_value=0, max_value=2**40))
def test_signature_round_trip(body: bytes, timestamp: int) -> None:
    verify_signature(SECRET, sign(SECRET, body, timestamp), body, now=timestamp)


@given(st.binary(min_size=1, max_size=200), st.data())
def test_any_altered_body_is_rejected(body: bytes, data: st.DataObject) -> None:
    header = sign(SECRET, body, 1000)
    i = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    altered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
    with pytest.raises(AuthenticationError):
        verify_signature(SECRET, header, altered, now=1000)


def test_wrong_secret_stale_and_malformed_are_rejected() -> None:
    header = sign(SECRET, b"{}", 1000)
    with pytest.raises(AuthenticationError):
        verify_signature(b"x" * 32, header, b"{}", now=1000)
    with pytest.raises(AuthenticationError, match="too old"):
        verify_signature(SECRET, header, b"{}", now=1000 + 301)  # a replay, later
    with pytest.raises(AuthenticationError, match="malformed"):
        verify_signature(SECRET, "v1=abc", b"{}", now=1000)


class _Receiver(BaseHTTPRequestHandler):
    deliveries: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).deliveries.append((self.headers[SIGNATURE_HEADER], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    _Receiver.deliveries = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Receiver.deliveries
    httpd.shutdown()
    httpd.server_close()


def _wait_for(deliveries: list[tuple[str, bytes]], count: int) -> None:
    deadline = time.monotonic() + 20
    while len(deliveries) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_owner_and_requester_are_notified_with_signed_payloads(
    tmp_path: Path, servers: list[Server], receiver: tuple[str, list[tuple[str, bytes]]]
) -> None:
    url, deliveries = receiver
    _, tokens = make_parties(tmp_path / "zone")
    server = start_server(tmp_path / "zone", "--webhook-allow", "127.0.0.1")
    servers.append(server)
    handles = remote_handles(server, tokens)
    served = SimpleNamespace(**handles)
    # the operator's act on the host (what `collabzone webhook set` writes); the running
    # server reads the change at its next notice
    host = Notifier(tmp_path / "zone/server/webhooks.json", lambda _: b"", allow=LOOPBACK)
    host.set_destination("partner", f"{url}/partner", None)
    host.set_destination("bank", f"{url}/bank", None)
    partner_secret = bytes.fromhex(served.partner.notifications()["secret"])
    bank_secret = bytes.fromhex(served.bank.notifications()["secret"])
    assert partner_secret != bank_secret
    served.partner.add_dataset(
        "partner_data", write_customers(tmp_path / "p.csv", 50), CUSTOMER_SPEC
    )
    served.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        approval="manual",
        rules={"epsilon_budget": 1.0},
    )
    made = served.bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.1}, "marketing")
    assert isinstance(made, Request) and made.status is RequestStatus.AWAITING_APPROVAL
    _wait_for(deliveries, 1)
    header, body = deliveries[0]
    verify_signature(partner_secret, header, body)
    notice = json.loads(body)
    assert notice["event"] == "request.awaiting_approval" and notice["party"] == "partner"
    with pytest.raises(AuthenticationError):
        verify_signature(bank_secret, header, body)  # one party's secret cannot forge another's
    served.partner.approve(made.id, "ok")
    _wait_for(deliveries, 2)
    header, body = deliveries[1]
    verify_signature(bank_secret, header, body)
    decided = json.loads(body)
    assert decided == {**decided, "event": "request.decided", "status": "released", "party": "bank"}
    assert "payload" not in decided and "spec" not in decided  # no data in notices
    for handle in handles.values():
        handle.close()


def test_notices_follow_the_request_state() -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    waiting = Request(
        id="rq-1",
        requester="bank",
        technique="dp_count",
        spec={},
        purpose="",
        status=RequestStatus.AWAITING_APPROVAL,
        owners_to_approve=("a", "b"),
        created_at=now,
        updated_at=now,
    )
    assert [p for p, _ in notices_for(waiting)] == ["a", "b"]
    assert notices_for(waiting.model_copy(update={"status": RequestStatus.RELEASED})) == []


class _FakeSmtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) to accept one message."""

    messages: ClassVar[list[tuple[str, str]]] = []

    def handle(self) -> None:
        self.wfile.write(b"220 fake ESMTP\r\n")
        recipient, data = "", []
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 fake\r\n")
            elif verb == "RCPT":
                recipient = command.split(":", 1)[1].strip(" <>")
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go ahead\r\n")
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk.decode())
                type(self).messages.append((recipient, "".join(data)))
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_email_notice_goes_out_when_smtp_is_configured(tmp_path: Path) -> None:
    import datetime as dt

    from collabzone.server import SmtpSettings

    _FakeSmtp.messages = []
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _FakeSmtp) as smtpd:
        threading.Thread(target=smtpd.serve_forever, daemon=True).start()
        smtp = SmtpSettings("127.0.0.1", smtpd.server_address[1], "zone@example.org",
                            starttls=False)  # fmt: skip
        notifier = Notifier(tmp_path / "subs.json", lambda _: SECRET, smtp=smtp)
        notifier.set_destination("partner", None, "owner@partner.example")
        now = dt.datetime.now(dt.UTC)
        notifier.notify(
            Request(id="rq-7", requester="bank", technique="dp_count", spec={"secret": "x"},
                    purpose="", status=RequestStatus.AWAITING_APPROVAL,
                    owners_to_approve=("partner",), created_at=now, updated_at=now)
        )  # fmt: skip
        notifier.close()
        smtpd.shutdown()
    ((recipient, message),) = _FakeSmtp.messages
    assert recipient == "owner@partner.example"
    assert "request.awaiting_approval rq-7" in message and "secret" not in message
