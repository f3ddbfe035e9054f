"""Zone ``deid`` / ``mediate``: strict request specs, owner-approved references, the
classes of added columns, and the release recount."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from collabzone.errors import InvalidInputError, PolicyRefusal
from collabzone.model import ColumnClass
from collabzone.techniques.base import Outcome, Plan, Rules
from collabzone.techniques.deid import Deidentify, Mediate
from collabzone.techniques.deid._technique import strictest

from .conftest import FakeContext, make_agreement, make_dataset
from .independent import check_release, frame_of

CLASSES = {
    "customer": ColumnClass.JOIN_KEY,
    "age": ColumnClass.QUASI_IDENTIFIER,
    "income": ColumnClass.SENSITIVE,
    "disease": ColumnClass.SENSITIVE,
    "label": ColumnClass.LABEL,
}
DISEASES = ["flu", "cold", "hiv", "none"]


def _table(offset: int, n: int = 80) -> pa.Table:
    return pa.table(
        {
            "customer": [f"C{(i * 5 + offset) % 10}" for i in range(n)],
            "age": [20 + (i * 7 + offset) % 50 for i in range(n)],
            "born": [f"{1960 + (i * 3 + offset) % 40}-0{1 + i % 9}-15" for i in range(n)],
            "income": [1000.0 * ((i * 11 + offset) % 90) for i in range(n)],
            "disease": [DISEASES[(i + offset) % 4] for i in range(n)],
            "label": [i % 2 for i in range(n)],
        }
    )


REFERENCE = pa.table(
    {
        "customer": [f"C{i}" for i in range(10)],
        "segment": ["retail", "sme", "corporate", "retail", "sme"] * 2,
        "ssn": [f"S{i}" for i in range(10)],
    }
)


def _context(
    rules: dict[str, Any], technique: str = "deid", n: int = 1, ref_owner: str = "ml"
) -> FakeContext:
    tables = {}
    agreements = []
    for i in range(n):
        name, owner = f"ds{i}", f"owner{i}"
        table = _table(i * 1000)
        tables[name] = (make_dataset(name, owner, table, CLASSES), table)
        agreements.append(make_agreement(name, owner, technique, rules))
    ref_classes = {"customer": ColumnClass.JOIN_KEY, "ssn": ColumnClass.IDENTIFIER}
    tables["customers_ref"] = (
        make_dataset("customers_ref", ref_owner, REFERENCE, ref_classes),
        REFERENCE,
    )
    return FakeContext(tables, agreements)


def _rules(ctx: FakeContext, plan: Plan) -> Rules:
    by = {n: ctx.agreements_for(n)[0].rules for n in plan.datasets if ctx.agreements_for(n)}
    by.update({n: {} for n in plan.datasets if n not in by})
    return Rules(by_dataset=by, merged=strictest(by.values()))


ENRICH = {"column": "customer", "reference": "customers_ref", "columns": ["segment"]}
APPROVED = {"k": 4, "references": ["customers_ref"]}


def _codes(tech: Deidentify | Mediate, spec: dict[str, Any], ctx: FakeContext) -> set[str]:
    plan = tech.plan(spec, ctx)
    return {r.code for r in tech.check(plan, _rules(ctx, plan), ctx)}


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"dataset": "ds0", "kk": 5}, "unknown key 'kk' (allowed: quasi_identifiers"),
        ({"dataset": "ds0", "privacy": {"kk": 5}}, "privacy: unknown key 'kk'"),
        ({"dataset": "ds0", "prepare": {"scrub": ["age"]}}, "allowed: enrich, derive"),
        ({"dataset": "ds0", "prepare": {"enrich": [{**ENRICH, "keys": 1}]}}, "'keys'"),
        ({"dataset": "ds0", "suppression_limit": 2}, "suppression_limit"),
        ({"datasets": ["ds0"]}, "unknown key 'datasets'"),
        ({"dataset": "ds0", "prepare": {"enrich": [{**ENRICH, "reference": "ds0"}]}}, "both"),
    ],
)
def test_deid_request_spec_is_strict(spec: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Deidentify().plan(spec, _context(APPROVED))
    assert named in info.value.message


def test_deid_enriches_with_an_approved_reference_and_derives() -> None:
    ctx = _context(APPROVED)
    tech = Deidentify()
    spec = {
        "dataset": "ds0",
        "keep": ["label"],
        "prepare": {
            "enrich": [ENRICH],
            "derive": [{"column": "age", "kind": "age", "source": "born", "at": "2025-01-01"}],
        },
    }
    plan = tech.plan(spec, ctx)
    assert plan.datasets == ("ds0", "customers_ref")
    assert plan.columns["customers_ref"] == ("customer", "segment")
    rules = _rules(ctx, plan)
    assert tech.check(plan, rules, ctx) == []
    payload = tech.release(plan, tech.run(plan, ctx), rules).payload
    # the join key is read as the enrichment key and never released; age comes from born
    assert set(payload["columns"]) == {"age", "segment", "income", "disease", "label"}
    check_release(
        frame_of(payload["columns"], payload["rows"]),
        payload["report"],
        sensitive=["income", "disease"],
        keep=["label"],
        privacy={"k": 4},
    )


def test_a_reference_the_owner_did_not_approve_is_refused_naming_the_owner() -> None:
    ctx = _context({"k": 4}, technique="mediate", n=2)
    plan = Mediate().plan({"datasets": ["ds0", "ds1"], "prepare": {"enrich": [ENRICH]}}, ctx)
    reasons = Mediate().check(plan, _rules(ctx, plan), ctx)
    assert {(r.code, r.owner) for r in reasons} == {
        ("DEID_REFERENCE_NOT_APPROVED", "owner0"),
        ("DEID_REFERENCE_NOT_APPROVED", "owner1"),
    }
    with pytest.raises(PolicyRefusal, match="DEID_REFERENCE_NOT_APPROVED"):
        Mediate().run(plan, ctx)


@pytest.mark.parametrize(
    ("prepare", "code"),
    [
        ({"enrich": [{**ENRICH, "columns": ["ssn"]}]}, "IDENTIFIER_COLUMN"),
        ({"enrich": [{**ENRICH, "keep_key": True}]}, "IDENTIFIER_COLUMN"),
        ({"enrich": [{**ENRICH, "columns": ["nope"]}]}, "UNKNOWN_COLUMN"),
        (
            {"derive": [{"column": "c", "kind": "band", "source": "customer", "width": 1}]},
            "IDENTIFIER_COLUMN",
        ),
    ],
)
def test_identifiers_never_leave_not_even_through_a_step(
    prepare: dict[str, Any], code: str
) -> None:
    assert code in _codes(Deidentify(), {"dataset": "ds0", "prepare": prepare}, _context(APPROVED))


def test_requesters_cannot_downgrade_added_columns() -> None:
    band = {"column": "age_band", "kind": "band", "source": "age", "width": 10}
    ctx = _context(APPROVED)
    spec = {"dataset": "ds0", "prepare": {"derive": [band]}}
    assert _codes(Deidentify(), {**spec, "keep": ["age_band"]}, ctx) == {"DEID_KEEP_PROTECTED"}
    assert _codes(Deidentify(), {**spec, "sensitive": ["age_band"]}, ctx) == {"DEID_CLASS_CONFLICT"}
    assert _codes(Deidentify(), {**spec, "keep": ["age"]}, ctx) == {"DEID_CONSUMED_COLUMN"}
    assert _codes(Deidentify(), {"dataset": "ds0", "keep": ["age"]}, ctx) == {"DEID_KEEP_PROTECTED"}


def test_a_column_derived_from_a_sensitive_one_stays_sensitive() -> None:
    ctx = _context({**APPROVED, "l": 2})
    tech = Deidentify()
    band = {"column": "income_band", "kind": "band", "source": "income", "width": 20000}
    plan = tech.plan({"dataset": "ds0", "prepare": {"derive": [band]}}, ctx)
    payload = tech.run(plan, ctx).payload
    columns = payload["report"]["columns"]
    assert columns["sensitive"] == ["disease", "income_band"]
    assert "income_band" in payload["report"]["privacy"]["l_distinct"]
    check_release(
        frame_of(payload["columns"], payload["rows"]),
        payload["report"],
        sensitive=["disease", "income_band"],
        keep=[],
        privacy={"k": 4, "l": 2},
    )


def test_a_third_partys_reference_needs_its_owners_agreement_too() -> None:
    ctx = _context(APPROVED, ref_owner="registry")
    plan = Deidentify().plan({"dataset": "ds0", "prepare": {"enrich": [ENRICH]}}, ctx)
    # the policy layer checks every dataset of the plan: the reference is one of them
    assert "customers_ref" in plan.datasets


def _released(ctx: FakeContext, spec: dict[str, Any]) -> tuple[Deidentify, Plan, Outcome, Rules]:
    tech = Deidentify()
    plan = tech.plan(spec, ctx)
    return tech, plan, tech.run(plan, ctx), _rules(ctx, plan)


def test_release_recounts_the_rows_that_leave() -> None:
    tech, plan, outcome, rules = _released(_context(APPROVED), {"dataset": "ds0"})
    payload = dict(outcome.payload)
    # an engine bug that leaked a class of one row: the recount on the rows catches it
    lonely = list(payload["rows"][0])
    lonely[payload["columns"].index("age")] = "lonely"
    with pytest.raises(PolicyRefusal, match="DEID_K_NOT_MET"):
        tech.release(plan, Outcome({**payload, "rows": [*payload["rows"], lonely]}), rules)
    # a column the report does not account for
    extra = {**payload, "columns": [*payload["columns"], "x"]}
    extra["rows"] = [[*r, 1] for r in payload["rows"]]
    with pytest.raises(PolicyRefusal, match="DEID_UNACCOUNTED_COLUMN"):
        tech.release(plan, Outcome(extra), rules)


def test_release_recounts_l_for_every_variant() -> None:
    ctx = _context({**APPROVED, "l": 2, "l_variant": "entropy"})
    tech, plan, outcome, rules = _released(ctx, {"dataset": "ds0"})
    payload = dict(outcome.payload)
    at = payload["columns"].index("disease")
    same = [[*r[:at], "flu", *r[at + 1 :]] for r in payload["rows"]]
    with pytest.raises(PolicyRefusal, match="DEID_L_NOT_MET"):
        tech.release(plan, Outcome({**payload, "rows": same}), rules)
