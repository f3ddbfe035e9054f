"""`collabzone demo` tells the story it claims: every step's outcome is checked."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from collabzone.demo import run_demo
from collabzone.model import RequestStatus


def test_demo_runs_every_step_with_the_expected_outcomes(tmp_path: Path) -> None:
    out = io.StringIO()
    demo = run_demo(tmp_path, console=Console(file=out, width=200))
    text = out.getvalue()
    requests = demo.auditor.requests()
    by_technique: dict[str, list[RequestStatus]] = {}
    for request in requests:
        by_technique.setdefault(request.technique, []).append(request.status)
    # overlap for both sides, SQL whose differencing answer leaves groups out, DP with one
    # budget refusal
    assert by_technique["overlap"] == [RequestStatus.RELEASED] * 2
    assert RequestStatus.RELEASED in by_technique["sql"]
    left_out = next(line for line in text.splitlines() if "left out (each would differ" in line)
    assert not left_out.rstrip().endswith("none")
    assert "BUDGET_EXHAUSTED" in text and "OWNER_DENIED" in text
    assert "PURPOSE_NOT_ALLOWED" in text
    assert by_technique["mediate"] == [RequestStatus.RELEASED]
    assert RequestStatus.RELEASED in by_technique["validator"]
    # look-alike audience to the partner only; sealed pre-approval rules the partner never reads
    assert by_technique["lookalike"] == [RequestStatus.RELEASED]
    assert by_technique["sealed"] == [RequestStatus.RELEASED]
    assert "partner sees:" in text and "of its own customer tokens" in text
    assert "customers qualify (a count only)" in text
    assert "preapprove" not in text.split("Sealed code")[1].split("partner reviews")[0]
    # a federated job at three owners' nodes: released with its curve, model sealed
    assert by_technique["federated"] == [RequestStatus.RELEASED]
    assert "bank, insurer, partner approved at their nodes; 5 rounds" in text
    assert "accuracy per round on the lab's own evaluation table: 0." in text
    assert "model sealed in the zone as fl_model_" in text
    # the overlap the zone reports is the one generated
    assert f"{demo.files.overlap} shared customers" in text
    # no raw PII reached the zone: the uploads hold tokens, the raw files stay at the premises
    raw_emails = [
        line.split(",")[2].strip().lower()
        for line in demo.files.bank_raw.read_text().splitlines()[1:50]
    ]
    zone_bytes = b"".join(p.read_bytes() for p in (tmp_path / "zone").rglob("*") if p.is_file())
    assert not any(email.encode() in zone_bytes for email in raw_emails)
    assert demo.auditor.verify_audit().ok
    assert "continues your checkpoint" in text  # the auditor checked the bank's checkpoint
