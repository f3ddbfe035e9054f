"""Helpers of the validator tests: an owner with private labels, an ML party, a node."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collabzone.model import Request
from collabzone.node import NodeAgent
from collabzone.techniques.validator import Submission, submission_spec
from collabzone.zone import Zone
from tests.conftest import Parties

SHARED_KEY = b"shared-by-ml-party-and-owner-only"
LABEL_SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "income", "type": "string", "class": "label", "domain": [">50K", "<=50K"]},
    ]
}
REGRESSION_SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "spend", "type": "float", "class": "label", "domain": {"min": 0, "max": 100}},
    ]
}


def token(record_id: str) -> str:
    """The keyed token of a record ID (HMAC-SHA256 under the ML party/owner key)."""
    return hmac.new(SHARED_KEY, record_id.encode(), hashlib.sha256).hexdigest()


@dataclass
class World:
    """An owner (partner) holding labels at its node, an ML party (bank), the truth."""

    parties: Parties
    labels_path: Path
    tokens: list[str]
    truth: np.ndarray  # 1 = positive
    scores: np.ndarray  # a decent model's scores
    node: NodeAgent

    @property
    def ml(self) -> Zone:
        return self.parties.bank

    @property
    def owner(self) -> Zone:
        return self.parties.partner

    def submit(
        self,
        indices: Any,
        *,
        groups: Any = None,
        scores: Any = None,
        by: Zone | None = None,
        **options: Any,
    ) -> Request:
        """Submit predictions for the records at ``indices`` (as the ML party, or ``by``)."""
        index = np.asarray(indices)
        use = self.scores if scores is None else np.asarray(scores)
        submission = Submission(
            tuple(self.tokens[i] for i in index),
            tuple(float(use[i]) for i in index),
            tuple(str(g) for g in groups) if groups is not None else None,
        )
        spec = submission_spec("labels", submission, positive_label=">50K", **options)
        request = (by or self.ml).submit("validator", spec, "model validation")
        assert isinstance(request, Request)
        return request

    def validate(self, indices: Any, **kwargs: Any) -> Request:
        """Submit, let the node run the job, and return the final request."""
        request = self.submit(indices, **kwargs)
        if request.status.value == "approved":
            self.node.run_once()
        return (kwargs.get("by") or self.ml).request(request.id)


def write_labels(path: Path, n: int, seed: int = 7) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.3).astype(int)
    # a model that is right most of the time: scores lean towards the truth
    scores = np.clip(0.3 * truth + 0.35 + rng.normal(0, 0.2, n), 0, 1).round(4)
    ids = [f"person-{i}" for i in range(n)]
    tokens = [token(i) for i in ids]
    lines = ["token,income"] + [
        f"{t},{'>50K' if y else '<=50K'}" for t, y in zip(tokens, truth, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tokens, truth, scores


def make_world(
    parties: Parties,
    tmp: Path,
    rules: Mapping[str, Any] | None = None,
    n: int = 600,
    *,
    exact_rules: bool = False,
    grantees: tuple[str, ...] = ("bank",),
) -> World:
    """An owner's labelled dataset and validator agreement. The agreement's rules are the
    tests' usual ones updated by ``rules``, or exactly ``rules`` with ``exact_rules``
    (``{}``: an owner who accepts every default)."""
    path = tmp / "owner_labels.csv"
    tokens, truth, scores = write_labels(path, n)
    parties.partner.register_dataset("labels", LABEL_SPEC, row_count=n)
    base: dict[str, Any] = (
        {} if exact_rules else {"min_records": 50, "min_group_size": 20, "precision": 4}
    )
    base.update(rules or {})
    parties.partner.add_agreement(
        "labels",
        grantees=list(grantees),
        technique="validator",
        purposes=["model validation"],
        rules=base,
    )
    node = NodeAgent(parties.partner, {"labels": path}, seed=1)
    return World(parties, path, tokens, truth, scores, node)
