"""Issue 10 (privacy soundness) on governed SQL: the attacker's inputs from the report.

Each test sends what the report sent: an alias that hung the zone, nestings that blew the
stack, a DP GROUP BY that crashed OpenDP after spending budget on the limit derivation,
parameters outside what the mechanisms can carry, and a spec that loosened the agreement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from collabzone.errors import InvalidInputError, PolicyRefusal
from collabzone.techniques.sql._frontend import MAX_NESTING, QueryRejected
from tests.sql.sql_support import DP_RULES, FakeZone, bank_people, make_fake_zone

# -- crashes and hangs --------------------------------------------------------------------


@pytest.mark.timeout(30)  # the old alias renaming looped forever on this name
@pytest.mark.parametrize("alias", ["_cz_x", "_CZ_Q0", "_Cz_e0"])
def test_reserved_output_alias_is_refused_not_looped(fake_zone: FakeZone, alias: str) -> None:
    with pytest.raises(QueryRejected) as info:
        fake_zone.submit("analyst", {"sql": f"SELECT COUNT(*) AS {alias} FROM bank"})
    assert info.value.reason == "BAD_SHAPE"
    assert "_cz_" in str(info.value)


def test_output_names_differ_case_insensitively(fake_zone: FakeZone) -> None:
    """DuckDB resolves names without case: two outputs "n" and "N" would be one column."""
    payload = fake_zone.submit(
        "analyst", {"sql": "SELECT segment, COUNT(*) AS SEGMENT FROM bank GROUP BY segment"}
    )
    names = [name.lower() for name in payload["columns"]]
    assert len(set(names)) == len(names) == 2


DEEP = {
    "2000 parentheses": "SELECT COUNT(*) FROM bank WHERE " + "(" * 2000 + "age > 30" + ")" * 2000,
    "3000 NOT": "SELECT COUNT(*) FROM bank WHERE " + "NOT " * 3000 + "age > 30",
    "1500 OR terms": "SELECT COUNT(*) FROM bank WHERE "
    + " OR ".join(f"age = {18 + i % 80}" for i in range(1500)),
    "1500 AND terms": "SELECT COUNT(*) FROM bank WHERE "
    + " AND ".join(f"age<>{18 + i % 80}" for i in range(1500)),
    "unary minus chain": "SELECT COUNT(*) FROM bank WHERE age > " + "- " * 900 + "30",
    "NOT around parentheses": "SELECT COUNT(*) FROM bank WHERE "
    + "NOT (" * 700
    + "age > 30"
    + ")" * 700,
}


@pytest.mark.parametrize("sql", DEEP.values(), ids=DEEP.keys())
def test_deep_or_huge_conditions_are_refused_cleanly(fake_zone: FakeZone, sql: str) -> None:
    with pytest.raises(QueryRejected) as info:
        fake_zone.submit("analyst", {"sql": sql})
    assert info.value.reason == "TOO_COMPLEX"
    assert "IN (" in str(info.value)  # says what to change


def test_refusal_holds_when_the_stack_is_already_deep(fake_zone: FakeZone) -> None:
    """A server thread calls in with frames of its own: still a refusal, never a crash."""

    def nested(depth: int) -> Any:
        if depth:
            return nested(depth - 1)
        return fake_zone.submit("analyst", {"sql": DEEP["2000 parentheses"]})

    with pytest.raises(QueryRejected):
        nested(700)


WITHIN_LIMITS = {
    "nested parentheses": "(" * (MAX_NESTING - 2) + "age > 30" + ")" * (MAX_NESTING - 2),
    "40 OR terms": " OR ".join(f"age = {18 + i}" for i in range(40)),
    "double NOT": "NOT (NOT (age > 30))",
    "long IN list": "age IN (" + ", ".join(map(str, range(18, 99))) + ")",
}


@pytest.mark.parametrize("where", WITHIN_LIMITS.values(), ids=WITHIN_LIMITS.keys())
def test_queries_inside_the_limits_still_run(fake_zone: FakeZone, where: str) -> None:
    payload = fake_zone.submit(
        "analyst", {"sql": f"SELECT region, COUNT(*) FROM bank WHERE {where} GROUP BY region"}
    )
    assert payload["rows"]


# -- DP: partition selection with several rows per person, and what is spent -----------------


def _tripled(zone: FakeZone, people: int = 600) -> FakeZone:
    """Every person appears three times in bank (as in a transactions table)."""
    zone.tables["bank"] = pa.concat_tables([bank_people(people)] * 3)
    return zone


def test_dp_group_by_with_several_rows_per_person_releases() -> None:
    zone = make_fake_zone({**DP_RULES, "max_rows_per_entity": 3, "dp_delta": 1e-6}, DP_RULES)
    payload = _tripled(zone).submit(
        "analyst", {"sql": "SELECT age, COUNT(*) FROM bank GROUP BY age", "epsilon": 1.0}
    )
    assert payload["partition_selection"].startswith("private")
    threshold = int(payload["partition_selection"].split()[-1].rstrip(")"))
    assert threshold >= 3  # never below one person's rows in a group (l-infinity)
    assert payload["contribution_bounds"]["max_rows_per_entity"] == 3


class MechanismLog:
    """Every OpenDP measurement a request invokes on data, by the constructor that built it."""

    KINDS = (
        "make_laplace",
        "make_gaussian",
        "make_laplace_threshold",
        "make_gaussian_threshold",
        "make_private_quantile",
    )

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import opendp.measurements as measurements

        self.invoked: list[tuple[str, Any]] = []
        for kind in self.KINDS:
            monkeypatch.setattr(measurements, kind, self._wrap(kind, getattr(measurements, kind)))

    def _wrap(self, kind: str, make: Callable[..., Any]) -> Callable[..., Any]:
        log = self.invoked

        class Invoked:
            def __init__(self, meas: Any) -> None:
                self.meas = meas

            def __call__(self, arg: Any) -> Any:
                log.append((kind, self.meas))
                return self.meas(arg)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.meas, name)

        return lambda *args, **kwargs: Invoked(make(*args, **kwargs))

    def spent(self, rows: int, groups: int) -> tuple[Fraction, Fraction]:
        """The loss of every invoked measurement at the worst-case neighbouring input,
        computed here from the released contribution bounds (count queries: one person
        moves at most ``rows`` in each of ``groups`` groups; one profile row each)."""
        main, delta = Fraction(0), Fraction(0)
        for kind, meas in self.invoked:
            if kind == "make_private_quantile":
                d_in: Any = 1
            elif kind == "make_laplace":
                d_in = groups * rows
            elif kind == "make_gaussian":
                d_in = int(np.ceil(np.sqrt(groups) * rows))
            else:
                d_in = (groups, groups * rows, rows)
            loss = meas.map(d_in)
            if isinstance(loss, tuple):
                main += Fraction(loss[0])
                delta += Fraction(loss[1])
            else:
                main += Fraction(loss)
        return main, delta


CONFIGS = {
    "pure, private groups, derived limits": (
        {"analysis": ["dp"], "dp_delta": 1e-6}, "epsilon", "age", True),
    "zCDP, private groups, derived limits": (
        {"analysis": ["dp"], "dp_delta": 1e-6}, "rho", "age", True),
    "pure, public groups, derived limits": ({"analysis": ["dp"]}, "epsilon", "region", True),
    "pure, private groups, fixed limits": (
        {**DP_RULES, "max_rows_per_entity": 3, "max_groups_per_entity": 2, "dp_delta": 1e-7},
        "epsilon", "age", False),
}  # fmt: skip


@pytest.fixture
def mechanisms(monkeypatch: pytest.MonkeyPatch) -> Iterator[MechanismLog]:
    yield MechanismLog(monkeypatch)


@pytest.mark.parametrize(("rules", "kind", "by", "derived"), CONFIGS.values(), ids=CONFIGS.keys())
def test_every_mechanism_is_within_what_the_ledger_is_charged(
    mechanisms: MechanismLog, rules: dict[str, Any], kind: str, by: str, derived: bool
) -> None:
    """OpenDP's own privacy maps, at neighbouring inputs computed from the released bounds,
    sum to at most what the ledger is charged, the limit derivation included."""
    zone = _tripled(make_fake_zone(rules, rules), people=6000)  # groups pass the threshold
    amount = 0.7 if kind == "epsilon" else 0.3
    sql = f"SELECT {by}, COUNT(*) AS n, COUNT(age) AS m FROM bank GROUP BY {by}"
    payload, outcome = zone.submit_outcome("analyst", {"sql": sql, kind: amount})
    bounds = payload["contribution_bounds"]
    main, delta = mechanisms.spent(bounds["max_rows_per_entity"], bounds["max_groups_per_entity"])
    derivations = sum(k == "make_private_quantile" for k, _ in mechanisms.invoked)
    assert derivations == (2 if derived else 0)
    [(_, _, charged)] = zone.ledger
    assert charged == outcome.spent["bank"]
    assert main <= Fraction(getattr(charged, kind))
    assert delta <= Fraction(charged.delta)
    assert main > Fraction(getattr(charged, kind)) * Fraction(99, 100)  # nothing forgotten


# -- parameters the mechanisms cannot carry ---------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"epsilon": 5e-324},
        {"epsilon": 1e-9},
        {"epsilon": 1e6},
        {"rho": 1e-300},
        {"epsilon": 1.0, "delta": 5e-324},
        {"epsilon": 1.0, "alpha": 0},
        {"epsilon": 1.0, "alpha": 1.5},
        {"epsilon": 1.0, "alpha": "0.05"},
    ],
)
def test_out_of_range_parameters_are_refused_before_running(dp_zone: FakeZone, spec: dict[str, Any]) -> None:  # fmt: skip
    with pytest.raises(InvalidInputError) as info:
        dp_zone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank", **spec})
    assert "must be" in str(info.value)
    assert dp_zone.ledger == []


@pytest.mark.parametrize("low_high", [[-1e17, 1e17], [0, float("inf")], [10, -10]])
def test_unrepresentable_bounds_are_refused_before_running(low_high: list[float]) -> None:
    zone = make_fake_zone({**DP_RULES, "bounds": {"balance": low_high}}, DP_RULES)
    with pytest.raises(PolicyRefusal) as info:
        zone.submit("analyst", {"sql": "SELECT SUM(balance) FROM bank", "epsilon": 1.0})
    assert {r.code for r in info.value.reasons} <= {"BOUNDS_TOO_WIDE", "BAD_BOUNDS"}
    assert all(r.rule == "sql.bounds" for r in info.value.reasons)
    assert zone.ledger == []


def test_bounds_too_wide_only_with_open_limits() -> None:
    """The same bounds fit with one row per person but not with the derivable 100 x 100."""
    sql = "SELECT segment, SUM(balance) FROM bank GROUP BY segment"
    fixed = make_fake_zone({**DP_RULES, "bounds": {"balance": [0, 1e12]}}, DP_RULES)
    assert fixed.submit("analyst", {"sql": sql, "epsilon": 1.0})["rows"]
    open_limits = make_fake_zone({"analysis": ["dp"], "bounds": {"balance": [0, 1e12]}}, DP_RULES)
    with pytest.raises(PolicyRefusal) as info:
        open_limits.submit("analyst", {"sql": sql, "epsilon": 1.0})
    assert "max_rows_per_entity" in str(info.value)


# -- channel 8: a spec may only tighten the agreement ------------------------------------------


def test_spec_delta_above_the_agreement_is_refused() -> None:
    zone = make_fake_zone({**DP_RULES, "dp_delta": 1e-6}, DP_RULES)
    sql = "SELECT age, COUNT(*) FROM bank GROUP BY age"
    with pytest.raises(PolicyRefusal) as info:
        zone.submit("analyst", {"sql": sql, "epsilon": 1.0, "delta": 1e-3})
    [reason] = info.value.reasons
    assert (reason.code, reason.rule) == ("DELTA_TOO_HIGH", "sql.dp_delta")
    with pytest.raises(PolicyRefusal) as zero:
        zone.submit("analyst", {"sql": sql, "epsilon": 1.0, "delta": 0})
    assert [r.code for r in zero.value.reasons] == ["DELTA_REQUIRED"]
    assert zone.ledger == []


def test_spec_delta_below_the_agreement_tightens_it() -> None:
    zone = make_fake_zone({**DP_RULES, "dp_delta": 1e-6}, DP_RULES)
    sql = "SELECT age, COUNT(*) FROM bank GROUP BY age"
    loose, spent = zone.submit_outcome("analyst", {"sql": sql, "epsilon": 1.0})
    tight, spent_tight = zone.submit_outcome(
        "analyst", {"sql": sql + " ORDER BY age", "epsilon": 1.0, "delta": 1e-9}
    )
    assert spent.spent["bank"].delta == 1e-6
    assert spent_tight.spent["bank"].delta == 1e-9

    def threshold(payload: dict[str, Any]) -> int:
        return int(payload["partition_selection"].split()[-1].rstrip(")"))

    assert threshold(tight) > threshold(loose)


def test_spec_epsilon_and_rho_above_the_caps_are_refused() -> None:
    rules = {**DP_RULES, "max_epsilon_per_query": 0.5, "max_rho_per_query": 0.1}
    zone = make_fake_zone(rules, DP_RULES)
    for spec in ({"epsilon": 0.6}, {"rho": 0.2}):
        with pytest.raises(PolicyRefusal) as info:
            zone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank", **spec})
        assert {r.code for r in info.value.reasons} == {"EPSILON_TOO_HIGH"}
    assert zone.submit("analyst", {"sql": "SELECT COUNT(*) FROM bank", "rho": 0.1})["rows"]


@pytest.mark.timeout(60)  # the exact interval of a huge Gaussian scale took minutes
def test_smallest_rho_with_wide_bounds_answers_quickly() -> None:
    rules = {**DP_RULES, "bounds": {"balance": [0, 1e9]}}
    zone = make_fake_zone(rules, DP_RULES)
    payload = zone.submit("analyst", {"sql": "SELECT SUM(balance) AS s FROM bank", "rho": 1e-12})
    [[low, high]] = payload["confidence_intervals"]["s"]
    assert high - low > 1e12  # honest about the noise, not a crash or a hang
