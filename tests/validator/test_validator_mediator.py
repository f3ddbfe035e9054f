"""Deployment 2: a mediator entrusted with tokenised labels validates sealed predictions.

The mediator never learns raw IDs (tokens are HMACs under a key it does not hold) and
stores only keyed digests; the owner never receives the predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collabzone.keys import LocalKeyring, new_master_key
from collabzone.model import Request, RequestStatus
from collabzone.node import NodeAgent
from collabzone.techniques.validator import Submission, node_public_key, submission_spec
from tests.conftest import Parties
from tests.validator.validator_support import LABEL_SPEC, write_labels


@pytest.fixture
def mediated(sqlite_zone: Parties, tmp_path: Path):  # type: ignore[no-untyped-def]
    _, mediator_token = sqlite_zone.operator.add_party("mediator", ["mediator"])
    mediator = sqlite_zone.operator.as_party(mediator_token)
    labels = tmp_path / "entrusted_labels.csv"  # the owner's tokenised labels, at the mediator
    tokens, _truth, scores = write_labels(labels, 600)
    keyring = LocalKeyring.create_new(tmp_path / "mediator-keys.json", new_master_key())
    node = NodeAgent(mediator, {"labels": labels}, keys=keyring, seed=3)
    public_key = node_public_key(node.derive_key)
    owner = sqlite_zone.partner
    owner.register_dataset("labels", LABEL_SPEC, row_count=600)
    owner.add_agreement(
        "labels",
        grantees=["bank"],
        technique="validator",
        purposes=["model validation"],
        rules={"min_records": 50, "node": "mediator", "node_public_key": public_key},
    )
    submission = Submission(tuple(tokens[:400]), tuple(float(s) for s in scores[:400]))
    return sqlite_zone, mediator, node, keyring, public_key, submission, tmp_path


def test_mediator_validates_sealed_predictions(mediated) -> None:  # type: ignore[no-untyped-def]
    zone, mediator, node, _keyring, public_key, submission, tmp_path = mediated
    spec = submission_spec(
        "labels", submission, public_key=public_key, positive_label=">50K", epsilon=None
    )
    spec.pop("epsilon")
    request = zone.bank.submit("validator", spec, "model validation")
    assert isinstance(request, Request) and request.runs_at == "owner:mediator"
    assert zone.partner.jobs() == []  # the owner's node never gets the job
    node.run_once()
    final = zone.bank.request(request.id)
    assert final.status is RequestStatus.RELEASED, final.reasons
    assert zone.bank.result(request.id).payload["overall"]["records"] == 400

    # the owner's side: request, audit events and receipt show no token and no prediction
    owner_view = json.dumps(
        [
            zone.partner.request(request.id).model_dump(mode="json"),
            zone.partner.audit_events(),
            zone.partner.result(request.id).model_dump(mode="json"),
        ]
    )
    assert not any(t in owner_view for t in submission.tokens[:50])
    assert not any(repr(p) in owner_view for p in submission.predictions[:50] if len(repr(p)) > 4)

    # the mediator's stored state and logs: no raw ID, no token in clear, no label
    mediator_view = json.dumps([mediator.audit_events(), mediator.job_context(request.id)])
    stored = mediator_view + (tmp_path / "mediator-keys.json").read_text()
    # a label is attributable only through a raw ID or a token; neither is stored in clear
    assert "person-" not in stored
    assert not any(t in stored for t in submission.tokens)
    assert mediator_view.count("<=50K") == 0  # label values appear only as the option name


def test_mediator_monitor_history_holds_digests_only(mediated) -> None:  # type: ignore[no-untyped-def]
    zone, mediator, node, _, public_key, submission, _ = mediated
    first = zone.bank.submit(
        "validator",
        submission_spec("labels", submission, public_key=public_key, positive_label=">50K"),
        "model validation",
    )
    node.run_once()
    assert zone.bank.request(first.id).status is RequestStatus.RELEASED
    # an attack through the mediator: the same set minus one record
    smaller = Submission(submission.tokens[1:], submission.predictions[1:])
    second = zone.bank.submit(
        "validator",
        submission_spec("labels", smaller, public_key=public_key, positive_label=">50K"),
        "model validation",
    )
    history = json.dumps(mediator.job_context(second.id)["history"])
    assert not any(t in history for t in submission.tokens) and "person-" not in history
    assert "<=50K" not in history
    node.run_once()
    refused = zone.bank.request(second.id)
    assert refused.status is RequestStatus.REFUSED and "DIFFERENCING" in " ".join(refused.reasons)


def test_mediator_without_a_sealing_key_is_refused(sqlite_zone: Parties, tmp_path: Path) -> None:
    sqlite_zone.operator.add_party("mediator", ["mediator"])
    write_labels(tmp_path / "l.csv", 100)
    sqlite_zone.partner.register_dataset("labels", LABEL_SPEC, row_count=100)
    sqlite_zone.partner.add_agreement(
        "labels",
        grantees=["bank"],
        technique="validator",
        purposes=["v"],
        rules={"min_records": 50, "node": "mediator"},
    )
    tokens, _, scores = write_labels(tmp_path / "l.csv", 100)
    spec = submission_spec("labels", Submission(tuple(tokens), tuple(map(float, scores))))
    request = sqlite_zone.bank.submit("validator", spec, "v")
    assert isinstance(request, Request) and request.status is RequestStatus.REFUSED
    assert "PREDICTIONS_EXPOSED" in " ".join(request.reasons)


def test_unsealed_predictions_are_refused_when_a_key_is_published(mediated) -> None:  # type: ignore[no-untyped-def]
    zone, _, _, _, _, submission, _ = mediated
    request = zone.bank.submit(
        "validator",
        submission_spec("labels", submission, positive_label=">50K"),
        "model validation",
    )
    assert isinstance(request, Request) and "NOT_SEALED" in " ".join(request.reasons)


def test_predictions_sealed_to_another_key_cannot_be_opened(mediated) -> None:  # type: ignore[no-untyped-def]
    zone, _, node, _, _, submission, _ = mediated
    from collabzone.techniques.validator import public_key_of

    wrong = public_key_of(b"\x01" * 32)
    spec = submission_spec("labels", submission, public_key=wrong, positive_label=">50K")
    request = zone.bank.submit("validator", spec, "model validation")
    node.run_once()
    final = zone.bank.request(request.id)
    assert final.status is RequestStatus.REFUSED and "cannot be opened" in " ".join(final.reasons)
