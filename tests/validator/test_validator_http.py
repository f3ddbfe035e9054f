"""The audit over HTTP: a node that talks to a served zone carries its audit states back.

The node reads its job's audited spaces with ``job_context`` and hands the new states back
with ``complete_job`` (base64 in JSON); the zone stores them in the release transaction
and accepts no space outside the job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from collabzone.client import RemoteZone
from collabzone.errors import NotAuthorisedError
from collabzone.model import Request, RequestStatus
from collabzone.node import NodeAgent
from collabzone.techniques.validator import Submission, submission_spec
from tests.server.conftest import make_parties, remote_handles, start_server
from tests.validator.validator_support import LABEL_SPEC, write_labels


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, RemoteZone]]:
    """A zone served over HTTP; one remote handle per party."""
    _, tokens = make_parties(tmp_path / "zone")
    server = start_server(tmp_path / "zone")
    handles = remote_handles(server, tokens)
    try:
        yield handles
    finally:
        for handle in handles.values():
            handle.close()
        server.stop()


def test_differencing_is_refused_over_http(served: dict[str, RemoteZone], tmp_path: Path) -> None:
    owner, ml = served["partner"], served["bank"]
    labels = tmp_path / "labels.csv"
    record_tokens, _truth, scores = write_labels(labels, 400)
    owner.register_dataset("labels", LABEL_SPEC, row_count=400)
    owner.add_agreement(
        "labels", grantees=["bank"], technique="validator", purposes=["v"], rules={}
    )
    node = NodeAgent(owner, {"labels": labels}, seed=1)

    def validate(count: int) -> Request:
        submission = Submission(
            tuple(record_tokens[:count]), tuple(float(s) for s in scores[:count])
        )
        spec = submission_spec("labels", submission, positive_label=">50K")
        request = ml.submit("validator", spec, "v")
        assert isinstance(request, Request)
        node.run_once()
        return ml.request(request.id)

    first = validate(300)
    assert first.status is RequestStatus.RELEASED, first.reasons
    confusion = ml.result(first.id).payload["overall"]["confusion"]
    assert confusion["tp"] % 5 == 0 and confusion["fn"] % 5 == 0
    probe = ml.submit(
        "validator",
        submission_spec(
            "labels",
            Submission(tuple(record_tokens[:301]), tuple(np.full(301, 0.5).tolist())),
            positive_label=">50K",
        ),
        "v",
    )
    assert isinstance(probe, Request)
    spaces = owner.job_context(probe.id)["audit"]
    assert set(spaces) == {"validator:labels:all", "validator:labels:requester:bank"}
    assert all(doc["version"] == 1 for doc in spaces.values())
    with pytest.raises(NotAuthorisedError):  # a node may not touch other audit spaces
        owner.complete_job(
            probe.id,
            {"overall": {}},
            audit_updates=[{"space": "entities:x:y:all", "base_version": 1, "state": ""}],
        )
    node.run_once()
    assert "DIFFERENCING" in " ".join(ml.request(probe.id).reasons)
