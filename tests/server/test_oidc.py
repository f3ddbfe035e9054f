"""Console sign-in through an OpenID Connect provider (a fake IdP on loopback).

The happy path signs the partner in; a forged ID token, a replayed state, a wrong nonce or
an identity that names no party are refused and audited.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.server.conftest import Server, make_parties, start_server

CLIENT_ID = "collabzone-console"


@dataclass
class FakeIdP:
    """Discovery, authorize, token and JWKS endpoints; knobs to misbehave."""

    url: str = ""
    party: str = "partner"
    forge: bool = False
    wrong_nonce: bool = False
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def id_token(self, grant: dict[str, str]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url, "aud": CLIENT_ID, "sub": "user-42", "iat": now, "exp": now + 300,
            "nonce": "other" if self.wrong_nonce else grant["nonce"],
            "collabzone_party": self.party,
        }  # fmt: skip
        signer = rsa.generate_private_key(65537, 2048) if self.forge else self.key
        return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": "k1"})


def _handler(idp: FakeIdP) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _json(self, doc: Any, status: int = 200) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(
                    {
                        "issuer": idp.url,
                        "authorization_endpoint": f"{idp.url}/authorize",
                        "token_endpoint": f"{idp.url}/token",
                        "jwks_uri": f"{idp.url}/jwks",
                    }
                )
            elif url.path == "/jwks":
                jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(idp.key.public_key()))
                self._json({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
            elif url.path == "/authorize":
                code = secrets.token_urlsafe(16)
                idp.codes[code] = query
                self.send_response(302)
                target = (
                    f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                )
                self.send_header("Location", target)
                self.end_headers()
            else:
                self._json({}, 404)

        def do_POST(self) -> None:
            form = {
                k: v[0]
                for k, v in parse_qs(
                    self.rfile.read(int(self.headers["Content-Length"])).decode()
                ).items()
            }
            grant = idp.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "").encode()
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            )
            if grant is None or grant["code_challenge"] != challenge:
                self._json({"error": "invalid_grant"}, 400)
                return
            self._json({"id_token": idp.id_token(grant), "token_type": "Bearer"})

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def idp() -> Iterator[FakeIdP]:
    fake = FakeIdP()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


def _sign_in(server: Server) -> tuple[httpx.Response, httpx.Client]:
    browser = httpx.Client(base_url=server.url, timeout=30)
    login = browser.get("/console/oidc/login")
    assert login.status_code == 303
    at_idp = httpx.get(login.headers["location"])
    assert at_idp.status_code == 302
    callback = urlparse(at_idp.headers["location"])
    return browser.get(f"{callback.path}?{callback.query}"), browser


def test_identity_provider_sign_in_and_attacks(
    tmp_path: Path, servers: list[Server], idp: FakeIdP
) -> None:
    operator, _ = make_parties(tmp_path / "zone")
    server = start_server(
        tmp_path / "zone", "--oidc-issuer", idp.url, "--oidc-client-id", CLIENT_ID
    )
    servers.append(server)
    assert 'id="oidc"' in httpx.get(f"{server.url}/console/login").text

    done, browser = _sign_in(server)
    assert done.status_code == 303 and "cz_session" in browser.cookies
    assert "partner (analyst, provider)" in browser.get("/console/").text
    browser.close()

    auditor = operator.as_party(make_tokens_auditor(operator))
    before = len([e for e in auditor.audit_events() if e["action"] == "auth.denied"])
    for knob in ("forge", "wrong_nonce", "party"):
        setattr(idp, knob, "nobody" if knob == "party" else True)
        refused, browser = _sign_in(server)
        assert refused.status_code == 401, knob
        assert "cz_session" not in browser.cookies
        browser.close()
        setattr(idp, knob, "partner" if knob == "party" else False)
    browser = httpx.Client(base_url=server.url, timeout=30)
    browser.get("/console/oidc/login")
    replay = browser.get("/console/oidc/callback", params={"code": "x", "state": "guessed"})
    assert replay.status_code == 401
    browser.close()
    after = len([e for e in auditor.audit_events() if e["action"] == "auth.denied"])
    assert after >= before + 4


def make_tokens_auditor(operator: Any) -> str:
    return str(operator.add_party("oidc_auditor", ["auditor"])[1])
