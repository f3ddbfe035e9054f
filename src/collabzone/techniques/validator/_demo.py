"""One validation round for ``collabzone demo`` (the lead wires it into demo.py).

Not part of the technique: a scripted scene that drives a zone the way the two parties
would (owner registers labels kept at its node, signs an agreement, the ML party submits,
the owner's node answers, a differencing attempt gets only fresh, charged DP noise). Kept
here so the demo needs one call.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from collabzone.techniques.validator._submission import Submission, submission_spec

if TYPE_CHECKING:
    from collabzone.zone import Zone

DEMO_KEY = b"demo key shared by the ML party and the owner"


def demo_round(
    owner: Zone, analyst: Zone, workdir: str | Path, *, rows: int = 800, seed: int = 0
) -> dict[str, Any]:
    """Run one validation round and one differencing attempt.

    ``owner`` (a provider) keeps tokenised labels in ``workdir`` (its premises) and
    registers them as ``validator_labels``; ``analyst`` submits DP-scored predictions with
    two groups; the owner's :class:`~collabzone.node.NodeAgent` answers. Returns the
    released feedback, its receipt and what became of the attack, for printing.
    """
    from collabzone.model import Request
    from collabzone.node import NodeAgent

    rng = np.random.default_rng(seed)
    premises = Path(workdir) / "owner_premises"
    premises.mkdir(parents=True, exist_ok=True)
    tokens = [
        hmac.new(DEMO_KEY, f"customer-{i}".encode(), hashlib.sha256).hexdigest()[:32]
        for i in range(rows)
    ]
    truth = rng.random(rows) < 0.3
    scores = np.clip(0.35 * truth + 0.3 + rng.normal(0, 0.2, rows), 0, 1).round(4)
    groups = np.where(rng.random(rows) < 0.5, "online", "branch")
    labels = premises / "validator_labels.csv"
    labels.write_text(
        "token,churned\n"
        + "".join(f"{t},{'yes' if y else 'no'}\n" for t, y in zip(tokens, truth, strict=True)),
        encoding="utf-8",
    )
    owner.register_dataset(
        "validator_labels",
        {
            "columns": [
                {"name": "token", "type": "string", "class": "join_key"},
                {"name": "churned", "type": "string", "class": "label", "domain": ["yes", "no"]},
            ]
        },
        row_count=rows,
        description="churn labels kept at the owner's premises",
    )
    owner.add_agreement(
        "validator_labels",
        grantees=[analyst.me.name],
        technique="validator",
        purposes=["model validation"],
        rules={
            "min_records": 100,
            "min_group_size": 25,
            "dp_required": True,
            "epsilon_budget": 1.0,
        },
    )
    node = NodeAgent(owner, {"validator_labels": labels}, seed=seed)
    half = rows // 2

    def submit(count: int) -> Request:
        submission = Submission(
            tuple(tokens[:count]),
            tuple(float(s) for s in scores[:count]),
            tuple(str(g) for g in groups[:count]),
        )
        spec = submission_spec(
            "validator_labels", submission, positive_label="yes", epsilon=0.5, bins=10, bands=5
        )
        request = analyst.submit("validator", spec, "model validation")
        assert isinstance(request, Request)
        node.run_once()
        return analyst.request(request.id)

    released = submit(half)
    attack = submit(half + 1)  # the same records plus one: differencing
    result = analyst.result(released.id) if released.status.value == "released" else None
    reasons = list(attack.reasons)
    if attack.status.value == "released":  # DP: fresh noise, charged; nothing isolated
        spent = analyst.result(attack.id).receipt.budget_spent.get("validator_labels", {})
        reasons = [
            f"answered with fresh DP noise (epsilon {spent.get('epsilon')} charged): the "
            "difference of the two answers is noise, not the added record's label"
        ]
    return {
        "request_id": released.id,
        "status": released.status.value,
        "feedback": dict(result.payload) if result else {},
        "receipt": result.receipt.model_dump(mode="json") if result else {},
        "attack_status": attack.status.value,
        "attack_reasons": reasons,
    }
