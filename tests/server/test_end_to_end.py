"""The demo flow over HTTP with real processes on loopback: the server, a bank client, a
partner client (this test process, each through its own RemoteZone) and a node agent
(a separate process that pulls its job from the server and returns only the release)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from collabzone import connect
from collabzone.model import Request, RequestStatus
from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import Handles

LABEL_SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "income", "type": "string", "class": "label", "domain": [">50K", "<=50K"]},
    ]
}


def _write_labels(path: Path, n: int) -> tuple[list[str], np.ndarray]:
    """The partner's private labels (at its node only) and a decent model's scores."""
    rng = np.random.default_rng(7)
    truth = (rng.random(n) < 0.3).astype(int)
    scores = np.clip(0.3 * truth + 0.35 + rng.normal(0, 0.2, n), 0, 1).round(4)
    tokens = [hashlib.sha256(f"person-{i}".encode()).hexdigest() for i in range(n)]
    rows = [f"{t},{'>50K' if y else '<=50K'}" for t, y in zip(tokens, truth, strict=True)]
    path.write_text("token,income\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return tokens, scores


NODE_SCRIPT = textwrap.dedent(
    """
    import sys
    from collabzone import connect
    from collabzone.node import NodeAgent

    url, secret, labels = sys.argv[1:4]
    zone = connect(url, client_id="partner", client_secret=secret)
    done = NodeAgent(zone, {"labels": labels}, seed=1).run_once()
    print(",".join(f"{r.id}:{r.status.value}" for r in done))
    """
)


def test_demo_flow_over_http(served: Handles, tmp_path: Path) -> None:
    validator = pytest.importorskip("collabzone.techniques.validator")
    bank = connect(served.server.url, client_id="bank", client_secret=served.tokens["bank"])  # type: ignore[union-attr]
    partner = served.partner

    # 1. both bring tokenised customers; the partner lets the bank count its customers
    bank.add_dataset("bank_data", write_customers(tmp_path / "b.csv", 300, "t"), CUSTOMER_SPEC)
    partner.add_dataset(
        "partner_data", write_customers(tmp_path / "p.csv", 300, "t"), CUSTOMER_SPEC
    )
    partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": 1.0},
        approval="manual",
    )
    assert "partner_data" in str(bank.catalogue())

    # 2. the bank asks, the partner reviews the exact request and approves it
    asked = bank.submit(
        "dp_count", {"dataset": "partner_data", "epsilon": 0.5, "by": "region"}, "marketing"
    )
    assert isinstance(asked, Request) and asked.status is RequestStatus.AWAITING_APPROVAL
    (pending,) = partner.requests(RequestStatus.AWAITING_APPROVAL)
    assert pending.spec["epsilon"] == 0.5
    assert partner.approve(asked.id, "campaign planning").status is RequestStatus.RELEASED
    counts = bank.result(asked.id)
    assert counts.payload and counts.receipt.budget_spent["partner_data"]["epsilon"] == 0.5

    # 3. the partner's labels stay at its node; the bank's predictions are scored there
    labels = tmp_path / "partner_node" / "labels.csv"
    labels.parent.mkdir()
    tokens, scores = _write_labels(labels, 400)
    partner.register_dataset("labels", LABEL_SPEC, row_count=400)
    partner.add_agreement(
        "labels",
        grantees=["bank"],
        technique="validator",
        purposes=["model validation"],
        rules={"min_records": 50, "min_group_size": 20, "precision": 4},
    )
    index = np.arange(300)
    submission = validator.Submission(
        tuple(tokens[i] for i in index), tuple(float(scores[i]) for i in index), None
    )
    spec = validator.submission_spec("labels", submission, positive_label=">50K")
    job = bank.submit("validator", spec, "model validation")
    assert isinstance(job, Request) and job.status is RequestStatus.APPROVED
    assert [j.id for j in partner.jobs()] == [job.id]

    node = subprocess.run(
        [
            sys.executable,
            "-c",
            NODE_SCRIPT,
            served.server.url,
            served.tokens["partner"],
            str(labels),
        ],  # type: ignore[union-attr]
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert node.returncode == 0, node.stderr[-2000:]
    assert f"{job.id}:released" in node.stdout
    feedback = bank.result(job.id)
    assert feedback.payload and str(tokens[0]) not in str(feedback.payload)

    # 4. the auditor checks the whole story
    auditor = served.auditor
    assert auditor.verify_audit().ok
    released = {e["subject"] for e in auditor.audit_events() if e["action"] == "request.released"}
    assert {asked.id, job.id} <= released
