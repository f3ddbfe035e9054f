"""Attacks on the server's authentication and authorisation, as an outsider would try them.

Each attempt must get 401/403 and leave an ``auth.denied`` audit event; no secret, access
token or key may appear in any response, log or audit event.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from collabzone.errors import AuthenticationError, NotAuthorisedError
from collabzone.server import _acting
from collabzone.server.auth import RevocationList, TokenService
from collabzone.zone import Zone, connect
from tests.server.conftest import Shared, start_server


@pytest.fixture
def http(shared_server: Shared) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.server.url, timeout=30) as client:
        yield client


@pytest.fixture
def auditor(shared_server: Shared) -> Zone:
    return connect(
        shared_server.root, shared_server.tokens["auditor"], master_key=shared_server.master_key
    )


def _token(http: httpx.Client, party: str, secret: str, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", "client_id": party, "client_secret": secret}
    if scope:
        form["scope"] = scope
    response = http.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _denials(auditor: Zone) -> list[dict[str, object]]:
    return [e for e in auditor.audit_events() if e["action"] == "auth.denied"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_token_is_401_and_audited(http: httpx.Client, auditor: Zone) -> None:
    before = len(_denials(auditor))
    response = http.get("/v1/requests")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["type"] == "AuthenticationError"
    assert len(_denials(auditor)) == before + 1


def test_wrong_secret_and_mismatched_client_id_are_refused(
    http: httpx.Client, shared_server: Shared, auditor: Zone
) -> None:
    before = len(_denials(auditor))
    bad = {"grant_type": "client_credentials", "client_id": "bank", "client_secret": "czt_guess"}
    response = http.post("/oauth/token", data=bad)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    stolen = {**bad, "client_secret": shared_server.tokens["partner"]}  # partner's secret as bank
    assert http.post("/oauth/token", data=stolen).status_code == 401
    assert len(_denials(auditor)) >= before + 1  # repeats fold into one event per window
    assert http.post("/oauth/token", data={**bad, "grant_type": "password"}).status_code == 400


def test_expired_forged_and_tampered_tokens_are_401(
    http: httpx.Client, shared_server: Shared, auditor: Zone
) -> None:
    host = connect(
        shared_server.root, None, master_key=shared_server.master_key
    )  # the server's view
    key = _acting.derive_key(host, "jwt")
    tokens = TokenService(
        key, f"collabzone:{auditor.zone_id}", 900, RevocationList(shared_server.root / "x.json")
    )
    bank = connect(
        shared_server.root, shared_server.tokens["bank"], master_key=shared_server.master_key
    )
    expired = tokens.issue(bank.me, {"zone:read"}, ttl=-5)["access_token"]
    forged = TokenService(b"k" * 32, f"collabzone:{auditor.zone_id}", 900, tokens.revoked)
    forged_token = forged.issue(bank.me, {"zone:read"})["access_token"]
    genuine = _token(http, "bank", shared_server.tokens["bank"])
    claims = jwt.decode(genuine, options={"verify_signature": False})
    escalated = jwt.encode({**claims, "sub": "partner"}, b"guess" * 8, algorithm="HS256")
    unsigned = jwt.encode({**claims, "sub": "partner"}, None, algorithm="none")
    before = len(_denials(auditor))
    for attempt in (expired, forged_token, escalated, unsigned, genuine[:-4] + "AAAA"):
        response = http.get("/v1/requests", headers=_bearer(attempt))
        assert response.status_code == 401, attempt
    # one event per kind of refusal at once (expired, invalid); repeats fold into an
    # aggregated event when the audit window closes (see test_bruteforce.py)
    assert len(_denials(auditor)) == before + 2
    assert "expired" in http.get("/v1/me", headers=_bearer(expired)).json()["error"]["message"]


def test_wrong_scope_is_403_and_audited(
    http: httpx.Client, shared_server: Shared, auditor: Zone
) -> None:
    read_only = _token(http, "bank", shared_server.tokens["bank"], scope="zone:read")
    assert http.get("/v1/requests", headers=_bearer(read_only)).status_code == 200
    before = len(_denials(auditor))
    body = {"technique": "dp_count", "spec": {"dataset": "partner_data", "epsilon": 0.1}}
    response = http.post("/v1/requests", json=body, headers=_bearer(read_only))
    assert response.status_code == 403 and "requests:submit" in response.json()["error"]["message"]
    assert len(_denials(auditor)) == before + 1
    beyond = {
        "grant_type": "client_credentials",
        "client_id": "auditor",
        "client_secret": shared_server.tokens["auditor"],
        "scope": "requests:decide",
    }
    assert http.post("/oauth/token", data=beyond).json()["error"] == "invalid_scope"


def test_revoked_token_is_401(http: httpx.Client, shared_server: Shared, auditor: Zone) -> None:
    token = _token(http, "bank", shared_server.tokens["bank"])
    assert http.get("/v1/me", headers=_bearer(token)).status_code == 200
    other = _token(http, "partner", shared_server.tokens["partner"])
    refused = http.post("/oauth/revoke", data={"token": token}, headers=_bearer(other))
    assert refused.status_code == 403  # partner may not revoke bank's token
    assert (
        http.post("/oauth/revoke", data={"token": token}, headers=_bearer(token)).status_code == 200
    )
    before = len(_denials(auditor))
    response = http.get("/v1/me", headers=_bearer(token))
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    assert len(_denials(auditor)) == before + 1


def test_another_partys_resource_is_403_and_audited(
    http: httpx.Client, shared_server: Shared, auditor: Zone
) -> None:
    insurer = _token(http, "insurer", shared_server.tokens["insurer"])
    bank = _token(http, "bank", shared_server.tokens["bank"])
    rid = shared_server.request_id
    before = len(_denials(auditor))
    assert http.get(f"/v1/requests/{rid}", headers=_bearer(insurer)).status_code == 403
    assert http.get(f"/v1/requests/{rid}/result", headers=_bearer(insurer)).status_code == 403
    approve = http.post(f"/v1/requests/{rid}/approve", json={"reason": "x"}, headers=_bearer(bank))
    assert approve.status_code == 403  # the requester cannot approve for the owner
    assert http.delete("/v1/datasets/partner_data", headers=_bearer(bank)).status_code == 403
    assert len(_denials(auditor)) >= before + 3


def test_no_secret_or_key_in_responses_logs_or_audit(
    http: httpx.Client, shared_server: Shared, auditor: Zone
) -> None:
    token = _token(http, "bank", shared_server.tokens["bank"])
    bodies = [
        http.get(path, headers=_bearer(token)).text
        for path in (
            "/v1/me",
            "/v1/parties",
            "/v1/requests",
            "/v1/audit",
            "/v1/budget",
            "/openapi.json",
        )
    ]
    bodies.append(
        http.post(
            "/oauth/token", data={"grant_type": "client_credentials", "client_secret": "czt_wrong"}
        ).text
    )
    audit_text = str(auditor.audit_events())
    log_text = shared_server.server.log.read_text(errors="replace")
    secrets = [*shared_server.tokens.values(), shared_server.master_key, token]
    for haystack in (*bodies, audit_text, log_text):
        for secret in secrets:
            assert secret not in haystack


def test_client_maps_auth_failures(shared_server: Shared) -> None:
    from collabzone import connect as connect_any

    with pytest.raises(AuthenticationError):
        connect_any(shared_server.server.url, client_id="bank", client_secret="czt_wrong").parties()
    narrowed = connect_any(
        shared_server.server.url,
        client_id="bank",
        client_secret=shared_server.tokens["bank"],
        scope="zone:read",
    )
    with pytest.raises(NotAuthorisedError):
        narrowed.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.1}, "marketing")
    by_token = connect_any(shared_server.server.url, token=shared_server.tokens["bank"])
    assert by_token.me.name == "bank"


def test_rate_limit_and_body_limits(tmp_path: Path, shared_server: Shared) -> None:
    from collabzone.keys import MASTER_KEY_ENV

    server = start_server(
        shared_server.root,
        "--rate",
        "0.5",
        "--burst",
        "3",
        "--max-body",
        "2000",
        "--max-upload",
        "3000",
        env={MASTER_KEY_ENV: shared_server.master_key},
    )
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            token = _token(client, "bank", shared_server.tokens["bank"])
            codes = [client.get("/v1/me", headers=_bearer(token)).status_code for _ in range(5)]
            assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
            limited = client.get("/v1/me", headers=_bearer(token))
            assert int(limited.headers["retry-after"]) >= 1
            partner = _token(client, "partner", shared_server.tokens["partner"])
            big = {"technique": "dp_count", "spec": {"pad": "x" * 5000}}
            assert client.post("/v1/price", json=big, headers=_bearer(partner)).status_code == 413
            upload = client.post(
                "/v1/datasets",
                headers=_bearer(partner),
                data={"name": "big", "spec": "{}"},
                files={"file": ("big.csv", b"a,b\n" + b"1,2\n" * 2000)},
            )
            assert upload.status_code == 413

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
                for _ in range(10):
                    yield b"x" * 500
                time.sleep(0)

            streamed = client.post(
                "/v1/price",
                content=chunks(),
                headers={**_bearer(partner), "content-type": "application/json"},
            )
            assert streamed.status_code == 413
            flood = [
                client.get("/v1/me", headers=_bearer(f"forged-{i}")).status_code for i in range(6)
            ]
            assert set(flood) <= {401, 429} and flood[-1] == 429  # bad tokens are throttled too
    finally:
        server.stop()
