"""The issue-17 demo steps on the demo's own data (bank seed = its converted customers)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from collabzone import demo
from collabzone.demo_lookalike import step_lookalike, step_sealed


def test_demo_steps_deliver_to_the_partner_and_count_for_the_bank(tmp_path: Path) -> None:
    out = io.StringIO()
    zone = demo._setup(tmp_path, 1500, Console(file=out, width=200))
    step_lookalike(zone)
    step_sealed(zone)
    text = out.getvalue()
    assert "partner sees: 50 of its own customer tokens" in text, text
    assert "customers qualify (a count only)" in text, text
    assert "preapprove" not in text.split("Sealed code")[1].split("partner reviews")[0]
