"""A federated job through the zone: submit, every owner approves at its node, the nodes
join the zone's aggregator (in-process path), the zone releases, debits and seals.

The adversarial tests: an owner who did not approve is never contacted (its node gets no
job and no spec, and nothing joins), and a node refuses a job whose spec differs from what
its owner approved (the zone's stored plan rewritten after the approval).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update

from collabzone.errors import InvalidInputError, NotAuthorisedError
from collabzone.model import Request, RequestStatus
from collabzone.node import NodeAgent
from collabzone.store import tables as t
from collabzone.techniques.federated import _coordinator
from collabzone.zone import connect
from tests.conftest import Parties
from tests.federated.fl_support import OWNERS
from tests.federated.zone_support import make_nodes, make_world, run_through, submit


def test_a_federated_job_runs_at_every_approving_node_and_is_released(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    for owner, agent in nodes.agents.items():
        agent.zone_key = nodes.host.job_signing_key()  # handed over by the operator
        assert agent.zone.jobs() == []  # nothing reaches a node before every owner approved
        agent.approve(request_id, f"{owner}: columns and epsilon as agreed")
    _coordinator.open_link(nodes.host, request_id)
    for agent in nodes.agents.values():
        assert [r.id for r in agent.zone.jobs()] == [request_id]
        agent.run_once()
        assert agent.joined == {request_id}
        assert agent.run_once() == []  # joined once, not again
    done = _coordinator.run(nodes.host, request_id)
    assert done.status is RequestStatus.RELEASED, done.reasons

    release = nodes.world.analyst.result(request_id)
    payload = release.payload
    assert [r["round"] for r in payload["rounds"]] == [1, 2, 3, 4]
    assert payload["clients"] == sorted(OWNERS)
    assert [m["round"] for m in payload["metrics"]] == [1, 2, 3, 4]
    assert all(0.0 <= m["accuracy"] <= 1.0 and m["loss"] > 0 for m in payload["metrics"])
    # every participating dataset is debited the epsilon of the rounds run, in the release
    spent = release.receipt.budget_spent
    assert sorted(spent) == [f"adult_{o}" for o in sorted(OWNERS)]
    assert {round(c["epsilon"], 9) for c in spent.values()} == {round(payload["epsilon"], 9)}
    assert payload["epsilon"] > 0
    # the model is sealed in the zone as a dataset of the analyst
    sealed = {d.name: d for d in nodes.world.analyst.datasets()}[payload["model_dataset"]]
    assert sealed.owner == "lab"
    n_params = sum(len(p) if isinstance(p, list) else 1 for p in payload["model"])
    assert sealed.row_count == n_params
    # one audit event per round: who took part, clipping, noise, epsilon so far
    events = [
        e
        for e in nodes.world.owner("bank").audit_events()
        if e["action"] == "job.federated.round" and e["subject"] == request_id
    ]
    assert [e["details"]["round"] for e in events] == [1, 2, 3, 4]
    assert all(e["details"]["clients"] == sorted(OWNERS) for e in events)
    assert all(e["details"]["noise_multiplier"] == 2.0 for e in events)
    assert all(e["details"]["clipping_norm"] == 1.0 for e in events)
    assert events[-1]["details"]["epsilon"] == pytest.approx(payload["epsilon"])
    assert not any("update" in e["details"] or "model" in e["details"] for e in events)


def test_an_owner_who_did_not_approve_is_never_contacted(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """Two owners approve, the insurer does not (yet, then denies): no node receives the
    job or its spec, the aggregator does not start, nobody joins."""
    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    nodes.agents["bank"].approve(request_id, "fine")
    nodes.agents["partner"].approve(request_id, "fine")
    for agent in nodes.agents.values():
        assert agent.run_once() == [] and agent.joined == set()
        with pytest.raises(NotAuthorisedError):  # no spec, no signature for any node
            agent.zone.job_context(request_id)
    with pytest.raises(InvalidInputError, match="every owner approved"):
        _coordinator.open_link(nodes.host, request_id)
    assert _coordinator.link_for(request_id) is None
    nodes.world.owner("insurer").deny(request_id, "not this quarter")
    for agent in nodes.agents.values():
        assert agent.run_once() == [] and agent.joined == set()
        with pytest.raises(NotAuthorisedError):
            agent.zone.job_context(request_id)
    request = nodes.world.analyst.request(request_id)
    assert request.status is RequestStatus.REFUSED
    with pytest.raises(InvalidInputError):
        _coordinator.open_link(nodes.host, request_id)


def test_a_party_outside_the_job_gets_nothing(sqlite_zone: Parties, tmp_path: Path) -> None:
    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    for owner, agent in nodes.agents.items():
        agent.approve(request_id, owner)
    outsider = nodes.world.analyst  # the analyst itself has a node-less handle: no job
    assert outsider.jobs() == []
    with pytest.raises(NotAuthorisedError):
        outsider.job_context(request_id)
    with pytest.raises(NotAuthorisedError, match="may only refuse"):
        nodes.world.owner("bank").complete_job(request_id, {"model": [[0.0]], "epsilon": 0.0})


def test_a_node_refuses_a_job_whose_spec_differs_from_what_its_owner_approved(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """Attack: after every owner approved 4 rounds on five columns, the stored plan is
    rewritten (a compromised zone database, or an analyst with write access to it) to 40
    rounds with marital status; the zone signs what it holds, the nodes compare with the
    digest their owners approved and refuse; nothing is released or charged."""
    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    for owner, agent in nodes.agents.items():
        agent.approve(request_id, owner)
    plan = nodes.world.analyst.request_plan(request_id)
    details = dict(plan["details"])
    spec = dict(details["spec"])
    spec.update(rounds=40, features=[*spec["features"], "marital_status"])
    from collabzone.techniques.federated._spec import from_json

    details.update(spec=spec, spec_sha256=from_json(spec).digest())
    with nodes.host._engine.begin() as conn:  # the tampering itself
        row = conn.execute(t.requests.select().where(t.requests.c.id == request_id)).first()
        assert row is not None
        conn.execute(
            update(t.requests)
            .where(t.requests.c.id == request_id)
            .values(plan={**dict(row.plan), "details": details})
        )
    context = nodes.agents["bank"].zone.job_context(request_id)
    assert context["plan"]["details"]["spec"]["rounds"] == 40  # the zone signs what it holds
    _coordinator.open_link(nodes.host, request_id)
    first = nodes.agents["bank"].run_once()
    assert first[0].status is RequestStatus.REFUSED
    assert "differs from the one its owner approved" in " ".join(first[0].reasons)
    link = _coordinator.link_for(request_id)
    assert link is not None and link.clients == {}  # the node never joined
    assert nodes.agents["partner"].run_once() == []  # the job is over for everyone
    request = nodes.world.analyst.request(request_id)
    assert request.status is RequestStatus.REFUSED
    assert nodes.world.analyst.datasets() and not any(
        d.name.startswith("fl_model_") for d in nodes.world.analyst.datasets()
    )


def test_a_node_refuses_a_job_its_owner_approved_only_by_agreement(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """An auto-approving agreement leaves no digest in the node's book: the node refuses."""
    world = make_world(sqlite_zone)
    request = world.submit()
    assert request.status is RequestStatus.APPROVED
    agent = NodeAgent(world.owner("bank"), {"adult_bank": tmp_path / "none.csv"})
    host = connect(sqlite_zone.root, host=True)
    _coordinator.open_link(host, request.id)
    done = agent.run_once()
    assert done[0].status is RequestStatus.REFUSED
    assert "did not approve this federated job at its node" in " ".join(done[0].reasons)


def test_fl_approve_records_the_digest_in_the_nodes_book(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from collabzone.cli import app

    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    book = tmp_path / "bank-book.json"
    base = ["--zone", str(sqlite_zone.root), "--token", sqlite_zone.tokens["bank"], "fl"]
    done = CliRunner().invoke(app, [*base, "approve", request_id, "--reason", "ok",
                                    "--book", str(book)])  # fmt: skip
    assert done.exit_code == 0, done.output
    digest = nodes.world.analyst.request_plan(request_id)["details"]["spec_sha256"]
    assert json.loads(book.read_text()) == {request_id: digest}
    assert digest in done.output and "awaiting_approval" in done.output


def test_a_node_pinning_the_zones_key_refuses_another_signer(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """Attack: someone other than the zone (another key) signs the job the node pulls."""
    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    for owner, agent in nodes.agents.items():
        agent.approve(request_id, owner)
    bank = nodes.agents["bank"]
    bank.zone_key = "11" * 32  # the key the owner pinned is not the one that signed
    _coordinator.open_link(nodes.host, request_id)
    done = bank.run_once()
    assert done[0].status is RequestStatus.REFUSED
    assert "other than the zone's pinned key" in " ".join(done[0].reasons)


def test_federated_analytics_run_at_the_nodes_through_the_zone(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """Counts and a histogram: each node adds its noise share and masks; one round; the
    release debits every dataset; no model, nothing sealed."""
    nodes = make_nodes(sqlite_zone, tmp_path)
    request = nodes.world.analyst.submit(
        "federated",
        {"task": "analytics", "datasets": [f"adult_{o}" for o in OWNERS],
         "queries": [{"kind": "count"}, {"kind": "histogram", "column": "sex"}],
         "privacy": {"noise_multiplier": 2.0, "delta": 1e-6}},
        "income model",
    )  # fmt: skip
    assert isinstance(request, Request)
    assert request.status is RequestStatus.AWAITING_APPROVAL, request.reasons
    done = run_through(nodes, request.id)
    assert done.status is RequestStatus.RELEASED, done.reasons
    release = nodes.world.analyst.result(request.id)
    count, sex = release.payload["results"]
    assert count["value"] == pytest.approx(1500, abs=20)  # the nodes' rows (std 2)
    assert set(sex["counts"]) == {"Female", "Male"}
    assert "model_dataset" not in release.payload
    spent = release.receipt.budget_spent
    assert sorted(spent) == [f"adult_{o}" for o in sorted(OWNERS)]
    assert {c["epsilon"] for c in spent.values()} == {release.payload["epsilon"]}
