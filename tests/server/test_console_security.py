"""The console as an attacker sees it: narrowed tokens, refused decisions, forged sign-ins.

Issue 12, security items 1 and 7: the console shares the REST API's authorisation path, so
a cookie is worth exactly what its token's scopes say.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from collabzone.model import RequestStatus
from tests.server.conftest import Handles, Server, console_sign_in, make_parties, start_server
from tests.server.test_console import _csrf, _pending


def _scoped_token(url: str, party: str, secret: str, scope: str) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": party,
        "client_secret": secret,
        "scope": scope,
    }
    response = httpx.post(f"{url}/oauth/token", data=form, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_a_read_only_token_in_the_console_cookie_cannot_approve(
    served: Handles, tmp_path: Path
) -> None:
    request = _pending(served, tmp_path)
    assert served.server is not None
    url = served.server.url
    read_only = _scoped_token(url, "partner", served.tokens["partner"], "zone:read")
    with httpx.Client(base_url=url, timeout=30, cookies={"cz_session": read_only}) as browser:
        detail = browser.get(f"/console/requests/{request.id}")
        assert detail.status_code == 200  # reading is what zone:read allows
        approve = browser.post(
            f"/console/requests/{request.id}/approve",
            data={"reason": "sneaky", "csrf": _csrf(detail.text)},
        )
        assert approve.status_code == 403
        assert "requests:decide" in approve.text
        audit_only = _scoped_token(url, "partner", served.tokens["partner"], "audit:read")
        browser.cookies.set("cz_session", audit_only)
        assert browser.get("/console/").status_code == 403  # no zone:read, no pages
    assert served.bank.request(request.id).status is RequestStatus.AWAITING_APPROVAL
    denied = [e for e in served.auditor.audit_events() if e["action"] == "auth.denied"]
    assert any("requests:decide" in str(e["details"]) for e in denied)


def test_a_refused_console_decision_is_not_a_200(served: Handles, tmp_path: Path) -> None:
    request = _pending(served, tmp_path)
    assert served.server is not None
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        assert console_sign_in(browser, served.tokens["partner"]).status_code == 303
        detail = browser.get(f"/console/requests/{request.id}")
        csrf = _csrf(detail.text)
        ok = browser.post(
            f"/console/requests/{request.id}/deny", data={"reason": "no", "csrf": csrf}
        )
        assert ok.status_code == 303
        again = browser.post(
            f"/console/requests/{request.id}/approve", data={"reason": "changed", "csrf": csrf}
        )
        assert again.status_code == 409 and 'role="alert"' in again.text


def test_a_foreign_page_cannot_sign_the_owner_in_as_another_party(served: Handles) -> None:
    assert served.server is not None
    url = served.server.url
    with httpx.Client(base_url=url, timeout=30) as attacker:
        # the attacker loads the form in its own browser to get a valid-looking CSRF token
        form = attacker.get("/console/login").text
        stolen_csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    with httpx.Client(base_url=url, timeout=30) as victim:
        for data in (
            {"token": served.tokens["bank"]},  # a plain cross-site form post
            {"token": served.tokens["bank"], "csrf": stolen_csrf},  # with the attacker's
        ):
            response = victim.post("/console/login", data=data)
            assert response.status_code == 403 and "another site" in response.text
            assert "cz_session" not in response.headers.get("set-cookie", "")
        assert victim.get("/console/").status_code == 303  # still signed out


def test_every_answer_carries_the_security_headers(served: Handles) -> None:
    assert served.server is not None
    with httpx.Client(base_url=served.server.url, timeout=30) as client:
        for path in ("/console/login", "/v1/me", "/healthz", "/openapi.json", "/nowhere"):
            headers = client.get(path).headers
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
            assert "script-src 'self'" in headers["content-security-policy"]
            assert headers["x-frame-options"] == "DENY"
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["cache-control"] == "no-store"
        assert client.get("/docs").status_code == 404  # no Swagger UI from a CDN
        assert client.get("/redoc").status_code == 404
        cookie = console_sign_in(client, served.tokens["bank"]).headers["set-cookie"]
        spoofed = client.get(
            "/console/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"}
        )
    assert "secure" not in cookie.lower()
    assert "secure" not in spoofed.headers["set-cookie"].lower()  # no proxy is trusted


def test_cookies_are_secure_behind_a_trusted_tls_proxy(
    tmp_path: Path, servers: list[Server]
) -> None:
    _, tokens = make_parties(tmp_path / "zone")
    server = start_server(tmp_path / "zone", "--trusted-proxy", "127.0.0.1")
    servers.append(server)
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    with httpx.Client(base_url=server.url, timeout=30, headers=proxied) as browser:
        form = browser.get("/console/login")
        assert "secure" in form.headers["set-cookie"].lower()
        assert "max-age=31536000" in form.headers["strict-transport-security"]
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        nonce = form.cookies["cz_login"]  # a Secure cookie: httpx keeps it for https only
        signed_in = browser.post(
            "/console/login",
            data={"token": tokens["partner"], "csrf": csrf},
            headers={"Cookie": f"cz_login={nonce}"},
        )
        assert signed_in.status_code == 303
        assert "secure" in signed_in.headers["set-cookie"].lower()
