"""The zone plans, prices and checks federated jobs against each owner's agreement."""

from __future__ import annotations

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
