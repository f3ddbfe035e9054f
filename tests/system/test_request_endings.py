"""Every request ends: no error path leaves one non-terminal, and a crash is recovered.

Issue 20 §2 and issue 10: refusals are refusals (audited), never an exception; whatever
breaks in plan, check, run, release or the zone's own commit, the request ends ``refused``
(a policy said no) or ``failed`` (anything else, with a message that never repeats the
error's text, which may hold data). A zone that opens after a crash fails the requests a
dead process left half-way, and leaves alone what still waits for a person or a node.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select, update

from collabzone import workers
from collabzone.budget import PrivacyCost
from collabzone.errors import InvalidInputError, PolicyRefusal, Reason
from collabzone.lifecycle import FINAL
from collabzone.model import Request, RequestStatus
from collabzone.requests import CRASH_ENV
from collabzone.store import tables as t
from collabzone.techniques import registry
from collabzone.techniques.base import (
    FailedAfterSpending,
    Outcome,
    Plan,
    PlanContext,
    Rules,
    RunContext,
    Technique,
)
from collabzone.zone import Zone, connect, init
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers

SECRET = "SECRET-4711"
"""Text an exception carries (as if it quoted data); it must never reach a reason or event."""
SQL_DEEP = "SELECT COUNT(*) FROM customers WHERE " + "(" * 2000 + "spend > 1" + ")" * 2000


@pytest.fixture
def world(tmp_path: Path) -> Parties:
    """Bank owns ``customers`` shared with the partner for every zone-side technique; a
    short response quantum keeps the walk quick while still pacing every ending."""
    operator, _ = init(tmp_path / "zone", timing={"quantum": 0.01})
    tokens, handles = {}, {}
    for name, roles in (
        ("bank", ["provider", "analyst"]),
        ("partner", ["provider", "analyst"]),
        ("insurer", ["provider"]),
        ("auditor", ["auditor"]),
    ):
        _, tokens[name] = operator.add_party(name, roles)
        handles[name] = operator.as_party(tokens[name])
    parties = Parties(tmp_path / "zone", operator, handles["bank"], handles["partner"],
                      handles["insurer"], handles["auditor"], tokens)  # fmt: skip
    parties.bank.add_dataset("customers", write_customers(tmp_path / "c.csv", 300), CUSTOMER_SPEC)
    budget = {"epsilon_budget": 10.0, "delta_budget": 1e-3, "rho_budget": 1.0}
    for technique, rules in (
        ("dp_count", {**budget, "max_rho_per_request": 0.1}),
        ("sql", {**budget, "analysis": ["aggregation", "dp"], "min_group_size": 5}),
        ("overlap", {"min_group_size": 5}),
        ("deid", {}),
        ("validator", {}),
    ):
        parties.bank.add_agreement("customers", grantees=["partner"], technique=technique,
                                   purposes=["*"], rules=rules)  # fmt: skip
    return parties


def _ended(zone: Zone, request: Request | dict[str, Any]) -> Request:
    """The request, asserted terminal with its terminal audit event."""
    assert isinstance(request, Request)
    fresh = zone.request(request.id)
    assert fresh.status in FINAL, (fresh.status, fresh.reasons)
    events = [e for e in zone.audit_events() if e["subject"] == request.id]
    assert events[-1]["action"] == f"request.{fresh.status.value}"
    return fresh


BAD_SPECS: list[dict[str, Any]] = [
    {},
    {"bogus": 1},
    {"dataset": ["customers"]},
    {"dataset": "nope", "datasets": "nope"},
    {"dataset": "customers", "datasets": ["customers", 7], "epsilon": "1"},
    {"dataset": "customers", "epsilon": 5e-324},
    {"dataset": "customers", "rho": float("nan"), "epsilon": float("inf")},
    {"dataset": "customers", "sql": 5, "template": None},
    {"sql": SQL_DEEP},
    {"sql": "SELECT COUNT(*) AS _cz_x FROM customers"},
    {"sql": "SELECT COUNT(*) FROM customers", "epsilon": 5e-324},
    {"dataset": "customers", "predictions": {"tokens": "x"}, "task": "nonsense"},
    {"dataset": "customers", "config": {"k": -1}, "mock_rows": 10**9},
]


@pytest.mark.parametrize("technique", registry.names())
def test_bad_specs_of_every_technique_end_the_request(world: Parties, technique: str) -> None:
    for spec in BAD_SPECS:
        request = world.partner.submit(technique, spec, "walk")
        _ended(world.partner, request)
    assert world.auditor.verify_audit().ok


class Boom(Technique):
    """A test technique that raises the error its spec names at the step its spec names."""

    name = "boom"
    needs_agreement = False
    ERRORS: ClassVar[dict[str, Any]] = {
        "runtime": lambda: RuntimeError(SECRET),
        "recursion": lambda: RecursionError(SECRET),
        "key": lambda: KeyError(SECRET),
        "invalid": lambda: InvalidInputError("the spec is wrong: fix it"),
        "policy": lambda: PolicyRefusal(Reason("NO", "boom.rule", "the rule says no")),
        "spent": lambda: FailedAfterSpending(
            "the mechanism failed", {"customers": PrivacyCost(epsilon=0.25)}
        ),
    }

    def _maybe(self, step: str, spec: Mapping[str, Any]) -> None:
        if spec.get("where") == step:
            raise self.ERRORS[str(spec["error"])]()

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        self._maybe("plan", spec)
        return Plan(technique=self.name, datasets=(), details={"spec": dict(spec)})

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Any]:
        self._maybe("check", plan.details["spec"])
        return []

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        self._maybe("run", plan.details["spec"])
        if plan.details["spec"].get("where") == "commit":  # the zone's own release step
            return Outcome(payload={"n": 1}, rows_suppressed="many")  # type: ignore[arg-type]
        return Outcome(payload={"n": 1})

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        self._maybe("release", plan.details["spec"])
        return outcome


class BoomJob(Boom):
    """The same, placed at the owner's node (here the requester's own)."""

    name = "boom_job"
    placement = "owner"

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        return Plan(
            technique=self.name,
            datasets=(),
            details={"spec": dict(spec)},
            placement="owner",
            node=ctx.requester.name,
        )


@pytest.fixture
def boom() -> Iterator[None]:
    registry.register("boom", Boom())
    registry.register("boom_job", BoomJob())
    yield
    registry._loaded.pop("boom", None)
    registry._loaded.pop("boom_job", None)


STEPS = ["plan", "check", "run", "release"]


@pytest.mark.parametrize("error", list(Boom.ERRORS))
@pytest.mark.parametrize("where", [*STEPS, "commit"])
def test_an_error_at_any_step_ends_the_request(
    world: Parties, boom: None, where: str, error: str
) -> None:
    request = world.partner.submit("boom", {"where": where, "error": error}, "walk")
    ended = _ended(world.partner, request)
    if where == "commit":
        assert ended.status is RequestStatus.FAILED
    elif error == "policy" or (error in ("invalid", "spent") and where in ("plan", "check")):
        assert ended.status is RequestStatus.REFUSED
    else:
        assert ended.status is RequestStatus.FAILED
    trail = str(ended.reasons) + str(world.auditor.audit_events())
    assert SECRET not in trail


def test_failure_after_spending_is_charged(world: Parties, boom: None) -> None:
    request = world.partner.submit("boom", {"where": "run", "error": "spent"}, "walk")
    ended = _ended(world.partner, request)
    assert ended.status is RequestStatus.FAILED
    [row] = [b for b in world.partner.budget() if b["dataset"] == "customers"]
    assert row["spent"]["epsilon"] == 0.25
    [event] = [e for e in world.auditor.audit_events() if e["subject"] == ended.id][-1:]
    assert event["details"]["charged"] == {"customers": PrivacyCost(epsilon=0.25).as_dict()}


@pytest.mark.parametrize(
    "result",
    [
        {"payload": {"n": 1}, "spent": {"customers": {"bogus": 1.0}}},
        {"payload": {"_refused": [1, 2]}},
        {"payload": {"n": 1}, "spent": {"customers": {"epsilon": -1.0}}},
        {"payload": {"n": 1}, "rows_suppressed": "many"},
    ],
)
def test_a_malformed_node_result_ends_the_job(
    world: Parties, boom: None, result: dict[str, Any]
) -> None:
    request = world.partner.submit("boom_job", {}, "walk")
    assert isinstance(request, Request) and request.status is RequestStatus.APPROVED
    finished = world.partner.complete_job(request.id, **result)
    assert _ended(world.partner, finished).status is RequestStatus.FAILED
    assert world.partner.budget() == []


def test_a_job_raising_in_release_ends_failed(world: Parties, boom: None) -> None:
    request = world.partner.submit("boom_job", {"where": "release", "error": "runtime"}, "walk")
    assert isinstance(request, Request)
    finished = world.partner.complete_job(request.id, {"n": 1})
    assert _ended(world.partner, finished).status is RequestStatus.FAILED
    assert SECRET not in str(world.auditor.audit_events())


def test_an_approved_request_that_breaks_ends_failed(
    world: Parties, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.bank.add_agreement("customers", grantees=["partner"], technique="dp_count",
                             purposes=["manual"], rules={"epsilon_budget": 1.0},
                             approval="manual")  # fmt: skip
    from collabzone.techniques.dp_count import DPCount

    def broken(self: DPCount, plan: Plan, ctx: RunContext) -> Outcome:
        raise ZeroDivisionError(SECRET)

    monkeypatch.setattr(DPCount, "run", broken)
    request = world.partner.submit("dp_count", {"dataset": "customers", "epsilon": 0.5}, "manual")
    assert isinstance(request, Request) and request.status is RequestStatus.AWAITING_APPROVAL
    approved = world.bank.approve(request.id, "fine")
    assert _ended(world.partner, approved).status is RequestStatus.FAILED
    assert SECRET not in str(world.auditor.audit_events())


# -- DP: the limit derivation is charged even when the answer fails ------------------------


def test_failure_after_the_limit_derivation_charges_it(
    world: Parties, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the private derivation could depend on the derived limit, so its
    cost (10 % of epsilon) is debited with the failure; before, nothing was charged."""
    from collabzone.techniques.sql import _run_dp, _small_data

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(_run_dp, "release", broken)
    # the fixture's table is small: let the derivation run instead of the LIMITS_NEEDED refusal
    monkeypatch.setattr(_small_data, "MIN_DERIVATION_SIGNAL", 0.0)
    spec = {"sql": "SELECT region, COUNT(*) FROM customers GROUP BY region", "epsilon": 0.5}
    ended = _ended(world.partner, world.partner.submit("sql", spec, "walk"))
    assert ended.status is RequestStatus.FAILED
    [row] = world.partner.budget()
    assert row["spent"]["epsilon"] == pytest.approx(0.05)
    assert row["spent"]["epsilon"] <= 0.05
    assert SECRET not in str(world.auditor.audit_events())


@pytest.mark.parametrize(
    "spec",
    [
        {"sql": "SELECT COUNT(*) FROM customers", "epsilon": 5e-324},
        {"sql": "SELECT COUNT(*) FROM customers", "rho": 1e-300},
        {"sql": "SELECT SUM(spend) FROM customers", "epsilon": 0.5, "bounds_rule": [-1e17, 1e17]},
    ],
)
def test_extreme_parameters_are_refused_before_anything_runs(
    world: Parties, spec: dict[str, Any]
) -> None:
    bounds = spec.pop("bounds_rule", None)
    if bounds is not None:
        world.bank.add_agreement("customers", grantees=["partner"], technique="sql",
                                 purposes=["bounds"], rules={"analysis": ["dp"],
                                 "epsilon_budget": 1.0, "bounds": {"spend": bounds}})  # fmt: skip
    request = world.partner.submit("sql", spec, "bounds" if bounds else "walk")
    ended = _ended(world.partner, request)
    assert ended.status is RequestStatus.REFUSED
    assert any("must be" in r or "BOUNDS_TOO_WIDE" in r for r in ended.reasons)
    actions = [e["action"] for e in world.auditor.audit_events() if e["subject"] == ended.id]
    assert "request.running" not in actions
    assert world.partner.budget() == []


def test_dp_count_parameters_only_tighten_the_agreement(world: Parties) -> None:
    ask = world.partner.submit
    over = _ended(world.partner, ask("dp_count", {"dataset": "customers", "rho": 0.2}, "x"))
    assert over.status is RequestStatus.REFUSED and "RHO_TOO_LARGE" in over.reasons[0]
    assert "max_rho_per_request" in over.reasons[0]
    both = _ended(world.partner, ask("dp_count", {"dataset": "customers", "rho": 0.05,
                                                  "epsilon": 0.1}, "x"))  # fmt: skip
    assert both.status is RequestStatus.REFUSED
    ok = _ended(world.partner, ask("dp_count", {"dataset": "customers", "rho": 0.05}, "x"))
    assert ok.status is RequestStatus.RELEASED
    assert world.partner.receipt(ok.id).budget_spent["customers"]["rho"] == 0.05


# -- crash recovery ------------------------------------------------------------------------------

CRASH_CHILD = """
import sys
from collabzone.zone import connect

zone = connect(sys.argv[1], sys.argv[2])
zone.submit("dp_count", {"dataset": "customers", "epsilon": 0.5}, purpose="crash")
"""


def _set(zone: Zone, request_id: str, **values: Any) -> None:
    with zone._engine.begin() as conn:
        conn.execute(update(t.requests).where(t.requests.c.id == request_id).values(**values))


def _debits(zone: Zone) -> list[Any]:
    with zone._engine.connect() as conn:
        return list(conn.execute(select(t.budget_debits)))


def test_a_zone_opening_after_a_crash_fails_what_the_dead_process_left(
    world: Parties, boom: None
) -> None:
    env = {**os.environ, CRASH_ENV: "after_run"}
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH_CHILD, str(world.root), world.tokens["partner"]],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, stderr[-2000:]
    [crashed] = world.partner.requests()
    assert crashed.status is RequestStatus.RUNNING  # what the crash leaves

    # what must survive the recovery: a person's and a node's wait, live and young workers
    world.bank.add_agreement("customers", grantees=["partner"], technique="dp_count",
                             purposes=["manual"], rules={"epsilon_budget": 1.0},
                             approval="manual")  # fmt: skip
    waiting = world.partner.submit("dp_count", {"dataset": "customers", "epsilon": 0.1}, "manual")
    job = world.partner.submit("boom_job", {}, "walk")
    live = world.partner.submit("boom_job", {}, "walk")
    elsewhere = world.partner.submit("boom_job", {}, "walk")
    stale = world.partner.submit("boom_job", {}, "walk")
    for request in (waiting, job, live, elsewhere, stale):
        assert isinstance(request, Request)
    old = (dt.datetime.now(dt.UTC) - workers.LEASE * 2).isoformat()
    _set(world.operator, live.id, status="running", worker=workers.current())  # type: ignore[union-attr]
    _set(world.operator, elsewhere.id, status="running", worker="other-host/x/1:42:7")  # type: ignore[union-attr]
    _set(world.operator, stale.id, status="running", worker="other-host/x/1:42:7", updated_at=old)  # type: ignore[union-attr]

    partner = connect(world.root, world.tokens["partner"])  # the zone opens again
    status = {r.id: r.status for r in partner.requests()}
    assert status[crashed.id] is RequestStatus.FAILED
    assert status[stale.id] is RequestStatus.FAILED  # type: ignore[union-attr]
    assert status[waiting.id] is RequestStatus.AWAITING_APPROVAL  # type: ignore[union-attr]
    assert status[job.id] is RequestStatus.APPROVED  # type: ignore[union-attr]
    assert status[live.id] is RequestStatus.RUNNING  # type: ignore[union-attr]
    assert status[elsewhere.id] is RequestStatus.RUNNING  # type: ignore[union-attr]

    # nothing released or charged, the failure is audited with the dead worker, chain intact
    assert _debits(world.operator) == []
    with pytest.raises(Exception, match="failed"):
        partner.result(crashed.id)
    [event] = [e for e in world.auditor.audit_events() if e["subject"] == crashed.id][-1:]
    assert event["action"] == "request.failed" and event["actor"] == "zone"
    assert event["details"]["recovered_from"] == "running"
    assert event["details"]["worker"].split(":")[1] == str(child.pid)
    assert world.auditor.verify_audit().ok
    again = connect(world.root, world.tokens["partner"])  # a second open changes nothing
    assert {r.id: r.status for r in again.requests()} == status
