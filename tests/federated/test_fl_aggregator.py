"""The zone's background aggregator: an approved federated job starts by itself once the
last owner approves, runs to its release; a job a crashed server left running is failed
and audited when the server comes back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from collabzone.errors import CollabzoneError
from collabzone.model import RequestStatus
from collabzone.techniques.federated import _coordinator
from collabzone.techniques.federated._worker import Aggregator, AggregatorConfig
from collabzone.zone import connect
from tests.conftest import Parties
from tests.federated.zone_support import make_nodes, submit
from tests.server.conftest import start_server


def _events(zone: object, request_id: str) -> list[dict[str, object]]:
    return [e for e in zone.audit_events() if e["subject"] == request_id]  # type: ignore[attr-defined]


def test_the_aggregator_starts_when_the_last_owner_approves(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    aggregator = Aggregator(
        nodes.host, AggregatorConfig(mode="local", poll=0.02, join_timeout=60), tmp_path / "agg"
    ).start()
    try:
        owners = list(nodes.agents.items())
        for owner, agent in owners[:-1]:
            agent.approve(request_id, f"{owner}: as agreed")
        time.sleep(0.3)  # many polls: two approvals of three start nothing
        assert _coordinator.link_for(request_id) is None
        assert nodes.world.analyst.request(request_id).status is RequestStatus.AWAITING_APPROVAL
        owner, agent = owners[-1]
        agent.approve(request_id, f"{owner}: as agreed")  # no operator step after this
        deadline = time.monotonic() + 60
        status = RequestStatus.APPROVED
        while time.monotonic() < deadline:
            for each in nodes.agents.values():
                each.run_once()  # each node agent joins the job once it sees it
            status = nodes.world.analyst.request(request_id).status
            if status in (RequestStatus.RELEASED, RequestStatus.FAILED, RequestStatus.REFUSED):
                break
            time.sleep(0.05)
    finally:
        aggregator.close()
    assert status is RequestStatus.RELEASED
    actions = [e["action"] for e in _events(nodes.world.analyst, request_id)]
    running = actions.index("request.running")
    assert actions.index("request.approved") < running < actions.index("job.federated.round")
    assert actions.count("job.federated.round") == 4 and actions[-1] == "request.released"


@pytest.mark.slow  # a server start (about 10 s at load 20)
def test_a_job_left_running_by_a_crashed_server_is_failed_and_audited(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """The server's aggregator takes the job (running, carried by the server's process);
    the server is killed; the zone opened again (a restarting server's first step,
    ``ServerState`` -> ``connect``) fails the job and says why in the log."""
    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    with (sqlite_zone.root / "zone.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[federated]\naggregator = "local"\npoll = 0.1\njoin_timeout = 600\n')
    server = start_server(sqlite_zone.root)
    try:
        for owner, agent in nodes.agents.items():
            agent.approve(request_id, f"{owner}: as agreed")
        deadline = time.monotonic() + 60
        while nodes.world.analyst.request(request_id).status is not RequestStatus.RUNNING:
            assert time.monotonic() < deadline, server.log.read_text()[-2000:]
            time.sleep(0.1)
        server.kill()  # a crash: nothing of the server runs its shutdown
        connect(sqlite_zone.root, host=True)  # what a restarting server does first
        done = nodes.world.analyst.request(request_id)
        assert done.status is RequestStatus.FAILED
        failed = [e for e in _events(nodes.world.analyst, request_id)
                  if e["action"] == "request.failed"]  # fmt: skip
        assert failed and failed[-1]["details"]["recovered_from"] == "running"  # type: ignore[index]
        with pytest.raises(CollabzoneError):
            nodes.world.analyst.result(request_id)  # nothing was released
    finally:
        server.stop()
