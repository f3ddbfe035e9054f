"""Uploads as an attacker sends them (issue 12, item 3).

An anonymous client announcing 50 MB must be refused from its headers alone (the server
answers while the body has not even been sent), and each party has an upload quota.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from collabzone.keys import MASTER_KEY_ENV, new_master_key
from collabzone.server._limits import QuotaExceeded, UploadQuota
from collabzone.zone import init
from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import ROLES, Server, start_server


def _serve(tmp_path: Path, *args: str) -> tuple[Server, dict[str, str]]:
    key = new_master_key()
    operator, operator_token = init(tmp_path / "zone", master_key=key)
    tokens = {"operator": operator_token}
    for name, roles in ROLES.items():
        tokens[name] = operator.add_party(name, roles)[1]
    return start_server(tmp_path / "zone", *args, env={MASTER_KEY_ENV: key}), tokens


def _headers_only(url: str, authorization: str | None) -> str:
    """Announce a 50 MB multipart upload, send no body, and return what the server says."""
    parts = urlsplit(url)
    lines = [
        "POST /v1/datasets HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: multipart/form-data; boundary=xyz",
        f"Content-Length: {50 * 1024 * 1024}",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sock.sendall(b"--xyz\r\n")  # the start of a body that never finishes
        answer = b""
        while chunk := sock.recv(65536):  # the server answers and closes, body unread
            answer += chunk
    return answer.decode(errors="replace")


def _token(url: str, party: str, secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": party, "client_secret": secret}
    return str(httpx.post(f"{url}/oauth/token", data=form, timeout=30).json()["access_token"])


def test_uploads_are_authorised_before_the_body_is_read(tmp_path: Path) -> None:
    server, tokens = _serve(tmp_path)
    try:
        spool = tmp_path / "zone" / "server" / "uploads"
        anonymous = _headers_only(server.url, None)
        assert anonymous.startswith("HTTP/1.1 401"), anonymous  # before the body arrived
        forged = _headers_only(server.url, "Bearer forged")
        assert forged.startswith("HTTP/1.1 401")
        auditor = _token(server.url, "auditor", tokens["auditor"])
        no_scope = _headers_only(server.url, f"Bearer {auditor}")
        assert no_scope.startswith("HTTP/1.1 403") and "datasets:write" in no_scope
        assert list(spool.iterdir()) == []
    finally:
        server.stop()


def test_each_party_has_an_upload_quota(tmp_path: Path) -> None:
    server, tokens = _serve(tmp_path, "--upload-quota", "6000")
    data = write_customers(tmp_path / "c.csv", 40)  # about 1 kB, 1.5 kB as multipart
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:

            def upload(party: str, name: str) -> httpx.Response:
                token = _token(server.url, party, tokens[party])
                with data.open("rb") as handle:
                    return client.post(
                        "/v1/datasets",
                        headers={"Authorization": f"Bearer {token}"},
                        data={"name": name, "spec": json.dumps(CUSTOMER_SPEC)},
                        files={"file": ("c.csv", handle)},
                    )

            codes = [upload("partner", f"d{i}").status_code for i in range(5)]
            assert codes[0] == 201 and codes[-1] == 429
            refused = upload("partner", "d9")
            assert "upload quota" in refused.json()["error"]["message"]
            assert int(refused.headers["retry-after"]) >= 1
            assert upload("bank", "b0").status_code == 201  # quotas are per party
    finally:
        server.stop()


def test_quota_counts_a_window_and_refuses_without_counting() -> None:
    now = [0.0]
    quota = UploadQuota(100, 60, clock=lambda: now[0])
    quota.charge("bank", 60)
    with pytest.raises(QuotaExceeded) as refused:
        quota.charge("bank", 60)
    assert refused.value.status_code == 429
    quota.charge("bank", 40)  # the refused 60 were not counted
    quota.charge("partner", 100)
    now[0] = 61.0
    quota.charge("bank", 100)
