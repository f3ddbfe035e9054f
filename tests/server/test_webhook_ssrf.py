"""Webhook SSRF (issue 12 item 5): only the operator sets destinations, and never to the
zone's own network unless allowed explicitly; deliveries are pinned to the checked
address, follow no redirect, are signed and time out without holding up the API."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collabzone.errors import InvalidInputError, NotAuthorisedError
from collabzone.model import Request, RequestStatus
from collabzone.server.webhook_targets import check_destination, check_url, parse_allow, refusal
from collabzone.server.webhooks import SIGNATURE_HEADER, Notifier, verify_signature
from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import (
    Handles,
    Server,
    make_parties,
    remote_handles,
    run_cli,
    start_server,
)

SECRET = b"k" * 32
LOOPBACK = parse_allow(["127.0.0.1"])


@dataclass
class Receiver:
    """A local HTTP receiver: records deliveries, or redirects, or answers slowly."""

    url: str
    port: int
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[ThreadingHTTPServer] = []

    def start(*, redirect_to: str | None = None, delay: float = 0.0) -> Receiver:
        box: list[Receiver] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                box[0].got.append(({k: v for k, v in self.headers.items()}, body))
                box[0].arrived.append(time.monotonic())
                time.sleep(delay)
                if redirect_to:
                    self.send_response(307)
                    self.send_header("Location", redirect_to)
                else:
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        port = int(httpd.server_address[1])
        box.append(Receiver(f"http://127.0.0.1:{port}/hook", port))
        return box[0]

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


# -- the policy, pure --------------------------------------------------------------------

INTERNAL = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "::ffff:127.0.0.1": "loopback (IPv4 127.0.0.1 inside IPv6",
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "10.1.2.3": "private",
    "172.16.5.4": "private",
    "192.168.0.1": "private",
    "fc00::7": "private",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "224.0.0.251": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "100.64.0.1": "special-purpose",
    "64:ff9b::a00:1": "private (IPv4 10.0.0.1 inside IPv6",
    "2002:7f00:1::1": "loopback (IPv4 127.0.0.1 inside IPv6",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "::ffff:169.254.169.254": "link-local (IPv4",
}


@pytest.mark.parametrize(("address", "kind"), sorted(INTERNAL.items()))
def test_internal_addresses_are_refused_and_say_what_they_are(address: str, kind: str) -> None:
    why = refusal(ipaddress.ip_address(address))
    assert why is not None and why.startswith(kind), (address, why)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_an_ipv4_address_is_judged_alike_bare_and_ipv4_mapped(value: int) -> None:
    bare = ipaddress.IPv4Address(value)
    mapped = ipaddress.IPv6Address(f"::ffff:{bare}")
    assert (refusal(bare) is None) == (refusal(mapped) is None)


def test_the_allow_list_admits_only_its_networks() -> None:
    allow = parse_allow(["127.0.0.1", "10.8.0.0/16"])
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allow) is None
    assert refusal(ipaddress.ip_address("10.8.3.4"), allow) is None
    assert refusal(ipaddress.ip_address("127.0.0.2"), allow) == "loopback"
    assert refusal(ipaddress.ip_address("10.9.0.1"), allow) == "private"
    with pytest.raises(InvalidInputError, match="not an address or CIDR"):
        parse_allow(["localhost"])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/", "http:// or https://"),
        ("http://user:pw@example.org/", "user name or password"),
        ("http:///path", "names no host"),
        ("http://example.org:99999/", "invalid port"),
    ],
)
def test_malformed_destinations_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://[0:0:0:0:0:ffff:7f00:1]/",
        "http://[::]/",
    ],
)
def test_spelled_out_loopback_forms_are_refused_by_what_they_resolve_to(url: str) -> None:
    with pytest.raises(NotAuthorisedError, match=r"is an? (loopback|unspecified)"):
        check_destination(url)


def test_a_hostname_is_judged_by_every_address_it_resolves_to() -> None:
    def to_ten(host: str, port: int) -> list[str]:
        return ["10.20.30.40"]

    def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]  # a public answer cannot hide an internal one

    with pytest.raises(NotAuthorisedError, match=r"hooks\.partner\.example \(10\.20\.30\.40\)"):
        check_destination("https://hooks.partner.example/x", resolver=to_ten)
    with pytest.raises(NotAuthorisedError, match="loopback"):
        check_destination("https://hooks.partner.example/x", resolver=mixed)
    target, address = check_destination(
        "https://hooks.partner.example:8443/x?a=1", resolver=lambda h, p: ["93.184.216.34"]
    )
    assert (target.host, target.port, target.path) == ("hooks.partner.example", 8443, "/x?a=1")
    assert str(address) == "93.184.216.34"


# -- parties cannot register; the operator can, on the host --------------------------------

ATTACKS = [
    "http://127.0.0.1:5432/",
    "http://[::ffff:127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost:5432/",
    "https://hooks.partner.example/",
]


def test_no_party_can_register_a_destination_over_the_api(served: Handles) -> None:
    assert served.server is not None
    http = httpx.Client(base_url=served.server.url, timeout=30)
    for party in ("auditor", "bank", "operator"):
        token = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_secret": served.tokens[party]},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for url in ATTACKS:
            answer = http.put("/v1/notifications", json={"url": url}, headers=headers)
            assert answer.status_code == 403, (party, url, answer.text)
            assert "set by the zone's operator" in answer.json()["error"]["message"]
        own = http.get("/v1/notifications", headers=headers).json()
        assert set(own) == {"secret"}, own  # nothing was stored
    assert not (served.root / "server" / "webhooks.json").exists()
    events = served.auditor.audit_events()
    assert any(
        e["action"] == "auth.denied" and "webhook registration" in json.dumps(e) for e in events
    )
    http.close()


def test_the_operator_cli_refuses_internal_destinations_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_parties(tmp_path / "zone")
    zone = ("--zone", str(tmp_path / "zone"))
    expected = {
        "http://127.0.0.1:5432/": "127.0.0.1 is a loopback address",
        "http://[::ffff:127.0.0.1]/": "IPv4 127.0.0.1 inside IPv6",
        "http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a link-local address",
        "http://localhost:5432/": "localhost (",  # a name is judged by what it resolves to
    }
    for url, message in expected.items():
        code, said = run_cli(monkeypatch, capsys, *zone, "webhook", "set", "bank", "--url", url)
        assert code == 5, said
        assert message in said and "--webhook-allow" in said, said
    assert not (tmp_path / "zone" / "server" / "webhooks.json").exists()
    code, said = run_cli(
        monkeypatch, capsys, *zone, "webhook", "set", "nobody", "--url", "http://127.0.0.1/"
    )
    assert code == 3 and "no party 'nobody'" in said
    code, said = run_cli(
        monkeypatch, capsys, *zone, "webhook", "set", "bank", "--url", "http://127.0.0.1:9/",
        "--allow", "127.0.0.1", "--email", "ops@bank.example",
    )  # fmt: skip
    assert code == 0, said
    code, said = run_cli(monkeypatch, capsys, *zone, "webhook", "list")
    assert "http://127.0.0.1:9/" in said and "ops@bank.example" in said
    code, said = run_cli(monkeypatch, capsys, *zone, "webhook", "remove", "bank")
    assert code == 0 and json.loads((tmp_path / "zone/server/webhooks.json").read_text()) == {}


# -- deliveries --------------------------------------------------------------------------


def _waiting(owner: str = "partner") -> Request:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    return Request(
        id="rq-9",
        requester="bank",
        technique="dp_count",
        spec={},
        purpose="",
        status=RequestStatus.AWAITING_APPROVAL,
        owners_to_approve=(owner,),
        created_at=now,
        updated_at=now,
    )


def test_delivery_connects_to_the_checked_address_and_rechecks_it(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    answers = iter([["127.0.0.1"], ["127.0.0.1"], ["10.0.0.9"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)  # set time, first delivery, then the name "moves" inward

    url = f"http://hooks.partner.example:{receiver.port}/hook"
    notifier = Notifier(
        tmp_path / "w.json", lambda _: SECRET, allow=LOOPBACK, resolver=rebinding, attempts=1
    )
    notifier.set_destination("partner", url, None)
    notifier.notify(_waiting())
    notifier.close()
    ((headers, body),) = receiver.got  # the name does not resolve here: the pinned address did
    assert headers["Host"] == f"hooks.partner.example:{receiver.port}"
    verify_signature(SECRET, headers[SIGNATURE_HEADER], body)
    notifier = Notifier(
        tmp_path / "w.json", lambda _: SECRET, allow=LOOPBACK, resolver=rebinding, attempts=1
    )
    notifier.notify(_waiting())
    notifier.close()
    assert len(receiver.got) == 1
    ((party, outcome),) = notifier.outcomes
    assert party == "partner" and "10.0.0.9" in outcome and "private" in outcome


def test_redirects_are_not_followed(tmp_path: Path, receivers: Callable[..., Receiver]) -> None:
    inner = receivers()
    outer = receivers(redirect_to=f"http://127.0.0.1:{inner.port}/admin")
    notifier = Notifier(tmp_path / "w.json", lambda _: SECRET, allow=LOOPBACK)
    notifier.set_destination("partner", outer.url, None)
    notifier.notify(_waiting())
    notifier.close()
    assert len(outer.got) == 1 and inner.got == []
    assert notifier.outcomes[-1] == (
        "partner",
        "refused: answered 307 (a redirect): not followed",
    )


def test_a_slow_receiver_times_out_off_the_request_path(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    slow = receivers(delay=5.0)
    notifier = Notifier(
        tmp_path / "w.json", lambda _: SECRET, allow=LOOPBACK, timeout=0.3, attempts=1
    )
    notifier.set_destination("partner", slow.url, None)
    started = time.monotonic()
    notifier.notify(_waiting())
    assert time.monotonic() - started < 0.2  # queued, not sent inline
    notifier.close()
    assert time.monotonic() - started < 3
    assert notifier.outcomes[-1] == ("partner", "failed: ReadTimeout")


def test_allow_listed_receiver_gets_signed_notices_from_a_running_server(
    tmp_path: Path,
    servers: list[Server],
    receivers: Callable[..., Receiver],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, tokens = make_parties(tmp_path / "zone")
    server = start_server(
        tmp_path / "zone", "--webhook-allow", "127.0.0.1", "--webhook-timeout", "2"
    )
    servers.append(server)
    h = remote_handles(server, tokens)
    fast, slow = receivers(), receivers(delay=5.0)
    zone = ("--zone", str(tmp_path / "zone"))
    for party, url in (("partner", fast.url), ("bank", slow.url)):
        code, said = run_cli(
            monkeypatch, capsys, *zone, "webhook", "set", party, "--url", url, "--allow", "127.0.0.1"
        )  # fmt: skip
        assert code == 0, said
    partner_secret = bytes.fromhex(h["partner"].notifications()["secret"])
    assert h["partner"].notifications()["url"] == fast.url
    h["partner"].add_dataset("partner_data", write_customers(tmp_path / "p.csv", 40), CUSTOMER_SPEC)
    h["partner"].add_agreement(
        "partner_data", grantees=["bank"], technique="dp_count", purposes=["marketing"],
        approval="manual", rules={"epsilon_budget": 1.0},
    )  # fmt: skip
    made = h["bank"].submit("dp_count", {"dataset": "partner_data", "epsilon": 0.1}, "marketing")
    assert isinstance(made, Request)
    deadline = time.monotonic() + 20
    while not fast.got and time.monotonic() < deadline:
        time.sleep(0.05)
    ((headers, body),) = fast.got
    verify_signature(partner_secret, headers[SIGNATURE_HEADER], body)
    assert json.loads(body)["event"] == "request.awaiting_approval"
    # the bank's receiver holds each delivery 5 s (past the 2 s timeout): had the server
    # waited for it, the approval would answer 2 s or more after the delivery arrived
    decided = h["partner"].approve(made.id, "ok")
    answered = time.monotonic()
    assert decided.status is RequestStatus.RELEASED
    assert not slow.arrived or answered < slow.arrived[0] + 1.5, (answered, slow.arrived)
    deadline = time.monotonic() + 20
    while "webhook to bank failed" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "ReadTimeout" in server.log.read_text()
    for handle in h.values():
        handle.close()


def _tls_receiver(directory: Path, name: str) -> tuple[ThreadingHTTPServer, Path, list[str]]:
    """An HTTPS receiver on 127.0.0.1 whose certificate names only ``name`` (own CA)."""
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test webhook CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "leaf.pem").write_bytes(
        leaf.public_bytes(pem)
        + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    names: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            names.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "leaf.pem")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, directory / "ca.pem", names


@pytest.mark.parametrize("named", ["hooks.partner.example", "other.example"])
def test_https_delivery_to_the_pinned_address_checks_the_certificate_for_the_url_host(
    tmp_path: Path, named: str
) -> None:
    httpd, ca, hosts = _tls_receiver(tmp_path, named)
    port = int(httpd.server_address[1])
    try:
        notifier = Notifier(
            tmp_path / "w.json",
            lambda _: SECRET,
            allow=LOOPBACK,
            resolver=lambda host, port: ["127.0.0.1"],
            attempts=1,
            ca=ca,
        )
        notifier.set_destination("partner", f"https://hooks.partner.example:{port}/h", None)
        notifier.notify(_waiting())
        notifier.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    if named == "hooks.partner.example":  # SNI and the certificate check use the URL's name
        assert notifier.outcomes[-1] == ("partner", "delivered (204)")
        assert hosts == [f"hooks.partner.example:{port}"]
    else:  # a receiver at that address with another name's certificate gets nothing
        assert notifier.outcomes[-1] == ("partner", "failed: ConnectError")
        assert hosts == []
