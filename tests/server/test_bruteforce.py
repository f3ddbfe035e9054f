"""Password guessing against the server, as an attacker would run it (issue 12, item 4).

200 wrong secrets must meet 429s long before the end, the console sign-in must be just as
limited, and the audit log must get one aggregated event for the run, not 200.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from collabzone.keys import MASTER_KEY_ENV, new_master_key
from collabzone.server._guard import DenialAudit, FailureGuard
from collabzone.zone import connect, init
from tests.server.conftest import Server, console_sign_in, start_server


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_failures_lock_a_key_with_doubling_back_off_and_expire() -> None:
    clock = Clock()
    guard = FailureGuard(threshold=3, window=60, base=1, cap=8, clock=clock)
    waits = [guard.fail("ip:a") for _ in range(7)]
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 8.0]  # doubling, capped
    assert guard.locked(["ip:a", "client:bank"]) == 8.0
    assert guard.locked(["ip:b"]) == 0.0  # other addresses are untouched
    clock.now = 100.0  # the window passed: the lock is over, strikes start again
    assert guard.locked(["ip:a"]) == 0.0
    assert guard.fail("ip:a") == 0.0
    guard.succeed("ip:a")
    assert guard.locked(["ip:a"]) == 0.0


def test_repeated_denials_fold_into_one_event_per_window() -> None:
    clock = Clock()
    written: list[tuple[str, str, dict[str, Any]]] = []
    audit = DenialAudit(
        lambda actor, subject, _p, details: written.append((actor, subject, dict(details))),
        window=1000,
        clock=clock,
    )
    for i in range(200):
        audit.deny("anonymous", f"/v1/x{i % 3}", [], "wrong secret", "10.0.0.1", locked=i > 10)
    audit.deny("bank", "/v1/requests", ["bank"], "token lacks scope", "10.0.0.1")
    assert len(written) == 2  # the first of each kind, at once
    audit.flush()
    assert len(written) == 3
    actor, _, details = written[-1]
    assert actor == "anonymous" and details["repeated"] == 199 and details["locked_out"] == 189
    assert details["subjects"] == ["/v1/x0", "/v1/x1", "/v1/x2"]
    clock.now = 2000.0  # a new window starts with an event of its own
    audit.deny("anonymous", "/v1/x", [], "wrong secret", "10.0.0.1")
    assert len(written) == 4


def _serve(tmp_path: Path, *args: str) -> tuple[Server, dict[str, str], str]:
    key = new_master_key()
    root = tmp_path / "zone"
    operator, operator_token = init(root, master_key=key)
    tokens = {"operator": operator_token, "bank": operator.add_party("bank", ["analyst"])[1]}
    return start_server(root, *args, env={MASTER_KEY_ENV: key}), tokens, key


def _denials(root: Path, token: str, key: str) -> list[dict[str, Any]]:
    viewer = connect(root, token, master_key=key)
    return [e for e in viewer.audit_events() if e["action"] == "auth.denied"]


def test_two_hundred_wrong_secrets_meet_429_and_one_aggregated_event(tmp_path: Path) -> None:
    # a first lock of a minute: the test sees the lock, not the back-off's timing
    server, tokens, key = _serve(tmp_path, "--audit-window", "600", "--lockout-base", "60")
    try:
        before = len(_denials(server.root, tokens["operator"], key))
        codes = []
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(200):
                form = {
                    "grant_type": "client_credentials",
                    "client_id": "bank",
                    "client_secret": f"czt_guess_{i}",
                }
                codes.append(client.post("/oauth/token", data=form).status_code)
            assert codes[:10] == [401] * 10
            assert codes[10:] == [429] * 190  # locked before the secret is looked at
            locked = client.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "bank",
                    "client_secret": tokens["bank"],
                },
            )
            assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
            console = console_sign_in(client, tokens["bank"])
            assert console.status_code == 429  # the console door is the same door
        assert len(_denials(server.root, tokens["operator"], key)) == before + 1
        server.stop()  # a shutdown closes the window: the repeats are written as one event
        new = _denials(server.root, tokens["operator"], key)[before:]
        assert len(new) == 2, new
        first, aggregated = new
        assert first["details"]["reason"] == "unknown client or wrong secret"
        assert aggregated["details"]["repeated"] >= 200
        assert aggregated["details"]["locked_out"] >= 200 - codes.count(401)
    finally:
        server.stop()


def test_console_sign_in_is_limited_too(tmp_path: Path) -> None:
    server, tokens, _ = _serve(tmp_path, "--max-failures", "5", "--lockout-base", "60")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            codes = [console_sign_in(browser, f"czt_{i}").status_code for i in range(30)]
            assert codes == [401] * 5 + [429] * 25
            page = console_sign_in(browser, tokens["bank"])
            assert page.status_code == 429 and "too many failed sign-ins" in page.text
            assert "cz_session" not in browser.cookies
    finally:
        server.stop()
