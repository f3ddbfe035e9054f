"""END-TO-END, REAL FLOWER PROCESSES, THROUGH THE ZONE (slow: minutes on a loaded machine).

The analyst submits through the zone; each owner approves at its node; the zone's
background aggregator (as the server runs it) takes the job on the last approval and starts
its SuperLink over TLS with the zone's certificates; each owner's node agent pulls the job,
checks it against its owner's approved digest and the zone's signature, and starts its
SuperNode on 127.0.0.1 trusting only the zone's CA; the zone's
ServerApp runs SecAgg+ with client-side fixed clipping and server noise over UCI Adult
split non-IID by marital status; the zone audits the rounds, releases, debits and seals.
Shows: every result the strategy on the ServerApp received carries the same aggregated
vector (never an owner's update), that vector is the mean of the owners' clipped updates,
every round was scored on the analyst's evaluation data from the noised model the ServerApp
reported (the last one is the released model), and the model learnt.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from collabzone.model import RequestStatus
from collabzone.node import NodeAgent
from collabzone.techniques.federated import (
    _coordinator,
    _deploy,
    _federation,
    _models,
    _spec,
    _tls,
)
from collabzone.techniques.federated._worker import Aggregator, AggregatorConfig
from collabzone.zone import connect
from tests.conftest import Parties
from tests.federated.fl_support import (
    DATASET_SPEC,
    OWNERS,
    adult,
    centralised,
    client_data,
    split_non_iid,
    write_owner_files,
)
from tests.federated.zone_support import make_world

pytestmark = pytest.mark.timeout(900)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # Flower's protobuf gencode notice
def test_real_flower_secagg_dp_job_through_the_zone(sqlite_zone: Parties, tmp_path: Path) -> None:
    frame = adult(3000)
    paths = write_owner_files(split_non_iid(frame), tmp_path / "data")
    clip = 5.0
    lenient = {"max_epsilon": 1e6, "epsilon_budget": 1e6}  # tiny noise: exact comparisons
    world = make_world(sqlite_zone, {o: lenient for o in OWNERS}, approval="manual")
    evaluation = write_owner_files({"lab": adult(2500).tail(800)}, tmp_path / "lab")["lab"]
    world.analyst.add_dataset("adult_eval", evaluation, DATASET_SPEC)
    request = world.submit(
        rounds=2, learning_rate=1.0, evaluation="adult_eval",
        privacy={"clipping_norm": clip, "noise_multiplier": 0.01},
    )  # fmt: skip
    assert request.status is RequestStatus.AWAITING_APPROVAL, request.reasons
    agents = {
        o: NodeAgent(
            world.owner(o), {f"adult_{o}": paths[o]}, workdir=tmp_path / f"node-{o}",
            node_config={"update-log": str(tmp_path / f"{o}.jsonl")},
        )
        for o in OWNERS
    }  # fmt: skip
    certs = _tls.issue(tmp_path / "certs", ["localhost", "127.0.0.1"])
    port = _deploy.free_port()
    config = AggregatorConfig(host="127.0.0.1", port=port, certificates=certs.ca.parent,
                              poll=0.2, run_timeout=800)  # fmt: skip
    host = connect(sqlite_zone.root, host=True)
    aggregator = Aggregator(host, config, tmp_path / "zone-link").start()
    try:
        for owner, agent in agents.items():
            agent.superlink, agent.root_certificates = f"127.0.0.1:{port}", certs.ca
            agent.approve(request.id, f"{owner}: as agreed")  # the last one starts the job
        deadline = time.monotonic() + 800
        done = world.analyst.request(request.id)
        while done.status in (RequestStatus.APPROVED, RequestStatus.RUNNING):
            assert time.monotonic() < deadline
            for agent in agents.values():
                agent.run_once()  # joins once (a SuperNode), leaves when the job ended
            time.sleep(1.0)
            done = world.analyst.request(request.id)
    finally:
        aggregator.close()
        for agent in agents.values():
            agent.close()
    assert done.status is RequestStatus.RELEASED, done.reasons
    link = aggregator.last_link
    assert "--insecure" not in " ".join(map(str, link.deployment.processes[0].args))
    out = link.raw

    # Flower's SecAgg+ workflow hands the strategy one FitRes per client for backward
    # compatibility, but every one of them carries the same unmasked *sum*: the strategy
    # (and anything on the ServerApp) never holds an individual owner's update
    assert [r["results_received"] for r in out["server_received"]] == [3, 3]
    for record in out["server_received"]:
        vectors = np.array(record["vectors"])
        assert np.allclose(vectors, vectors[0])
    first = np.array(out["server_received"][0]["vectors"][0])
    updates = [
        _federation.clip(np.array(json.loads(line)["update"]), clip)
        for o in OWNERS
        for line in (tmp_path / f"{o}.jsonl").read_text().splitlines()[:1]
    ]
    assert len(updates) == 3
    # round 1 starts from zeros, so what each client sent is its clipped update
    np.testing.assert_allclose(first, np.mean(updates, axis=0), atol=1e-3)
    for update in updates:
        assert np.linalg.norm(first - update) > 0.1

    # the zone released two accounted rounds, audited each, debited every dataset, sealed
    release = world.analyst.result(request.id)
    payload = release.payload
    assert [r["round"] for r in payload["rounds"]] == [1, 2] and payload["stopped"] is None
    assert "server_received" not in payload
    assert sorted(release.receipt.budget_spent) == [f"adult_{o}" for o in sorted(OWNERS)]
    assert payload["model_dataset"] in {d.name for d in world.analyst.datasets()}
    events = [
        e for e in world.owner("insurer").audit_events() if e["subject"] == request.id
    ]  # fmt: skip
    rounds = [e["details"] for e in events if e["action"] == "job.federated.round"]
    assert [r["round"] for r in rounds] == [1, 2]  # audited live from the progress file
    # before round 1 the zone counted the SuperNodes online at its SuperLink
    joined = [e["details"]["connected"] for e in events if e["action"] == "job.federated.nodes"]
    assert joined and all(0 <= k <= 3 for k in joined), joined
    # every round was scored on the analyst's evaluation data as it ended (a live curve),
    # from the model the ServerApp reported after the noise: the released trajectory
    progress = (tmp_path / "zone-link" / request.id / "progress.jsonl").read_text(encoding="utf-8")
    reported = [json.loads(line) for line in progress.splitlines()]
    assert [r["round"] for r in reported] == [1, 2]
    assert reported[-1]["model"] == payload["model"]  # the last round's is the release
    assert reported[0]["model"] != reported[1]["model"]
    assert [m["round"] for m in payload["metrics"]] == [1, 2]
    assert [m["accuracy"] for m in payload["metrics"]] == [r["accuracy"] for r in rounds]
    eval_spec = _spec.from_json(world.analyst.request_plan(request.id)["details"]["spec"])
    domains = world.analyst.request_plan(request.id)["details"]["domains"]
    scored = _coordinator._evaluation(host, request.id, eval_spec, domains)
    assert scored is not None
    for record, metric in zip(reported, payload["metrics"], strict=True):
        model = [np.array(p) for p in record["model"]]
        assert metric["loss"] == pytest.approx(_models.log_loss(model, *scored))
        assert metric["accuracy"] == pytest.approx(_models.accuracy(model, *scored))
    # the model learnt as much as the in-process loop's two rounds
    spec = _spec.from_json(world.analyst.request_plan(request.id)["details"]["spec"])
    params = [np.array(p) for p in payload["model"]]
    x, y = centralised(frame)
    replay = _federation.train(spec, client_data(split_non_iid(frame)), float("inf")).params
    start = _models.init_params("logreg", x.shape[1])
    assert _models.log_loss(params, x, y) < _models.log_loss(start, x, y) - 0.05
    assert _models.log_loss(params, x, y) == pytest.approx(_models.log_loss(replay, x, y), abs=0.03)
