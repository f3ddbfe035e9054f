"""Disabling a party and rotating its secret take effect everywhere (issue 12, item 2).

Tokens are self-contained JWTs, so the attack is a party that was disabled, or whose
secret leaked and was rotated, carrying on with the token or console session it already
holds. Each must be refused within seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from collabzone.errors import AuthenticationError, ConflictError, NotAuthorisedError
from collabzone.zone import Zone, connect
from tests.server.conftest import (
    Handles,
    Server,
    console_sign_in,
    make_parties,
    start_server,
)


def test_operator_disables_enables_and_rotates_in_the_core(tmp_path: Path) -> None:
    operator, tokens = make_parties(tmp_path / "zone")
    bank = operator.as_party(tokens["bank"])
    with pytest.raises(NotAuthorisedError):
        bank.disable_party("partner", "not yours")
    with pytest.raises(ConflictError):
        operator.disable_party("operator", "oops")
    assert operator.disable_party("bank", "left the consortium").disabled_at is not None
    with pytest.raises(AuthenticationError, match="disabled"):
        operator.as_party(tokens["bank"])
    with pytest.raises(ConflictError):
        operator.disable_party("bank", "twice")
    operator.enable_party("bank")
    assert operator.as_party(tokens["bank"]).me.name == "bank"
    party, secret = operator.rotate_party_secret("bank")
    assert party.secret_version == 2 and secret != tokens["bank"]
    with pytest.raises(AuthenticationError):
        operator.as_party(tokens["bank"])
    assert operator.as_party(secret).rotate_party_secret("bank")[0].secret_version == 3
    actions = [e["action"] for e in operator.audit_events() if e["subject"] == "bank"]
    assert actions[-4:] == [
        "party.disabled",
        "party.enabled",
        "party.secret_rotated",
        "party.secret_rotated",
    ]


def _token(url: str, party: str, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": party, "client_secret": secret}
    return httpx.post(f"{url}/oauth/token", data=form, timeout=30)


def _me(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_disabled_partys_token_and_session_end_at_once(served: Handles) -> None:
    assert served.server is not None
    url = served.server.url
    token = _token(url, "bank", served.tokens["bank"]).json()["access_token"]
    assert _me(url, token).status_code == 200
    with httpx.Client(base_url=url, timeout=30) as browser:
        assert console_sign_in(browser, served.tokens["bank"]).status_code == 303
        assert browser.get("/console/").status_code == 200
        served.operator.disable_party("bank", "contract ended")
        refused = _me(url, token)
        assert refused.status_code == 401 and "disabled" in refused.json()["error"]["message"]
        assert browser.get("/console/").status_code == 303  # the session is over
    assert _token(url, "bank", served.tokens["bank"]).status_code == 401
    served.operator.enable_party("bank")
    assert _token(url, "bank", served.tokens["bank"]).status_code == 200


def test_a_rotated_secret_ends_old_tokens_and_the_old_secret(served: Handles) -> None:
    assert served.server is not None
    url = served.server.url
    old = _token(url, "bank", served.tokens["bank"]).json()["access_token"]
    _, secret = served.operator.rotate_party_secret("bank")
    refused = _me(url, old)
    assert refused.status_code == 401 and "rotated" in refused.json()["error"]["message"]
    assert _token(url, "bank", served.tokens["bank"]).status_code == 401
    fresh = _token(url, "bank", secret).json()["access_token"]
    assert _me(url, fresh).status_code == 200
    with pytest.raises(NotAuthorisedError):
        served.partner.rotate_party_secret("bank")  # only the operator re-keys others


def test_a_party_disabled_outside_the_server_is_refused_within_seconds(
    tmp_path: Path, servers: list[Server]
) -> None:
    _, tokens = make_parties(tmp_path / "zone")
    server = start_server(tmp_path / "zone", "--party-cache", "1")
    servers.append(server)
    token = _token(server.url, "bank", tokens["bank"]).json()["access_token"]
    assert _me(server.url, token).status_code == 200
    host: Zone = connect(tmp_path / "zone", tokens["operator"])  # e.g. the CLI on the host
    host.disable_party("bank", "compromised")
    deadline = time.monotonic() + 5
    while _me(server.url, token).status_code == 200:
        assert time.monotonic() < deadline, "a disabled party's token still works after 5 s"
        time.sleep(0.2)
    assert _me(server.url, token).status_code == 401


def test_the_operator_manages_parties_in_the_console(served: Handles) -> None:
    assert served.server is not None
    url = served.server.url
    with httpx.Client(base_url=url, timeout=30) as bank:
        console_sign_in(bank, served.tokens["bank"])
        assert bank.get("/console/parties").status_code == 403  # operators only
    with httpx.Client(base_url=url, timeout=30) as browser:
        assert console_sign_in(browser, served.tokens["operator"]).status_code == 303
        page = browser.get("/console/parties")
        assert page.status_code == 200 and 'id="party-bank"' in page.text
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        disabled = browser.post(
            "/console/parties/bank/disable", data={"csrf": csrf, "reason": "audit finding"}
        )
        assert disabled.status_code == 200
        assert _token(url, "bank", served.tokens["bank"]).status_code == 401
        again = browser.post("/console/parties/bank/disable", data={"csrf": csrf, "reason": "x"})
        assert again.status_code == 409 and 'role="alert"' in again.text
        browser.post("/console/parties/bank/enable", data={"csrf": csrf})
        rotated = browser.post("/console/parties/bank/rotate-secret", data={"csrf": csrf})
        secret = rotated.text.split('<pre id="new-secret">', 1)[1].split("</pre>", 1)[0]
        assert _token(url, "bank", secret).status_code == 200
        assert _token(url, "bank", served.tokens["bank"]).status_code == 401
