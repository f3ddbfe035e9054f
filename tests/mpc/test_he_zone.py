"""HE aggregation as a zone request (technique ``he_sum``): the zone is a keyless mediator.

Partner and insurer each encrypt a per-category vector under bank's public CKKS context
(at their premises) and deposit it; bank asks for the total. The zone releases only the
encrypted total, which bank's client decrypts; the zone itself cannot.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.attacks import he_differencing, he_mediator_decrypt, he_self_padding
from collabzone.errors import InvalidInputError, PolicyRefusal
from collabzone.model import Request, RequestStatus
from collabzone.techniques.base import Plan, Rules
from collabzone.techniques.mpc import (
    HESum,
    RecipientKeys,
    deposit,
    encrypt,
    open_total,
)
from tests.conftest import Parties
from tests.mpc.conftest import HE_CATEGORIES, HE_SPEC, HEWorld, he_world

PURPOSE = "sector statistics"


@pytest.fixture
def world(sqlite_zone: Parties, tmp_path: Path, keys: RecipientKeys) -> Iterator[HEWorld]:
    """Partner and insurer deposited vectors encrypted under bank's key; bank asks."""
    yield from he_world(sqlite_zone, tmp_path, keys, seed=15, high=100_000)


def _agree(parties: Parties, **rules: Any) -> None:
    base: dict[str, Any] = {"recipients": ["bank"], "min_providers": 2}
    base.update(rules)
    for party, dataset in ((parties.partner, "counts_p"), (parties.insurer, "counts_i")):
        party.add_agreement(
            dataset, grantees=["bank"], technique="he_sum", purposes=[PURPOSE], rules=base
        )


def _ask(parties: Parties, spec: dict[str, Any]) -> Request:
    request = parties.bank.submit("he_sum", spec, PURPOSE)
    assert isinstance(request, Request)
    return request


BOTH = {"datasets": ["counts_p", "counts_i"], "recipient": "bank"}


def test_recipient_decrypts_the_released_total(world: HEWorld, keys: RecipientKeys) -> None:
    parties, vectors, _ = world
    _agree(parties)
    request = _ask(parties, BOTH)
    assert request.status is RequestStatus.RELEASED, request.reasons
    release = parties.bank.result(request.id)
    assert set(release.payload) == {
        "datasets", "recipient", "providers", "ciphertext", "sha256", "deposits"
    }  # fmt: skip
    assert {d["provider"] for d in release.payload["deposits"]} == {"partner", "insurer"}
    assert release.payload["providers"] == 2
    assert any("never held the recipient's secret key" in n for n in release.receipt.notes)
    total = open_total(release.payload, keys)
    expected = vectors["counts_p"] + vectors["counts_i"]
    assert np.allclose(total[:HE_CATEGORIES], expected, atol=1e-2)
    # nothing the zone stored or logged carries a plain total
    events = [e for e in parties.auditor.audit_events() if request.id in json.dumps(e)]
    assert any("release" in e["action"] for e in events)
    assert not _plain_totals_in([dict(release.payload), events], expected)


def _plain_totals_in(stored: Any, expected: np.ndarray) -> set[float]:
    """The expected totals that appear in ``stored`` as a number or a decimal word.

    Words are whole decimal tokens: digits inside a hex digest, an id or the base64
    ciphertext are not a released total (a substring test matched them by chance).
    """
    wanted = {float(v) for v in expected if v > 1000}
    found: set[float] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)
        elif isinstance(node, bool):
            return
        elif isinstance(node, int | float):
            found.update(w for w in wanted if abs(float(node) - w) < 0.5)
        elif isinstance(node, str):
            for word in re.findall(r"(?<![\w.+/=-])\d+(?:\.\d+)?(?![\w.+/=])", node):
                found.update(w for w in wanted if abs(float(word) - w) < 0.5)

    walk(stored)
    return found


def test_the_zones_stored_total_cannot_be_decrypted_with_the_public_context(
    world: HEWorld, keys: RecipientKeys
) -> None:
    """The attack a curious mediator (or anyone reading the zone's store) would try."""
    import tenseal as ts

    parties, _, inbox = world
    _agree(parties)
    payload = parties.bank.result(_ask(parties, BOTH).id).payload
    public_bytes = (inbox / "bank" / "context.pub").read_bytes()
    assert not ts.context_from(public_bytes).is_private()
    ciphertext = base64.b64decode(payload["ciphertext"])
    assert he_mediator_decrypt(public_bytes, ciphertext) is None
    # another party's key pair does not open it either (decrypts to noise, not the total)
    other = RecipientKeys.generate()
    garbage = np.array(other.decrypt(ciphertext)[:HE_CATEGORIES])
    assert not np.allclose(garbage, np.array(open_total(payload, keys)[:HE_CATEGORIES]), atol=1.0)


def test_fewer_providers_than_min_providers_is_refused(
    world: HEWorld,
) -> None:
    parties, _, _ = world
    _agree(parties, min_providers=3)
    request = _ask(parties, BOTH)
    assert request.status is RequestStatus.REFUSED
    assert any(r.startswith("TOO_FEW_PROVIDERS") for r in request.reasons), request.reasons


def test_one_provider_is_refused_by_the_floor(
    world: HEWorld,
) -> None:
    parties, _, _ = world
    _agree(parties)
    request = _ask(parties, {"datasets": ["counts_p"], "recipient": "bank"})
    assert request.status is RequestStatus.REFUSED
    assert any(r.startswith("TOO_FEW_PROVIDERS") for r in request.reasons), request.reasons


def test_agreement_cannot_lower_the_floor(
    world: HEWorld,
) -> None:
    parties, _, _ = world
    with pytest.raises(InvalidInputError, match="floor"):
        _agree(parties, min_providers=1)


def test_recipient_not_granted_is_refused(
    world: HEWorld,
) -> None:
    parties, _, _ = world
    _agree(parties)
    request = _ask(parties, {**BOTH, "recipient": "partner"})
    assert request.status is RequestStatus.REFUSED
    assert any(r.startswith("RECIPIENT_NOT_GRANTED") for r in request.reasons), request.reasons


def test_missing_ciphertext_fails_clearly(
    world: HEWorld,
) -> None:
    parties, _, inbox = world
    _agree(parties)
    (inbox / "bank" / "counts_i.ckks").unlink()
    request = _ask(parties, BOTH)
    assert request.status is RequestStatus.FAILED
    assert "no ciphertext deposited for 'counts_i'" in " ".join(request.reasons)


def test_recipient_padding_a_victim_with_its_own_zeros_is_refused(
    world: HEWorld, keys: RecipientKeys
) -> None:
    """Bank owns a dataset of zeros: zeros + partner's vector would be partner's vector."""
    parties, vectors, inbox = world
    _agree(parties)
    parties.bank.register_dataset("counts_b", HE_SPEC, row_count=HE_CATEGORIES)
    deposit(inbox, "bank", "counts_b", encrypt(keys.public_context(), [0.0] * HE_CATEGORIES))
    refusals: list[str] = []

    def ask(spec: Any) -> dict[str, Any]:
        request = _ask(parties, dict(spec))
        if request.status is not RequestStatus.RELEASED:
            refusals.extend(request.reasons)
            raise PolicyRefusal([])
        return dict(parties.bank.result(request.id).payload)

    def decrypt(payload: Any) -> list[float]:
        return open_total(payload, keys)

    assert he_self_padding(ask, decrypt, "counts_b", "counts_p", "bank") is None
    assert any(r.startswith("TOO_FEW_PROVIDERS") for r in refusals), refusals
    # with a second real provider the total is released, and it is not partner's vector
    total = ask({"datasets": ["counts_b", "counts_p", "counts_i"], "recipient": "bank"})
    assert total["providers"] == 2
    opened = np.array(open_total(total, keys)[:HE_CATEGORIES])
    assert not np.allclose(opened, vectors["counts_p"], atol=1.0)


@pytest.fixture
def four(world: HEWorld, keys: RecipientKeys) -> tuple[Parties, dict[str, np.ndarray]]:
    """Four providers (A partner, B insurer, C carrier, D broker), each with one vector
    under bank's key and an agreement letting bank receive totals (min_providers 2)."""
    parties, vectors, inbox = world
    _agree(parties)
    public = keys.public_context()
    rng = np.random.default_rng(16)
    for name, dataset in (("carrier", "counts_c"), ("broker", "counts_d")):
        _, token = parties.operator.add_party(name, ["provider"])
        party = parties.operator.as_party(token)
        party.register_dataset(dataset, HE_SPEC, row_count=HE_CATEGORIES)
        vectors[dataset] = rng.integers(0, 100_000, HE_CATEGORIES).astype(float)
        deposit(inbox, "bank", dataset, encrypt(public, list(vectors[dataset])))
        party.add_agreement(
            dataset, grantees=["bank"], technique="he_sum", purposes=[PURPOSE],
            rules={"recipients": ["bank"], "min_providers": 2},
        )  # fmt: skip
    return parties, vectors


def _asker(parties: Parties, refusals: list[str]) -> Any:
    def ask(spec: Any) -> dict[str, Any]:
        request = _ask(parties, dict(spec))
        if request.status is not RequestStatus.RELEASED:
            refusals.extend(request.reasons)
            raise PolicyRefusal([])
        return dict(parties.bank.result(request.id).payload)

    return ask


ABC = ["counts_p", "counts_i", "counts_c"]


def test_differencing_two_totals_is_refused(
    four: tuple[Parties, dict[str, np.ndarray]], keys: RecipientKeys
) -> None:
    """{A, B, C} then {B, C}: the difference would be A's vector exactly."""
    parties, _ = four
    refusals: list[str] = []
    ask = _asker(parties, refusals)

    def decrypt(payload: Any) -> list[float]:
        return open_total(payload, keys)[:HE_CATEGORIES]

    assert he_differencing(ask, decrypt, ABC, ABC[1:], "bank") is None
    assert len(refusals) == 1 and refusals[0].startswith("DIFFERENCING"), refusals
    assert "min_providers=2" in refusals[0]
    # the first total did go out; only the second, which would complete it, was refused
    first = [r for r in parties.bank.requests() if r.status is RequestStatus.RELEASED]
    assert len(first) == 1


def test_the_same_providers_again_is_released(
    four: tuple[Parties, dict[str, np.ndarray]], keys: RecipientKeys
) -> None:
    parties, vectors = four
    refusals: list[str] = []
    ask = _asker(parties, refusals)
    ask({"datasets": ABC, "recipient": "bank"})
    again = ask({"datasets": list(reversed(ABC)), "recipient": "bank"})
    assert refusals == []
    expected = sum(vectors[d] for d in ABC)
    assert np.allclose(open_total(again, keys)[:HE_CATEGORIES], expected, atol=1e-2)


def test_a_total_leaving_one_provider_alone_is_refused(
    four: tuple[Parties, dict[str, np.ndarray]],
) -> None:
    """{A, B, C, D} then {A, B, C}: D alone is an atom of 1 < min_providers 2."""
    parties, _ = four
    refusals: list[str] = []
    ask = _asker(parties, refusals)
    ask({"datasets": [*ABC, "counts_d"], "recipient": "bank"})
    with pytest.raises(PolicyRefusal):
        ask({"datasets": ABC, "recipient": "bank"})
    assert len(refusals) == 1 and refusals[0].startswith("DIFFERENCING"), refusals
    # a refusal stores nothing: the same first total is still released afterwards
    ask({"datasets": [*ABC, "counts_d"], "recipient": "bank"})
    assert len(refusals) == 1


def test_disjoint_provider_sets_are_released(
    four: tuple[Parties, dict[str, np.ndarray]], keys: RecipientKeys
) -> None:
    """{A, B} then {C, D}: every atom keeps two providers (the empty region "in both"
    discloses no vector); then {A, B, C, D} too, and {A, C} would split them: refused."""
    parties, vectors = four
    refusals: list[str] = []
    ask = _asker(parties, refusals)
    ask({"datasets": ["counts_p", "counts_i"], "recipient": "bank"})
    second = ask({"datasets": ["counts_c", "counts_d"], "recipient": "bank"})
    ask({"datasets": ["counts_p", "counts_i", "counts_c", "counts_d"], "recipient": "bank"})
    assert refusals == []
    expected = vectors["counts_c"] + vectors["counts_d"]
    assert np.allclose(open_total(second, keys)[:HE_CATEGORIES], expected, atol=1e-2)
    with pytest.raises(PolicyRefusal):
        ask({"datasets": ["counts_p", "counts_c"], "recipient": "bank"})
    assert refusals[0].startswith("DIFFERENCING"), refusals


@settings(max_examples=60, deadline=None)
@given(
    owners=st.lists(st.sampled_from(["a", "b", "c", "d", "bank"]), min_size=1, max_size=6),
    minimums=st.lists(st.integers(0, 5), min_size=1, max_size=6),
)
def test_check_refuses_exactly_below_the_largest_minimum(
    owners: list[str], minimums: list[int]
) -> None:
    """Pure check: refused iff distinct non-recipient providers < max(2, every minimum)."""
    names = [f"d{i}" for i in range(len(owners))]
    providers = len(set(owners) - {"bank"})
    plan = Plan(
        technique="he_sum",
        datasets=tuple(names),
        details={"recipient": "bank", "owners": dict(zip(names, owners, strict=True)),
                 "providers": providers},
    )  # fmt: skip
    by_dataset = {
        n: {"recipients": ["bank"], "min_providers": minimums[i % len(minimums)]}
        for i, n in enumerate(names)
    }
    ctx = SimpleNamespace(requester=SimpleNamespace(name="bank"))
    reasons = HESum().check(plan, Rules(by_dataset=by_dataset, merged={}), ctx)  # type: ignore[arg-type]
    needed = max([2, *(r["min_providers"] for r in by_dataset.values())])
    assert [r.code for r in reasons] == (["TOO_FEW_PROVIDERS"] if providers < needed else [])


class _AuditCtx:
    """The part of a RunContext the providers' audit reads, with a stored space."""

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum
        self.stored: tuple[int, bytes] | None = None

    def agreements_for(self, dataset: str) -> list[Any]:
        return [SimpleNamespace(technique="he_sum", rules={"min_providers": self.minimum})]

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        return b"k" * length

    def audit_state(self, space: str) -> tuple[int, bytes] | None:
        return self.stored


@settings(max_examples=40, deadline=None)
@given(
    totals=st.lists(st.sets(st.sampled_from("ABCDEF"), min_size=1), min_size=1, max_size=6),
    minimum=st.integers(2, 3),
)
def test_audited_totals_never_leave_a_group_below_the_minimum(
    totals: list[set[str]], minimum: int
) -> None:
    """Whatever totals are asked, the accepted ones never split the providers they cover
    into a group (same membership in every accepted total) smaller than min_providers; a
    total is refused only if accepting it would."""
    from collabzone.techniques.mpc._he_technique import _audit_providers

    ctx = _AuditCtx(minimum)
    accepted: list[set[str]] = []

    def groups(sets: list[set[str]]) -> list[int]:
        covered = set().union(*sets) if sets else set()
        keys = [tuple(p in s for s in sets) for p in sorted(covered)]
        return [keys.count(k) for k in set(keys)]

    for i, providers in enumerate(totals):
        owners = {f"d{p}": p for p in providers}
        plan = Plan(technique="he_sum", datasets=tuple(owners), details={"owners": owners})
        safe = min(groups([*accepted, providers])) >= minimum
        try:
            update = _audit_providers(plan, ctx)  # type: ignore[arg-type]
        except PolicyRefusal as refusal:
            assert not safe, (accepted, providers)
            assert refusal.reasons[0].code == "DIFFERENCING"
            continue
        assert safe, (accepted, providers)
        accepted.append(providers)
        ctx.stored = (i, update.state)
