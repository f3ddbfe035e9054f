"""The per-round curve of the real-Flower path, without starting Flower's processes.

The ServerApp's outermost strategy (``_flower._Reporting``) writes each round's global
model to the progress file *after* the DP noise (and FedAdam's step): never the mean the
inner FedAvg computed before the noise. The zone tails that file (``_deploy.ProgressTail``,
whole lines only) and ``_coordinator.run_flower`` scores every round's model on the
analyst's evaluation dataset, so the audit events, the progress document and the release's
``metrics`` carry one point per round; the last one is the released model's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collabzone.model import RequestStatus
from collabzone.techniques.federated import (
    _coordinator,
    _deploy,
    _models,
    _progress,
    _spec,
)
from tests.conftest import Parties
from tests.federated.zone_support import make_nodes, submit

# Flower's protobuf gencode notice on import: Flower is imported inside the tests, where
# this filter applies (at collection it would be an error)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _fit_results(vectors: list[list[float]]) -> list[tuple[Any, Any]]:
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

    return [
        (None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.array(v)]), 1, {}))
        for v in vectors
    ]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class _NoisyFake:
    """A stand-in for the strategy chain: what it returns is not what it received."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
        from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays

        received = [parameters_to_ndarrays(r.parameters)[0] for _, r in results]
        if server_round == 2:
            return None, {}  # a round that failed: nothing to report
        return ndarrays_to_parameters([np.mean(received, axis=0) + 100.0]), {"k": 1}

    def evaluate(self, server_round: int, parameters: Any) -> Any:
        self.calls.append(f"evaluate {server_round}")
        return None


def test_the_progress_line_is_what_the_strategy_chain_returns_not_what_it_received(
    tmp_path: Path,
) -> None:
    from flwr.common import parameters_to_ndarrays

    from collabzone.techniques.federated._flower import _Reporting

    progress = tmp_path / "progress.jsonl"
    fake = _NoisyFake()
    reporting = _Reporting(fake, progress)  # type: ignore[arg-type]
    parameters, metrics = reporting.aggregate_fit(1, _fit_results([[1.0, 2.0], [3.0, 4.0]]), [])
    assert parameters is not None and metrics == {"k": 1}
    assert reporting.aggregate_fit(2, _fit_results([[0.0, 0.0]]), []) == (None, {})
    assert reporting.evaluate(1, parameters) is None and fake.calls == ["evaluate 1"]
    assert _lines(progress) == [{"round": 1, "model": [[102.0, 103.0]]}]
    assert np.array_equal(parameters_to_ndarrays(parameters)[0], [102.0, 103.0])


@pytest.mark.parametrize("adam", [False, True])
def test_the_progress_file_holds_the_noised_model_never_the_pre_noise_mean(
    tmp_path: Path, adam: bool
) -> None:
    """The ServerApp's own chain: FedAvg (recording what reached it) under Flower's
    client-side fixed-clipping DP wrapper, then the zone's FedAdam step when asked."""
    from flwr.common import parameters_to_ndarrays
    from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping

    from collabzone.techniques.federated._flower import _NoisyThenAdam, _Recording, _Reporting

    received: list[dict[str, Any]] = []
    chain: Any = DifferentialPrivacyClientSideFixedClipping(_Recording(received), 1.0, 1.0, 3)
    if adam:
        chain = _NoisyThenAdam(chain, [np.zeros(4)])
    progress = tmp_path / "progress.jsonl"
    reporting = _Reporting(chain, progress)
    vectors = [[0.1, 0.2, 0.3, 0.4], [0.0, 0.1, 0.0, 0.1], [0.2, 0.0, 0.1, 0.0]]
    returned = []
    for r in (1, 2):
        parameters, _ = reporting.aggregate_fit(r, _fit_results(vectors), [])
        assert parameters is not None
        returned.append(parameters_to_ndarrays(parameters)[0])
    written = _lines(progress)
    assert [w["round"] for w in written] == [1, 2]
    pre_noise = np.mean(vectors, axis=0)
    assert received[0]["vectors"][0] == pytest.approx(vectors[0])  # kept for the SecAgg test
    for line, model in zip(written, returned, strict=True):
        assert np.array_equal(np.array(line["model"][0]), model)  # exactly what is released
        assert np.linalg.norm(np.array(line["model"][0]) - pre_noise) > 0.01  # noised
    assert "vectors" not in progress.read_text(encoding="utf-8")


def test_the_tail_reads_whole_lines_once(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    tail = _deploy.ProgressTail(path)
    assert tail.read() == []
    path.write_text('{"round": 1, "model": [[1.0]]}\n{"round": 2, "mo', encoding="utf-8")
    assert tail.read() == [{"round": 1, "model": [[1.0]]}]
    assert tail.read() == []  # the half-written line waits
    with path.open("a", encoding="utf-8") as fh:
        fh.write('del": [[2.0]]}\n')
    assert tail.read() == [{"round": 2, "model": [[2.0]]}]


def test_run_flower_scores_every_round_it_is_told_of_and_releases_the_last_model(
    sqlite_zone: Parties, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_app`` stubbed: it reports three rounds' noised models as the progress file
    would, then returns the result file; each round's audit event carries the score of
    its own model, and the release's ``metrics`` lists every round."""
    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes, rounds=3)
    for owner, agent in nodes.agents.items():
        agent.approve(request_id, f"{owner}: as agreed")
    plan = nodes.host.fanout_job(request_id)["plan"]["details"]
    rng = np.random.default_rng(3)
    spec = _spec.from_json(plan["spec"])
    evaluation = _coordinator._evaluation(nodes.host, request_id, spec, plan["domains"])
    assert evaluation is not None
    x, y = evaluation
    start = _models.init_params("logreg", x.shape[1])
    models = [[(a + rng.normal(0, 0.5 * r, a.shape)).tolist() for a in start] for r in (1, 2, 3)]
    seen: list[int] = []

    def now() -> dict[str, Any]:
        return _progress.progress(
            request_id, nodes.world.analyst.request(request_id).status.value,
            nodes.world.analyst.request_plan(request_id),
            nodes.world.analyst.audit_events(request_id),
        )  # fmt: skip

    def fake_run_app(
        deployment: Any, run_config: Any, timeout: float, on_round: Any, on_nodes: Any
    ) -> Any:
        assert "progress-path" not in run_config  # run_app adds it, not the zone
        on_nodes(2)  # the SuperLink lists two SuperNodes online: the job waits
        waiting = now()
        assert waiting["connected"] == 2 and waiting["round"] == 0
        assert "2 of 3 SuperNodes connected" in _progress.summary(waiting)
        assert ("SuperNodes connected", "2 of 3") in _progress.progress_view(waiting).facts
        on_nodes(3)
        for r, model in enumerate(models, start=1):
            on_round(r, model)
            seen.append(r)
        rounds = [{"round": r, "clients": 3, "epsilon": 0.1 * r} for r in (1, 2, 3)]
        return {"model": models[-1], "rounds": rounds, "epsilon": 0.3, "stopped": None,
                "server_received": []}  # fmt: skip

    monkeypatch.setattr(_deploy, "run_app", fake_run_app)
    link = _coordinator.FlowerLink(
        request_id, tuple(plan["nodes"]), _deploy.Deployment(tmp_path / "link"), "127.0.0.1:1"
    )
    done = _coordinator.run_flower(nodes.host, link)
    assert done.status is RequestStatus.RELEASED and seen == [1, 2, 3]
    expected = [_models.accuracy([np.asarray(a) for a in model], x, y) for model in models]
    assert len(set(expected)) > 1  # the rounds' models differ: the curve is not one point
    events = [
        e["details"]
        for e in nodes.world.owner("bank").audit_events()
        if e["action"] == "job.federated.round" and e["subject"] == request_id
    ]
    assert [e["round"] for e in events] == [1, 2, 3]  # once each, none added at the end
    assert [e["accuracy"] for e in events] == pytest.approx(expected)
    payload = nodes.world.analyst.result(request_id).payload
    assert [m["round"] for m in payload["metrics"]] == [1, 2, 3]
    assert [m["accuracy"] for m in payload["metrics"]] == pytest.approx(expected)
    released = [np.asarray(a) for a in payload["model"]]
    assert payload["metrics"][-1]["loss"] == pytest.approx(_models.log_loss(released, x, y))
    doc = now()
    assert [m["round"] for m in doc["metrics"]] == [1, 2, 3] and doc["connected"] == 3
