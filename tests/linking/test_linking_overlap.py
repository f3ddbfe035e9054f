"""The overlap technique against an in-memory RunContext: cascade, thresholds, refusals."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linking_support import FakeContext

from collabzone.errors import InvalidInputError
from collabzone.model import ColumnClass
from collabzone.techniques import registry
from collabzone.techniques.base import Outcome, Rules
from collabzone.techniques.linking import Overlap, suppress

KEYS = ("email", "phone", "ndp")
JK = ColumnClass.JOIN_KEY
CLASSES = {"link_email": JK, "link_phone": JK, "link_ndp": JK, "region": ColumnClass.DIMENSION}


def tok(kind: str, person: int | None, version: int = 1) -> str | None:
    return None if person is None else f"v{version}:{kind}-{person}"


def table(people: list[tuple[int | None, int | None, int | None]], regions: list[str]) -> pa.Table:
    return pa.table(
        {
            "link_email": [tok("e", p[0]) for p in people],
            "link_phone": [tok("p", p[1]) for p in people],
            "link_ndp": [tok("n", p[2]) for p in people],
            "region": regions,
        }
    )


def context(left: pa.Table, right: pa.Table, owner: str | None = None) -> FakeContext:
    """Two datasets of two owners (or both of ``owner``, e.g. the requester itself)."""
    return FakeContext(
        {"bank": (owner or "bank", left, CLASSES), "shop": (owner or "shop", right, CLASSES)}
    )


def rules(**merged: Any) -> Rules:
    return Rules(by_dataset={"bank": merged, "shop": merged}, merged=merged)


def run(ctx: FakeContext, spec: dict[str, Any], **rule: Any) -> tuple[Outcome, Outcome]:
    technique = Overlap()
    plan = technique.plan(spec, ctx)
    assert technique.check(plan, rules(**rule), ctx) == []
    raw = technique.run(plan, ctx)
    return raw, technique.release(plan, raw, rules(**rule))


ids = st.one_of(st.none(), st.integers(0, 12))
person = st.tuples(ids, ids, ids)


@settings(max_examples=60, deadline=None)
@given(st.lists(person, min_size=1, max_size=25), st.lists(person, min_size=1, max_size=25))
def test_cascade_equals_brute_force(left: list[Any], right: list[Any]) -> None:
    regions = ["n" if i % 2 else "s" for i in range(len(left))]
    # both sides the requester's own: nothing to protect, so every count is shown
    ctx = context(table(left, regions), table(right, ["x"] * len(right)), owner="analyst")
    raw, _ = run(
        ctx,
        {"datasets": ["bank", "shop"], "by": "region"},
        min_group_size=1,
        allowed_dimensions=["region"],
    )
    # distinct people: a left record is its email token (its entity), else its best token
    people: dict[str, set[str]] = {k: set() for k in KEYS}
    by_region: dict[str, set[str]] = {}
    everyone: set[str] = set()
    for row, region in zip(left, regions, strict=True):
        for level, key in enumerate(KEYS):
            if row[level] is not None and row[level] in {r[level] for r in right}:
                who = tok("e", row[0]) or tok(key[0] if key != "ndp" else "n", row[level])
                assert who is not None
                people[key].add(who)
                by_region.setdefault(region, set()).add(who)
                everyone.add(who)
                break
    assert raw.payload["by_match_key"] == {k: len(v) or None for k, v in people.items()}
    assert raw.payload["overlap"] == (len(everyone) or None)
    if by_region or "by_dimension" in raw.payload:
        assert raw.payload["by_dimension"]["counts"] == {
            k: len(v) or None for k, v in by_region.items()
        }


def demo_tables() -> FakeContext:
    left = [(i, i, i) for i in range(30)] + [(None, 100 + i, None) for i in range(12)]
    left += [(None, None, 200 + i) for i in range(2)]
    right = [(i, None, None) for i in range(20)] + [(None, 100 + i, None) for i in range(12)]
    right += [(None, None, 200 + i) for i in range(2)]
    regions = ["London"] * 25 + ["North"] * 5 + ["London"] * 12 + ["Wales"] * 2
    return context(table(left, regions), table(right, ["x"] * len(right)))


def test_release_suppresses_small_cells_and_their_complement() -> None:
    ctx = demo_tables()
    _raw, released = run(
        ctx,
        {"datasets": ["bank", "shop"], "by": "region"},
        min_group_size=5,
        allowed_dimensions=["region"],
    )
    assert released.payload["overlap"] == 34  # distinct people linked on any key
    # per-key counts would give, through the total, people linked in two ways
    assert "by_match_key" not in released.payload
    # Wales (2) is below 5; alone it would be 34 - London: London is withheld too
    assert released.payload["by_dimension"]["counts"] == {"London": None, "Wales": None}
    assert "list" not in released.payload
    assert not any("suppress" in key for key in released.payload)
    own = context(table([(i, i, i) for i in range(30)], ["x"] * 30),
                  table([(i, None, None) for i in range(20)], ["x"] * 20), owner="analyst")  # fmt: skip
    _, mine = run(own, {"datasets": ["bank", "shop"]}, min_group_size=5)
    assert mine.payload["by_match_key"] == {"email": 20, "phone": None, "ndp": None}


def test_membership_probe_with_one_record_is_suppressed() -> None:
    """The attack: upload a 'dataset' holding only the target's token and ask for the
    overlap. The answer must not say whether the target is a customer."""
    victim = [(7, 7, 7)] + [(i, i, i) for i in range(100, 140)]
    probe_in = table([(7, None, None)], ["x"])
    probe_out = table([(999, None, None)], ["x"])
    answers = []
    for probe in (probe_in, probe_out):
        ctx = FakeContext(
            {
                "probe": ("mallory", probe, CLASSES),
                "bank": ("bank", table(victim, ["r"] * 41), CLASSES),
            }
        )
        _, released = run(ctx, {"datasets": ["probe", "bank"]}, min_group_size=10)
        answers.append(released.payload)
    assert answers[0] == answers[1]
    assert answers[0]["overlap"] is None


def test_probe_of_fifteen_copies_of_one_token_counts_one_person() -> None:
    """Issue 10: counting rows, a probe of 15 copies of the victim's token answered 15
    (victim present) against nothing (absent)."""
    customers = [(i, i, i) for i in range(100, 140)]
    answers = []
    for present in (True, False):
        bank = table(customers + ([(7, 7, 7)] if present else []), ["r"] * (40 + present))
        probe = table([(7, None, None)] * 15, ["x"] * 15)
        ctx = FakeContext({"probe": ("analyst", probe, CLASSES), "bank": ("bank", bank, CLASSES)})
        ctx.agree("bank", "overlap", {"min_group_size": 10})
        _, released = run(ctx, {"datasets": ["probe", "bank"]}, min_group_size=10)
        answers.append(released.payload)
    assert answers[0] == answers[1]
    assert answers[0]["overlap"] is None


def test_two_probes_differing_by_one_token_learn_nothing() -> None:
    """Issue 10, set algebra on overlap: L and L + victim against the partner, in the world
    where the victim is a customer and where they are not: the same answers."""
    customers = [(i, i, i) for i in range(100, 160)]
    known = [(i, None, None) for i in range(100, 130)]
    seen = []
    for present in (True, False):
        bank = table(customers + ([(7, 7, 7)] if present else []), ["r"] * (60 + present))
        ctx = FakeContext(
            {
                "probe": ("analyst", table(known, ["x"] * 30), CLASSES),
                "probe2": ("analyst", table([*known, (7, None, None)], ["x"] * 31), CLASSES),
                "bank": ("bank", bank, CLASSES),
            }
        )
        ctx.agree("bank", "overlap", {"min_group_size": 10})
        technique = Overlap()
        outs = []
        for probe in ("probe", "probe2"):
            plan = technique.plan({"datasets": [probe, "bank"]}, ctx)
            raw = technique.run(plan, ctx)
            ctx.store(raw.audit_updates)
            outs.append(technique.release(plan, raw, rules(min_group_size=10)).payload["overlap"])
        seen.append(outs)
    assert seen[0] == seen[1]  # whether the victim is a customer changes nothing
    assert seen[0][0] == 30 and seen[0][1] is None


def test_list_release_only_to_the_named_party_the_agreement_allows() -> None:
    ctx = demo_tables()
    technique = Overlap()
    plan = technique.plan({"datasets": ["bank", "shop"], "release": "list", "list_to": "bank"}, ctx)
    refused = technique.check(plan, rules(min_group_size=5), ctx)
    assert {r.code for r in refused} == {"LIST_NOT_ALLOWED", "LIST_RECIPIENT_NOT_ALLOWED"}
    wrong = technique.check(
        plan, rules(min_group_size=5, allow_list=True, list_recipients=["shop"]), ctx
    )
    assert [r.code for r in wrong] == ["LIST_RECIPIENT_NOT_ALLOWED"]
    allowed = rules(min_group_size=5, allow_list=True, list_recipients=["bank"])
    assert technique.check(plan, allowed, ctx) == []
    raw = technique.run(plan, ctx)
    out = technique.release(plan, raw, allowed)
    assert out.released_to == ("bank",)
    rows = out.payload["list"]["rows"]
    assert len(rows) == 34 and rows[0] == ["email", "v1:e-0"]
    # release re-checks: the same outcome under counts-only rules lets no list out
    counts_only = technique.release(plan, raw, rules(min_group_size=5))
    assert "list" not in counts_only.payload and counts_only.released_to == ()


def test_check_refuses_missing_threshold_and_unlisted_dimension() -> None:
    ctx = demo_tables()
    technique = Overlap()
    plan = technique.plan({"datasets": ["bank", "shop"], "by": "region"}, ctx)
    codes = {r.code for r in technique.check(plan, rules(allowed_dimensions=["age"]), ctx)}
    assert codes == {"MIN_GROUP_SIZE_MISSING", "DIMENSION_NOT_ALLOWED"}
    zero = technique.check(plan, rules(min_group_size=0, allowed_dimensions=["region"]), ctx)
    assert [r.code for r in zero] == ["MIN_GROUP_SIZE_MISSING"]
    with pytest.raises(InvalidInputError, match="min_group_size"):
        technique.release(plan, Outcome({"overlap": 3, "by_match_key": {}}), rules())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"datasets": ["bank"]}, "two different"),
        ({"datasets": ["bank", "bank"]}, "two different"),
        ({"datasets": ["bank", "shop"], "match_keys": ["ssn"]}, "not join_key"),
        ({"datasets": ["bank", "shop"], "match_keys": "email"}, "list of match key"),
        ({"datasets": ["bank", "shop"], "by": "link_email"}, "dimension"),
        ({"datasets": ["bank", "shop"], "release": "rows"}, "release"),
        ({"datasets": ["bank", "shop"], "release": "list"}, "list_to"),
        ({"datasets": ["bank", "shop"], "sql": "drop table"}, "unknown"),
    ],
)
def test_bad_specs_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Overlap().plan(spec, demo_tables())


def test_mixed_key_versions_are_refused() -> None:
    left = table([(1, 1, 1)], ["x"])
    right = pa.table(
        {
            "link_email": [tok("e", 1, version=2)],
            "link_phone": [None],
            "link_ndp": [None],
            "region": ["x"],
        },
        schema=left.schema,
    )
    ctx = context(left, right)
    technique = Overlap()
    plan = technique.plan({"datasets": ["bank", "shop"]}, ctx)
    with pytest.raises(InvalidInputError, match="key versions"):
        technique.run(plan, ctx)


def test_empty_tokens_never_match() -> None:
    left = pa.table(
        {
            "link_email": ["", "", "v1:a"],
            "link_phone": [None] * 3,
            "link_ndp": [None] * 3,
            "region": ["x"] * 3,
        }
    )
    ctx = context(left, left)
    raw, _ = run(ctx, {"datasets": ["bank", "shop"], "match_keys": ["email"]}, min_group_size=1)
    assert raw.payload["overlap"] == 1


def test_suppress_function_and_registry() -> None:
    assert suppress({"a": 10, "b": 3}, 5) == ({"a": None, "b": None}, 2)
    assert suppress({"a": 10, "b": 0}, 5) == ({"a": 10, "b": None}, 1)
    assert suppress({"a": 10, "b": 3, "c": 2}, 5) == ({"a": 10, "b": None, "c": None}, 2)
    assert isinstance(registry.get("overlap"), Overlap)
