"""The attacker's side: combinations of answers and magnified scores aimed at one label.

Each test plays an ML party (or several colluding ones) that knows its own predictions and
which records it sent, and decodes one person's label from the released feedback. On the
validator before the atom audit these attacks recovered the label every time; now the
combination is refused (an atom of one person would be covered) or the magnifier carries
nothing beyond audited, rounded counts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collabzone.errors import InvalidInputError
from collabzone.model import Request, RequestStatus
from collabzone.node import NodeAgent
from collabzone.techniques.validator import Submission, submission_spec
from collabzone.zone import Zone
from tests.conftest import Parties
from tests.validator.validator_support import REGRESSION_SPEC, World, make_world, token

CLIP = 1e-6


def _released(world: World, request: Request, by: Zone | None = None) -> dict[str, Any] | None:
    if request.status is not RequestStatus.RELEASED:
        return None
    return dict((by or world.ml).result(request.id).payload)


def _positives(payload: dict[str, Any]) -> int:
    confusion = payload["overall"]["confusion"]
    return int(confusion["tp"] + confusion["fn"])


def _three_files(
    world: World, a: np.ndarray, b: np.ndarray, victim: int, *, middle: Zone | None = None,
    **options: Any,
) -> tuple[int | None, list[str]]:  # fmt: skip
    """S1 = A + {x}, S2 = A + B, S3 = B: x = positives(S1) + positives(S3) - positives(S2).

    Each pair differs in more than ``min_group_size`` records in every cell, so a pairwise
    monitor lets all three through. ``middle`` submits S2 (a colluding second ML party).
    """
    first = world.validate(np.r_[a, victim], **options)
    second = world.validate(np.r_[a, b], by=middle, **options)
    third = world.validate(b, **options)
    reasons = [*first.reasons, *second.reasons, *third.reasons]
    payloads = [_released(world, first), _released(world, second, middle), _released(world, third)]
    if any(p is None for p in payloads):
        return None, reasons
    s1, s2, s3 = (p for p in payloads if p is not None)
    return _positives(s1) + _positives(s3) - _positives(s2), reasons


def test_three_overlapping_files_do_not_recover_a_label(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """The issue's attack, with empty rules: four victims, four attempts."""
    world = make_world(sqlite_zone, tmp_path, {}, n=1000, exact_rules=True)
    recovered = refused = 0
    for attempt in range(4):
        start = attempt * 221
        a, b = np.arange(start, start + 110), np.arange(start + 110, start + 220)
        victim = start + 220
        guess, reasons = _three_files(world, a, b, victim, bands=1)
        recovered += guess == world.truth[victim]
        refused += any("DIFFERENCING" in r for r in reasons)
    assert recovered == 0
    assert refused == 4


def test_colluding_ml_parties_are_audited_together(sqlite_zone: Parties, tmp_path: Path) -> None:
    """S2 comes from a second ML party: the audit combines every analyst's releases."""
    _, secret = sqlite_zone.operator.add_party("ml2", ["analyst"])
    accomplice = sqlite_zone.operator.as_party(secret)
    world = make_world(sqlite_zone, tmp_path, {}, n=1000, exact_rules=True,
                       grantees=("bank", "ml2"))  # fmt: skip
    recovered = refused = 0
    for attempt in range(3):
        start = attempt * 301
        a, b = np.arange(start, start + 150), np.arange(start + 150, start + 300)
        guess, reasons = _three_files(world, a, b, start + 300, middle=accomplice)
        recovered += guess == world.truth[start + 300]
        refused += any("DIFFERENCING" in r for r in reasons)
    assert (recovered, refused) == (0, 3)


def test_an_agreement_may_narrow_the_audit_to_each_requester(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """With ``audit_scope: requester`` the owner accepts that two analysts may collude."""
    _, secret = sqlite_zone.operator.add_party("ml2", ["analyst"])
    accomplice = sqlite_zone.operator.as_party(secret)
    world = make_world(sqlite_zone, tmp_path, {"audit_scope": "requester"}, n=1000,
                       grantees=("bank", "ml2"))  # fmt: skip
    assert world.validate(range(300)).status is RequestStatus.RELEASED
    # the same records plus one, by another analyst: outside the bank's audited space
    other = world.validate(range(301), by=accomplice)
    assert other.status is RequestStatus.RELEASED, other.reasons
    # ... but the bank itself still cannot difference its own releases
    assert "DIFFERENCING" in " ".join(world.validate(range(299)).reasons)


def _victims(world: World, start: int, each: int = 3) -> list[int]:
    positive = [i for i in range(start, len(world.truth)) if world.truth[i] == 1][:each]
    negative = [i for i in range(start, len(world.truth)) if world.truth[i] == 0][:each]
    return positive + negative


def test_log_loss_cannot_magnify_one_record(sqlite_zone: Parties, tmp_path: Path) -> None:
    """One submission: the victim scored 0 (log loss weight -log(1e-6) = 13.8 if positive),
    everyone else at 0.5 or 0.4999 (weight log 2 whatever their label)."""
    world = make_world(sqlite_zone, tmp_path, {}, n=1000, exact_rules=True)
    victims = _victims(world, 700)
    guesses: list[int] = []
    payloads: list[dict[str, Any]] = []
    for attempt, victim in enumerate(victims):
        others = np.arange(attempt * 100, attempt * 100 + 100)
        scores = np.full(len(world.truth), 0.5)
        scores[others[:40]] = 0.4999  # the victim's predicted-negative part needs company
        scores[victim] = 0.0
        final = world.validate(np.r_[others, victim], scores=scores)
        assert final.status is RequestStatus.RELEASED, final.reasons
        payload = _released(world, final)
        assert payload is not None
        loss, n = payload["overall"]["log_loss"], payload["overall"]["records"]
        known = 60 * math.log(2) + 40 * -math.log(0.5)
        guesses.append(round((n * loss - known) / -math.log(CLIP)) if loss is not None else -1)
        payloads.append(payload)
    truth = [int(world.truth[v]) for v in victims]
    right = sum(g == t for g, t in zip(guesses, truth, strict=True))
    assert (right, len(set(guesses))) == (len(victims) // 2, 1), (right, guesses)
    for payload in payloads:  # what is released is computed from the audited bands alone
        loss = payload["overall"]["log_loss"]
        assert loss == pytest.approx(_band_metrics(payload)["log_loss"], abs=2e-3)


def _auc_if(label: int, tp: int, fn: int, top: int, low: int) -> float:
    """The exact AUC if the victim (alone at score 1.0) has ``label``; ``top`` others at
    0.5, ``low`` at 0.4999 (ties count one half)."""
    p_top, p_low = tp - label, fn
    positives = p_top + p_low + label
    negatives = top + low + 1 - positives
    right = (
        p_top * (low - p_low)
        + 0.5 * p_top * (top - p_top)
        + 0.5 * p_low * (low - p_low)
        + (negatives if label else 0)
    )
    return right / (positives * negatives)


def test_roc_auc_cannot_magnify_one_record(sqlite_zone: Parties, tmp_path: Path) -> None:
    """One submission: the victim alone at the top score; the rank sum says its label."""
    world = make_world(sqlite_zone, tmp_path, {}, n=1000, exact_rules=True)
    victims = _victims(world, 700)
    right = 0
    payloads: list[dict[str, Any]] = []
    for attempt, victim in enumerate(victims):
        others = np.arange(attempt * 100, attempt * 100 + 100)
        scores = np.full(len(world.truth), 0.5)
        scores[others[:40]] = 0.4999
        scores[victim] = 1.0
        final = world.validate(np.r_[others, victim], scores=scores)
        assert final.status is RequestStatus.RELEASED, final.reasons
        payload = _released(world, final)
        assert payload is not None
        auc = payload["overall"]["roc_auc"]
        confusion = payload["overall"]["confusion"]
        if auc is not None:
            distance = [abs(_auc_if(y, confusion["tp"], confusion["fn"], 60, 40) - auc)
                        for y in (0, 1)]  # fmt: skip
            right += int(np.argmin(distance)) == world.truth[victim]
        payloads.append(payload)
    assert right < len(victims)
    for payload in payloads:  # what is released is computed from the audited bands alone
        auc = payload["overall"]["roc_auc"]
        assert auc == pytest.approx(_band_metrics(payload)["roc_auc"], abs=2e-3)


def _band_metrics(payload: dict[str, Any]) -> dict[str, float]:
    """AUC and log loss recomputed by the attacker from the released calibration bands."""
    bands = payload["calibration"]
    sizes = np.array([b["records"] for b in bands], dtype=float)
    pos = np.round(np.array([b["observed_rate"] for b in bands]) * sizes)
    neg = sizes - pos
    means = np.clip(np.array([b["mean_score"] for b in bands]), CLIP, 1 - CLIP)
    above = np.cumsum(pos[::-1])[::-1] - pos
    pairs = float((neg * (above + 0.5 * pos)).sum())
    auc = pairs / (pos.sum() * neg.sum()) if pos.sum() * neg.sum() > 0 else float("nan")
    loss = float(-(pos * np.log(means) + neg * np.log(1 - means)).sum() / sizes.sum())
    return {"roc_auc": auc, "log_loss": loss}


def test_regression_errors_cannot_magnify_one_record(sqlite_zone: Parties, tmp_path: Path) -> None:
    """One exact regression submission with the victim predicted at 10^6: n * RMSE^2 is
    10^12 - 2 * 10^6 * y + (small), so y comes out to a fraction of a unit."""
    rng = np.random.default_rng(2)
    targets = rng.uniform(0, 100, 600).round(2)
    tokens = [token(f"r{i}") for i in range(600)]
    path = tmp_path / "spend.csv"
    path.write_text(
        "token,spend\n" + "".join(f"{t},{v}\n" for t, v in zip(tokens, targets, strict=True)),
        encoding="utf-8",
    )
    owner, ml = sqlite_zone.partner, sqlite_zone.bank
    owner.register_dataset("spend", REGRESSION_SPEC, row_count=600)
    owner.add_agreement("spend", grantees=["bank"], technique="validator", purposes=["v"])
    node = NodeAgent(owner, {"spend": path})
    recovered = 0
    for attempt, victim in enumerate((500, 501, 502)):
        others = list(range(attempt * 120, attempt * 120 + 120))
        values = [50.0] * len(others) + [1e6]
        submission = Submission(tuple(tokens[i] for i in [*others, victim]), tuple(values))
        request = ml.submit(
            "validator", submission_spec("spend", submission, task="regression"), "v"
        )
        assert isinstance(request, Request)
        node.run_once()
        final = ml.request(request.id)
        if final.status is not RequestStatus.RELEASED:
            assert "DP_REQUIRED" in " ".join(final.reasons)
            continue
        overall = ml.result(request.id).payload["overall"]
        n = overall["records"]
        rest = len(others) * 2500 / 3  # E[(50 - y)^2] for y uniform on [0, 100]
        guess = (1e12 - n * overall["rmse"] ** 2 + rest) / 2e6
        recovered += abs(guess - targets[victim]) < 0.5
    assert recovered == 0


def test_owners_cannot_lower_the_floors_by_accident(sqlite_zone: Parties) -> None:
    owner = sqlite_zone.partner
    owner.register_dataset("labels", {
        "columns": [
            {"name": "token", "type": "string", "class": "join_key"},
            {"name": "income", "type": "string", "class": "label"},
        ]
    }, row_count=10)  # fmt: skip
    for rule, value, floor in (("min_records", 1, "20"), ("min_group_size", 2, "10")):
        with pytest.raises(InvalidInputError, match=f"{rule}.*{floor}"):
            owner.add_agreement(
                "labels", grantees=["bank"], technique="validator", purposes=["v"],
                rules={rule: value},
            )  # fmt: skip


def test_empty_rules_release_no_exact_confusion_matrix(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    world = make_world(sqlite_zone, tmp_path, {}, n=1000, exact_rules=True)
    final = world.validate(range(437))
    assert final.status is RequestStatus.RELEASED, final.reasons
    payload = world.ml.result(final.id).payload
    receipt = world.ml.result(final.id).receipt
    counts = [payload["overall"]["confusion"][k] for k in ("tp", "fn")]
    counts += [round(b["observed_rate"] * b["records"]) for b in payload["calibration"]]
    assert all(c % 5 == 0 for c in counts), counts  # label counts rounded to fives
    assert sum(payload["overall"]["confusion"].values()) == 437  # sizes are the ML party's
    assert any("rounded" in note for note in receipt.notes)


def test_a_budget_makes_dp_the_default(sqlite_zone: Parties, tmp_path: Path) -> None:
    """The agreement grants a budget and the spec names no epsilon: DP at the default
    epsilon, charged; an exact, uncharged answer never leaves."""
    world = make_world(sqlite_zone, tmp_path, {"epsilon_budget": 1.0}, n=1000)
    final = world.validate(range(300))
    assert final.status is RequestStatus.RELEASED, final.reasons
    release = world.ml.result(final.id)
    assert release.receipt.budget_spent["labels"]["epsilon"] > 0
    assert "ci95" in release.payload["overall"]


def test_with_a_budget_the_combination_gets_only_charged_noise(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """Under DP the audit refuses nothing: each file is answered with fresh noise and pays
    for it (tests/validator/test_validator_dp.py measures how rarely the guess is right)."""
    world = make_world(sqlite_zone, tmp_path, {"epsilon_budget": 1.5}, n=1000, exact_rules=True)
    a, b = np.arange(0, 110), np.arange(110, 220)
    first = world.validate(np.r_[a, 220], bands=1)
    second = world.validate(np.r_[a, b], bands=1)
    third = world.validate(b, bands=1)
    receipts = [world.ml.result(r.id).receipt for r in (first, second, third)]
    assert all("OpenDP" in (r.mechanism or "") for r in receipts)
    assert sum(r.budget_spent["labels"]["epsilon"] for r in receipts) == pytest.approx(1.5)
    assert world.validate(np.arange(300, 420)).status is RequestStatus.REFUSED  # budget spent
