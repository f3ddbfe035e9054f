"""The zone plans, prices and checks federated jobs against each owner's agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collabzone.model import Request, RequestStatus
from collabzone.techniques.federated._spec import from_json
from collabzone.techniques.federated._technique import projected_epsilon
from tests.conftest import Parties
from tests.federated.fl_support import FEATURES
from tests.federated.zone_support import make_world


def codes(request: Request) -> list[str]:
    """The refusal codes, one per reason (reasons read ``CODE: message [rule ...]``)."""
    return sorted({r.split(":", 1)[0] for r in request.reasons})


def test_an_allowed_job_is_priced_and_waits_for_the_owners_nodes(sqlite_zone: Parties) -> None:
    world = make_world(sqlite_zone)
    request = world.submit()
    assert request.status is RequestStatus.APPROVED, request.reasons
    plan = world.analyst.request_plan(request.id)
    epsilon = projected_epsilon(from_json(plan["details"]["spec"]))
    assert plan["details"]["projected_epsilon"] == pytest.approx(epsilon)
    # every owner's dataset is charged the job's client-level epsilon
    assert sorted(request.cost) == ["adult_bank", "adult_insurer", "adult_partner"]
    assert all(c["epsilon"] == pytest.approx(epsilon) for c in request.cost.values())
    assert 0 < epsilon < 10
    assert len(plan["details"]["spec_sha256"]) == 64


def test_a_column_not_granted_is_refused(sqlite_zone: Parties) -> None:
    """Attack: the analyst slips the owner's marital status into the features."""
    world = make_world(sqlite_zone)
    request = world.submit(features=[*FEATURES, "marital_status"])
    assert request.status is RequestStatus.REFUSED
    assert codes(request) == ["COLUMNS_NOT_GRANTED"]
    assert all("marital_status" in r for r in request.reasons)


def test_one_owner_granting_fewer_columns_refuses_the_job(sqlite_zone: Parties) -> None:
    world = make_world(sqlite_zone, {"insurer": {"columns": ["age", "income"]}})
    request = world.submit()
    assert request.status is RequestStatus.REFUSED
    assert len(request.reasons) == 1 and "owner insurer" in request.reasons[0]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"rounds": 50}, "TOO_MANY_ROUNDS"),
        ({"privacy": {"noise_multiplier": 0.3}}, "EPSILON_TOO_HIGH"),
        ({"secure_aggregation": False}, "SECURE_AGGREGATION_REQUIRED"),
        ({"min_clients": 2}, "TOO_FEW_CLIENTS"),
    ],
)
def test_agreement_rules_refuse(
    sqlite_zone: Parties, overrides: dict[str, object], code: str
) -> None:
    world = make_world(sqlite_zone)
    request = world.submit(**overrides)
    assert request.status is RequestStatus.REFUSED
    assert code in codes(request)


def test_a_model_family_outside_the_agreement_is_refused(sqlite_zone: Parties) -> None:
    world = make_world(sqlite_zone, {"partner": {"model_families": ["logreg"]}})
    assert world.submit(model="logreg").status is RequestStatus.APPROVED
    refused = world.submit(model="mlp")
    assert codes(refused) == ["MODEL_NOT_ALLOWED"]


def test_code_outside_the_allow_list_is_a_clear_error(sqlite_zone: Parties) -> None:
    world = make_world(sqlite_zone)
    request = world.submit(model="my_pickled_net")
    assert request.status is RequestStatus.REFUSED
    assert "`model` must be one of logreg, mlp" in request.reasons[0]


def test_fl_cli_submit_status_result(sqlite_zone: Parties, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from collabzone.cli import app

    world = make_world(sqlite_zone)
    spec = tmp_path / "job.json"
    spec.write_text(
        json.dumps({"datasets": ["adult_bank", "adult_partner", "adult_insurer"],
                    "features": FEATURES, "label": "income", "rounds": 5,
                    "privacy": {"noise_multiplier": 2.0}}),
        encoding="utf-8",
    )  # fmt: skip
    base = ["--zone", str(sqlite_zone.root), "--token", world.analyst_token, "fl"]
    runner = CliRunner()
    submitted = runner.invoke(app, [*base, "submit", str(spec), "--purpose", "income model"])
    assert submitted.exit_code == 0, submitted.output
    request_id = submitted.output.split(":")[0]
    assert "approved" in submitted.output and "adult_bank: epsilon" in submitted.output
    status = runner.invoke(app, [*base, "status", request_id])
    assert status.exit_code == 0 and "projected epsilon" in status.output
    result = runner.invoke(app, [*base, "result", request_id])
    assert result.exit_code != 0  # nothing released before the nodes ran it
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    refused = runner.invoke(app, [*base, "submit", str(bad), "--purpose", "income model"])
    assert refused.exit_code != 0 and "not a readable JSON job spec" in refused.output


def test_release_lets_out_the_model_only_and_charges_what_was_run(sqlite_zone: Parties) -> None:
    """Attack: a tampered result smuggles per-client updates out, or under-reports."""
    from collabzone.errors import InvalidInputError
    from collabzone.techniques.base import Outcome, Plan, Rules
    from collabzone.techniques.federated import Federated

    world = make_world(sqlite_zone)
    request = world.submit()
    doc = world.analyst.request_plan(request.id)
    plan = Plan(
        technique="federated",
        datasets=tuple(request.datasets),
        details=doc["details"],
        placement="owner",
    )
    technique, rules = Federated(), Rules({}, {})
    spent_eps = doc["details"]["projected_epsilon"] / 2  # the job stopped half-way
    ok = technique.release(plan, Outcome({"model": [[0.0]], "epsilon": spent_eps}), rules)
    assert {c.epsilon for c in ok.spent.values()} == {spent_eps}
    assert set(ok.spent) == set(plan.datasets)
    with pytest.raises(InvalidInputError, match="server_received"):
        technique.release(plan, Outcome({"model": [], "server_received": [[1.0]]}), rules)
    too_much = doc["details"]["projected_epsilon"] * 2
    with pytest.raises(InvalidInputError, match="more epsilon"):
        technique.release(plan, Outcome({"model": [], "epsilon": too_much}), rules)
