"""Agreement evaluation: every owner's yes, most restrictive rules, named refusals."""

from __future__ import annotations

import datetime as dt

from collabzone.model import Agreement, Approval, Column, Dataset, Party, Role
from collabzone.policy import evaluate, merge_rules, validate_rules
from collabzone.techniques.base import Merge, RuleSpec

NOW = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
BANK = Party(name="bank", roles=(Role.ANALYST, Role.PROVIDER), created_at=NOW)


def _dataset(name: str, owner: str) -> Dataset:
    return Dataset(
        name=name,
        owner=owner,
        columns=(Column(name="t", type="string", **{"class": "join_key"}),),
        row_count=10,
        version=1,
        created_at=NOW,
    )


def _agreement(dataset: str, owner: str, **kw: object) -> Agreement:
    base: dict[str, object] = dict(
        id=f"ag-{dataset}-{owner}",
        dataset=dataset,
        owner=owner,
        grantees=("bank",),
        technique="dp_count",
        purposes=("marketing",),
        rules={},
        approval=Approval.AUTO,
        valid_from=NOW - dt.timedelta(days=1),
        valid_until=None,
        created_at=NOW,
    )
    base.update(kw)
    return Agreement(**base)  # type: ignore[arg-type]


def _eval(
    datasets: list[Dataset], agreements: list[Agreement], purpose: str = "marketing"
) -> object:
    return evaluate(
        requester=BANK,
        technique="dp_count",
        purpose=purpose,
        datasets=datasets,
        agreements=agreements,
        rule_specs=(),
        needs_agreement=True,
        now=NOW,
    )


def test_two_owners_most_restrictive_wins_and_manual_owner_must_approve() -> None:
    a, b = _dataset("a", "partner"), _dataset("b", "insurer")
    result = _eval(
        [a, b],
        [
            _agreement(
                "a", "partner", rules={"min_group_size": 10, "max_epsilon_per_request": 1.0}
            ),
            _agreement(
                "b",
                "insurer",
                rules={"min_group_size": 50, "max_epsilon_per_request": 0.5},
                approval=Approval.MANUAL,
            ),
        ],
    )
    assert result.allowed  # type: ignore[attr-defined]
    assert result.rules.merged == {"min_group_size": 50, "max_epsilon_per_request": 0.5}  # type: ignore[attr-defined]
    assert result.owners_to_approve == ("insurer",)  # type: ignore[attr-defined]


def test_one_owner_without_agreement_refuses_naming_that_owner() -> None:
    a, b = _dataset("a", "partner"), _dataset("b", "insurer")
    result = _eval([a, b], [_agreement("a", "partner")])
    (reason,) = result.reasons  # type: ignore[attr-defined]
    assert reason.code == "NO_AGREEMENT" and reason.owner == "insurer"


def test_refusal_codes_for_expired_revoked_future_purpose() -> None:
    d = _dataset("a", "partner")
    cases = {
        "AGREEMENT_EXPIRED": _agreement("a", "partner", valid_until=NOW - dt.timedelta(seconds=1)),
        "AGREEMENT_REVOKED": _agreement("a", "partner", revoked_at=NOW - dt.timedelta(hours=1)),
        "AGREEMENT_NOT_YET_VALID": _agreement(
            "a", "partner", valid_from=NOW + dt.timedelta(days=1)
        ),
        "TECHNIQUE_NOT_ALLOWED": _agreement("a", "partner", technique="catalogue"),
    }
    for code, agreement in cases.items():
        (reason,) = _eval([d], [agreement]).reasons  # type: ignore[attr-defined]
        assert reason.code == code, code
        assert agreement.id in reason.rule or "agreements on" in reason.rule
    (reason,) = _eval([d], [_agreement("a", "partner")], purpose="resale").reasons  # type: ignore[attr-defined]
    assert reason.code == "PURPOSE_NOT_ALLOWED"


def test_role_grantee_and_own_data() -> None:
    d = _dataset("a", "partner")
    assert _eval([d], [_agreement("a", "partner", grantees=("role:analyst",))]).allowed  # type: ignore[attr-defined]
    assert _eval([_dataset("mine", "bank")], []).allowed  # type: ignore[attr-defined]


def test_merge_kinds() -> None:
    specs = [
        RuleSpec("cols", Merge.SUBSET, ""),
        RuleSpec("rows", Merge.ALL, ""),
        RuleSpec("mode", Merge.SAME, ""),
        RuleSpec("strict", Merge.ANY, ""),
    ]
    merged, problems = merge_rules(
        {
            "a": {"cols": ["x", "y"], "rows": True, "mode": "p", "strict": False},
            "b": {"cols": ["y", "z"], "mode": "q", "strict": True},
        },
        specs,
    )
    assert merged["cols"] == ["y"]
    assert merged["rows"] is False  # b does not allow rows
    assert merged["strict"] is True
    assert [p.code for p in problems] == ["RULE_CONFLICT"]


def test_validate_rules_rejects_unknown_and_bad_numbers() -> None:
    problems = validate_rules(
        {
            "min_group_sise": 3,
            "epsilon_budget": float("nan"),
            "max_epsilon_per_request": -1,
            "delta_budget": True,
        },
        (),
    )
    text = " ".join(problems)
    assert "unknown rule 'min_group_sise'" in text
    assert "epsilon_budget" in text and "max_epsilon_per_request" in text and "delta_budget" in text
