"""The console's view of mpc, he_sum and survey releases: status and uploads, never values."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from collabzone.server._result_view import _shown
from collabzone.techniques import registry
from collabzone.techniques.view import ResultView

SHA = hashlib.sha256(b"bundle").hexdigest()


def _text(view: ResultView) -> str:
    shown = _shown(view)
    cells = [c for t in shown.tables for row in t.rows for c in row]
    return " ".join([*(f"{k} {v}" for k, v in shown.facts), *cells, *shown.charts])


def test_mpc_view_shows_status_and_uploads_not_the_bundle() -> None:
    payload: dict[str, Any] = {
        "report": "mean", "datasets": ["adult"], "recipient": "bank",
        "bundle": {"path": "/srv/outbox/bank/x.json", "sha256": SHA, "servers": 3, "threshold": 1},
        "uploads": [{"dataset": "adult", "provider": "partner", "rows": 300,
                     "registered": "2026-12-03T09:15:00+00:00"}],
    }  # fmt: skip
    text = _text(registry.get("mpc").result_view(payload))
    assert "output shares delivered to the recipient" in text and "bank" in text
    assert "partner" in text and "300" in text and "2026-12-03 09:15 UTC" in text
    assert "any 2 open it" in text
    assert SHA not in text and SHA[:12] in text and "/srv/outbox" not in text


def test_he_view_shows_deposits_never_the_ciphertext() -> None:
    ciphertext = base64.b64encode(b"\x01" * 300).decode()
    payload = {
        "datasets": ["a", "b"], "recipient": "bank", "providers": 2,
        "ciphertext": ciphertext, "sha256": SHA,
        "deposits": [{"dataset": "a", "provider": "partner", "deposited": 1796288100},
                     {"dataset": "b", "provider": "insurer", "deposited": 1796288160}],
    }  # fmt: skip
    text = _text(registry.get("he_sum").result_view(payload))
    assert "partner" in text and "insurer" in text and "UTC" in text
    assert ciphertext[:40] not in text and SHA not in text


def test_survey_view_never_draws_invitation_links() -> None:
    links = [f"/survey/0123456789abcdef#secret{i}" for i in range(3)]
    opened = {
        "action": "open", "survey": "0123456789abcdef", "title": "Members", "questions": 2,
        "page": "/survey/0123456789abcdef", "invitations": 3, "recipient": "bank",
        "servers": ["s0", "s1", "s2"], "population": "members", "invitation_links": links,
    }  # fmt: skip
    text = _text(registry.get("survey").result_view(opened))
    assert "open for answers" in text and "3, read them through the API" in text
    assert "secret" not in text
    closed = {
        "action": "close", "survey": "0123456789abcdef", "title": "Members",
        "recipient": "bank", "respondents": 42,
        "bundle": {"path": "/x", "sha256": SHA, "servers": 3, "threshold": 1},
    }  # fmt: skip
    text = _text(registry.get("survey").result_view(closed))
    assert "closed" in text and "42" in text and SHA not in text
    assert "DP noise" not in text
    noisy = _text(registry.get("survey").result_view({**closed, "epsilon": 0.5, "delta": 1e-6}))
    assert "DP noise on the counts" in noisy and "epsilon 0.5" in noisy
