"""The node agent and the CLI: regression jobs, local files, failures, `validator serve`."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error

from collabzone.keys import LocalKeyring, new_master_key
from collabzone.model import Request, RequestStatus
from collabzone.node import NodeAgent
from collabzone.techniques.validator import Submission, submission_spec
from tests.conftest import Parties
from tests.validator.validator_support import REGRESSION_SPEC, make_world, token

with warnings.catch_warnings():
    # typer 0.20 touches a click attribute that click deprecates; not ours to fix
    warnings.simplefilter("ignore", DeprecationWarning)
    from typer.testing import CliRunner

    from collabzone.techniques.validator.cli import app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:typer.*")


def _regression(
    parties: Parties, tmp: Path, rules: dict[str, object]
) -> tuple[NodeAgent, list[str], np.ndarray]:
    rng = np.random.default_rng(2)
    targets = rng.uniform(0, 100, 300).round(2)
    tokens = [token(f"r{i}") for i in range(300)]
    path = tmp / "spend.csv"
    path.write_text(
        "token,spend\n" + "".join(f"{t},{v}\n" for t, v in zip(tokens, targets, strict=True)),
        encoding="utf-8",
    )
    parties.partner.register_dataset("spend", REGRESSION_SPEC, row_count=300)
    parties.partner.add_agreement(
        "spend",
        grantees=["bank"],
        technique="validator",
        purposes=["v"],
        rules={"min_records": 50, **rules},
    )
    return NodeAgent(parties.partner, {"spend": path}), tokens, targets


def test_regression_feedback_is_dp_only(sqlite_zone: Parties, tmp_path: Path) -> None:
    node, tokens, targets = _regression(
        sqlite_zone, tmp_path, {"error_bound": 50, "epsilon_budget": 2.0}
    )
    values = targets + np.random.default_rng(3).normal(0, 5, 300)
    submission = Submission(tuple(tokens[:200]), tuple(float(v) for v in values[:200]))
    exact = sqlite_zone.bank.submit(
        "validator", submission_spec("spend", submission, task="regression"), "v"
    )
    node.run_once()
    # the agreement grants a budget, so DP is the default: charged, with intervals
    release = sqlite_zone.bank.result(exact.id)  # type: ignore[union-attr]
    assert release.receipt.budget_spent["spend"]["epsilon"] == 0.5
    low, high = release.payload["overall"]["ci95"]["mae"]
    assert low <= release.payload["overall"]["mae"] <= high
    # Laplace noise on the clipped |error| sum: scale 8 x 50 / 200 = 2 on the MAE, so an
    # error above 25 has probability exp(-12.5) < 1e-5
    exact_mae = mean_absolute_error(targets[:200], values[:200])
    assert abs(release.payload["overall"]["mae"] - exact_mae) < 25
    other = Submission(tuple(tokens[200:]), tuple(float(v) for v in values[200:]))
    dp = sqlite_zone.bank.submit(
        "validator", submission_spec("spend", other, task="regression", epsilon=1.0), "v"
    )
    node.run_once()
    release = sqlite_zone.bank.result(dp.id)  # type: ignore[union-attr]
    assert release.receipt.budget_spent["spend"]["epsilon"] == 1.0


def test_exact_regression_is_refused(sqlite_zone: Parties, tmp_path: Path) -> None:
    """Without DP an MAE or RMSE of a chosen wild prediction would say one record's value."""
    _, tokens, targets = _regression(sqlite_zone, tmp_path, {"error_bound": 50})
    submission = Submission(tuple(tokens[:100]), tuple(float(v) for v in targets[:100]))
    request = sqlite_zone.bank.submit(
        "validator", submission_spec("spend", submission, task="regression"), "v"
    )
    assert isinstance(request, Request) and request.status is RequestStatus.REFUSED
    assert "DP_REQUIRED" in " ".join(request.reasons)


def test_dp_regression_needs_bounds(sqlite_zone: Parties, tmp_path: Path) -> None:
    _, tokens, targets = _regression(sqlite_zone, tmp_path, {"epsilon_budget": 2.0})
    submission = Submission(tuple(tokens[:100]), tuple(float(v) for v in targets[:100]))
    request = sqlite_zone.bank.submit(
        "validator", submission_spec("spend", submission, task="regression", epsilon=1.0), "v"
    )
    assert isinstance(request, Request) and "BOUNDS_MISSING" in " ".join(request.reasons)


def test_node_without_the_local_file_refuses_cleanly(sqlite_zone: Parties, tmp_path: Path) -> None:
    world = make_world(sqlite_zone, tmp_path)
    request = world.submit(range(100))
    NodeAgent(world.owner, {}).run_once()
    final = world.ml.request(request.id)
    assert final.status is RequestStatus.REFUSED and "no local file" in " ".join(final.reasons)


def test_only_the_jobs_node_reads_its_context(sqlite_zone: Parties, tmp_path: Path) -> None:
    from collabzone.errors import NotAuthorisedError

    world = make_world(sqlite_zone, tmp_path)
    request = world.submit(range(100))
    with pytest.raises(NotAuthorisedError):
        world.ml.job_context(request.id)  # the ML party cannot read the monitor history
    with pytest.raises(NotAuthorisedError):
        sqlite_zone.insurer.job_context(request.id)


def test_submit_and_serve_commands(sqlite_zone: Parties, tmp_path: Path) -> None:
    world = make_world(sqlite_zone, tmp_path)
    runner = CliRunner()
    predictions = tmp_path / "predictions.csv"
    predictions.write_text(
        "token,score\n" + "".join(f"{world.tokens[i]},{world.scores[i]}\n" for i in range(100)),
        encoding="utf-8",
    )
    submitted = runner.invoke(
        app,
        [
            "submit", "--zone", str(sqlite_zone.root), "--token", sqlite_zone.tokens["bank"],
            "--dataset", "labels", "--predictions", str(predictions),
            "--purpose", "model validation", "--positive-label", ">50K",
        ],
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    request_id, status = submitted.output.strip().split(": ")
    assert status == "approved"
    request = world.ml.request(request_id)
    keyring = tmp_path / "node-keys.json"
    result = runner.invoke(
        app,
        [
            "serve",
            "--zone",
            str(sqlite_zone.root),
            "--token",
            sqlite_zone.tokens["partner"],
            "--data",
            f"labels={world.labels_path}",
            "--keyring",
            str(keyring),
            "--once",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"{request.id}: released" in result.output
    key = runner.invoke(app, ["public-key", "--keyring", str(keyring)])
    assert key.exit_code == 0 and len(key.output.strip()) == 44
    bad = runner.invoke(
        app,
        [
            "serve",
            "--zone",
            str(sqlite_zone.root),
            "--token",
            sqlite_zone.tokens["partner"],
            "--data",
            "labels",
            "--keyring",
            str(keyring),
            "--once",
        ],
    )
    assert bad.exit_code == 2 and "NAME=PATH" in bad.output


def test_serve_polls_until_max_jobs(sqlite_zone: Parties, tmp_path: Path) -> None:
    world = make_world(sqlite_zone, tmp_path)
    first, second = world.submit(range(100)), world.submit(range(200, 300))
    assert world.node.serve(poll_seconds=0.01, max_jobs=2) == 2
    assert {world.ml.request(r.id).status for r in (first, second)} == {RequestStatus.RELEASED}
    with pytest.raises(Exception, match="poll_seconds"):
        world.node.serve(poll_seconds=0)


def test_missing_labels_are_left_out(sqlite_zone: Parties, tmp_path: Path) -> None:
    world = make_world(sqlite_zone, tmp_path)
    lines = world.labels_path.read_text(encoding="utf-8").splitlines()
    for i in range(1, 11):  # ten records have no label at the owner
        lines[i] = lines[i].split(",")[0] + ","
    world.labels_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    final = world.validate(range(200))
    assert final.status is RequestStatus.RELEASED, final.reasons
    assert world.ml.result(final.id).payload["records"] == 190


def test_adding_an_unlabelled_record_is_still_differencing(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    world = make_world(sqlite_zone, tmp_path)
    lines = world.labels_path.read_text(encoding="utf-8").splitlines()
    lines[301] = lines[301].split(",")[0] + ","  # record 300 has no label at the owner
    world.labels_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert world.validate(range(300)).status is RequestStatus.RELEASED
    probe = world.validate(range(301))  # would reveal whether record 300 is labelled
    assert probe.status is RequestStatus.REFUSED and "DIFFERENCING" in " ".join(probe.reasons)


def test_two_nodes_racing_on_one_space_cannot_both_release(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """Both jobs read the audit state before either released: the second to complete was
    audited against a stale space, so the zone refuses it instead of storing it."""
    world = make_world(sqlite_zone, tmp_path)
    first, second = world.submit(range(100)), world.submit(range(200, 300))
    stale = world.owner.job_context(second.id)

    class Stale:
        """The owner's zone, answering ``job_context`` of the second job from before."""

        def __getattr__(self, name: str) -> object:
            return getattr(world.owner, name)

        def job_context(self, request_id: str) -> dict[str, object]:
            return stale if request_id == second.id else world.owner.job_context(request_id)

    keys = LocalKeyring.create_new(tmp_path / "node-keys.json", new_master_key())
    world.node.keys = keys  # two processes of one node: the same node key
    world.node.run_job(first)
    racing = NodeAgent(Stale(), {"labels": world.labels_path}, keys=keys)  # type: ignore[arg-type]
    racing.run_job(second)
    assert world.ml.request(first.id).status is RequestStatus.RELEASED
    final = world.ml.request(second.id)
    assert final.status is RequestStatus.REFUSED
    assert "CONCURRENT_RELEASE" in " ".join(final.reasons)


def test_the_commands_honour_collabzone_zone_and_refuse_missing_files(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """Through the main `collabzone` app, like a user: COLLABZONE_ZONE names the zone (no
    --zone); a missing --data file is refused before anything is served."""
    from collabzone import cli

    world = make_world(sqlite_zone, tmp_path)
    runner = CliRunner()
    predictions = tmp_path / "predictions.csv"
    predictions.write_text(
        "token,score\n" + "".join(f"{world.tokens[i]},{world.scores[i]}\n" for i in range(100)),
        encoding="utf-8",
    )
    env = {"COLLABZONE_ZONE": str(sqlite_zone.root)}
    submitted = runner.invoke(
        cli.app,
        [
            "--token", sqlite_zone.tokens["bank"], "validator", "submit",
            "--dataset", "labels", "--predictions", str(predictions),
            "--purpose", "model validation", "--positive-label", ">50K",
        ],
        env=env,
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    request_id = submitted.output.strip().split(": ")[0]

    serve = ["--token", sqlite_zone.tokens["partner"], "validator", "serve", "--once",
             "--keyring", str(tmp_path / "node-keys.json")]  # fmt: skip
    missing = runner.invoke(cli.app, [*serve, "--data", "labels=no/such/labels.csv"], env=env)
    assert missing.exit_code == 2 and "no such file" in missing.output, missing.output
    assert world.ml.request(request_id).status is RequestStatus.APPROVED  # nothing ran

    served = runner.invoke(cli.app, [*serve, "--data", f"labels={world.labels_path}"], env=env)
    assert served.exit_code == 0, served.output
    assert f"{request_id}: released" in served.output

    refused = runner.invoke(
        cli.app,
        [
            "--token", sqlite_zone.tokens["bank"], "validator", "submit",
            "--dataset", "labels", "--predictions", str(predictions),
            "--purpose", "not an allowed purpose",
        ],
        env=env,
    )  # fmt: skip
    assert refused.exit_code == 7, refused.output
