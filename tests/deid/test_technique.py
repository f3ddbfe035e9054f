"""Zone adapters ``deid`` and ``mediate`` against an in-memory context."""

from __future__ import annotations

import pyarrow as pa
import pytest

from collabzone.errors import InvalidInputError, PolicyRefusal
from collabzone.model import ColumnClass
from collabzone.techniques.base import Outcome, Rules
from collabzone.techniques.deid import Deidentify, Mediate
from collabzone.techniques.deid._technique import strictest

from .conftest import FakeContext, make_agreement, make_dataset

CLASSES = {
    "name": ColumnClass.IDENTIFIER,
    "label": ColumnClass.LABEL,
    "age": ColumnClass.QUASI_IDENTIFIER,
    "zip": ColumnClass.QUASI_IDENTIFIER,
    "disease": ColumnClass.SENSITIVE,
}


def _table(offset: int, n: int = 60) -> pa.Table:
    diseases = ["flu", "cold", "hiv", "none"]
    return pa.table(
        {
            "name": [f"person{i + offset}" for i in range(n)],
            "age": [20 + (i * 7 + offset) % 50 for i in range(n)],
            "zip": [str(81000 + (i * 13 + offset) % 40) for i in range(n)],
            "disease": [diseases[(i + offset) % 4] for i in range(n)],
            "label": [i % 2 for i in range(n)],
        }
    )


def _context(rules: dict[str, object], technique: str = "deid", n_datasets: int = 1) -> FakeContext:
    tables = {}
    agreements = []
    for i in range(n_datasets):
        name, owner = f"ds{i}", f"owner{i}"
        table = _table(i * 1000)
        tables[name] = (make_dataset(name, owner, table, CLASSES), table)
        agreements.append(make_agreement(name, owner, technique, rules))
    return FakeContext(tables, agreements)


SPEC = {"dataset": "ds0", "quasi_identifiers": {"zip": {"masking": True}}, "suppression_limit": 0.5}


def _rules(ctx: FakeContext, names: list[str], technique: str) -> Rules:
    by = {n: ctx.agreements_for(n)[0].rules for n in names}
    return Rules(by_dataset=by, merged=strictest(by.values()))


def test_deid_releases_rows_at_the_agreements_model_never_weaker() -> None:
    ctx = _context({"k": 5, "l": 2, "suppression_limit": 0.1})
    tech = Deidentify()
    plan = tech.plan({**SPEC, "privacy": {"k": 2}}, ctx)
    assert tech.check(plan, _rules(ctx, ["ds0"], "deid"), ctx) == []
    outcome = tech.release(plan, tech.run(plan, ctx), _rules(ctx, ["ds0"], "deid"))
    payload = outcome.payload
    assert "name" not in payload["columns"]  # identifiers never leave
    assert set(payload["columns"]) == {"zip", "age", "disease"}
    report = payload["report"]
    assert report["min_class_size"] >= 5  # the agreement's k, not the request's 2
    assert report["privacy"]["l_distinct"]["disease"] >= 2
    assert report["suppressed_rows"] <= 6  # the agreement's 10 %, not the request's 50 %
    assert len(payload["rows"]) == 60 - report["suppressed_rows"]
    assert ctx.read == ["ds0"]


def test_deid_refuses_identifiers_and_agreements_without_k() -> None:
    ctx = _context({"l": 2})
    tech = Deidentify()
    plan = tech.plan({"dataset": "ds0", "quasi_identifiers": ["name"]}, ctx)
    codes = {r.code for r in tech.check(plan, _rules(ctx, ["ds0"], "deid"), ctx)}
    assert codes == {"DEID_NO_K", "IDENTIFIER_COLUMN"}
    with pytest.raises(PolicyRefusal):
        tech.run(plan, ctx)
    with pytest.raises(InvalidInputError, match="dataset"):
        tech.plan({}, ctx)


def test_release_blocks_an_outcome_that_misses_the_rules() -> None:
    ctx = _context({"k": 5})
    tech = Deidentify()
    plan = tech.plan(SPEC, ctx)
    outcome = tech.run(plan, ctx)
    forged = dict(outcome.payload)
    forged["report"] = {**outcome.payload["report"], "privacy": {"k": 2}}
    with pytest.raises(PolicyRefusal, match="DEID_K_NOT_MET"):
        tech.release(plan, Outcome(forged), Rules(by_dataset={}, merged={"k": 5}))


def test_unknown_hierarchy_value_is_redacted_for_the_requester() -> None:
    ctx = _context({"k": 2, "hierarchies": {"zip": {"rows": [["81000", "*"]]}}})
    tech = Deidentify()
    plan = tech.plan(SPEC, ctx)
    with pytest.raises(InvalidInputError) as info:
        tech.run(plan, ctx)
    assert "zip" in info.value.message and "8100" not in info.value.message


def test_mediate_merges_providers_without_provenance() -> None:
    ctx = _context({"k": 4, "l": 2}, technique="mediate", n_datasets=3)
    tech = Mediate()
    plan = tech.plan(
        {"datasets": ["ds0", "ds1", "ds2"], "quasi_identifiers": {"zip": {"masking": True}}}, ctx
    )
    assert tech.check(plan, _rules(ctx, ["ds0", "ds1", "ds2"], "mediate"), ctx) == []
    outcome = tech.release(plan, tech.run(plan, ctx), _rules(ctx, ["ds0", "ds1", "ds2"], "mediate"))
    payload = outcome.payload
    assert set(payload["columns"]) == {"zip", "age", "disease"}
    assert payload["report"]["min_class_size"] >= 4
    assert payload["rows"] == sorted(payload["rows"])  # order is a function of the values only
    assert sorted(ctx.read) == ["ds0", "ds1", "ds2"]


def test_strictest_merge() -> None:
    merged = strictest([{"k": 5, "t": 0.3, "suppression_limit": 0.1}, {"k": 10, "t": 0.2, "l": 3}])
    assert merged == {"k": 10, "t": 0.2, "suppression_limit": 0.1, "l": 3}
    with pytest.raises(InvalidInputError, match="disagree"):
        strictest([{"l_variant": "distinct"}, {"l_variant": "entropy"}])


def test_keep_releases_labels_unchanged_but_never_protected_columns() -> None:
    ctx = _context({"k": 5})
    tech = Deidentify()
    plan = tech.plan({**SPEC, "keep": ["label"]}, ctx)
    assert tech.check(plan, _rules(ctx, ["ds0"], "deid"), ctx) == []
    payload = tech.run(plan, ctx).payload
    assert "label" in payload["columns"]
    labels = [row[payload["columns"].index("label")] for row in payload["rows"]]
    assert set(labels) <= {0, 1} and len(labels) == 60 - payload["report"]["suppressed_rows"]
    bad = tech.plan({**SPEC, "keep": ["age", "name"]}, ctx)
    codes = {r.code for r in tech.check(bad, _rules(ctx, ["ds0"], "deid"), ctx)}
    assert codes == {"DEID_KEEP_PROTECTED", "IDENTIFIER_COLUMN"}


def test_mediate_keeps_requested_columns() -> None:
    ctx = _context({"k": 4}, technique="mediate", n_datasets=2)
    tech = Mediate()
    plan = tech.plan({"datasets": ["ds0", "ds1"], "keep": ["label"]}, ctx)
    payload = tech.run(plan, ctx).payload
    assert set(payload["columns"]) == {"zip", "age", "disease", "label"}
