"""DP noise on ``he_sum`` totals: added by the zone under encryption, priced and debited.

Partner and insurer deposit per-category counts (each person counted once: contribution
bound 1) encrypted under bank's key; bank asks for the total with ``epsilon``. The zone
adds encrypted Laplace noise before anything leaves, so bank only ever decrypts a noisy
total, and each release debits epsilon on each provider's dataset once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collabzone.errors import InvalidInputError
from collabzone.model import Request, RequestStatus
from collabzone.techniques.mpc import RecipientKeys, encrypt, open_total
from collabzone.techniques.mpc._he_noise import laplace_vector, noisy_total, sensitivity
from tests.conftest import Parties
from tests.mpc.conftest import HE_CATEGORIES, HE_DATASETS, HEWorld, he_deposit, he_world

PURPOSE = "sector statistics"
ASK = {"datasets": ["counts_p", "counts_i"], "recipient": "bank", "epsilon": 1.0}


@pytest.fixture
def world(sqlite_zone: Parties, tmp_path: Path, keys: RecipientKeys) -> Iterator[HEWorld]:
    """Partner and insurer deposited vectors encrypted under bank's key; bank asks."""
    yield from he_world(sqlite_zone, tmp_path, keys, seed=3, high=1000)


def _agree(parties: Parties, **rules: Any) -> None:
    base: dict[str, Any] = {"recipients": ["bank"], "min_providers": 2, "contribution_bound": 1}
    base.update(rules)
    base = {k: v for k, v in base.items() if v is not None}
    for party, dataset in HE_DATASETS:
        getattr(parties, party).add_agreement(
            dataset, grantees=["bank"], technique="he_sum", purposes=[PURPOSE], rules=base
        )


def _ask(parties: Parties, spec: dict[str, Any]) -> Request:
    request = parties.bank.submit("he_sum", spec, PURPOSE)
    assert isinstance(request, Request)
    return request


def _debits(parties: Parties) -> dict[str, tuple[float, int]]:
    return {
        row["dataset"]: (row["spent"]["epsilon"], row["debits"])
        for row in parties.bank.budget()
        if row["party"] == "bank"
    }


def test_two_runs_differing_in_one_provider_release_noisy_totals_each_debited_once(
    world: HEWorld, keys: RecipientKeys
) -> None:
    """The attack: total, then the insurer's vector changes by one person, total again.

    Without noise the difference of the two totals is exactly that person's contribution;
    with it, each total is off by Laplace noise of scale (1 + 1) / epsilon = 2 and so is
    their difference. Each release debits epsilon once on each provider's dataset.
    """
    parties, vectors, inbox = world
    _agree(parties, epsilon_budget=2.5)
    first = _ask(parties, ASK)
    assert first.status is RequestStatus.RELEASED, first.reasons
    released = parties.bank.result(first.id)
    assert released.payload["epsilon"] == 1.0 and released.payload["noise_scale"] == 2.0
    assert "Laplace" in (released.receipt.mechanism or "")
    assert released.receipt.noise_scale == 2.0
    exact = vectors["counts_p"] + vectors["counts_i"]
    noisy = np.array(open_total(released.payload, keys)[:HE_CATEGORIES])
    assert np.max(np.abs(noisy - exact)) > 0.5  # noisy, not exact (P(all 40 < 0.5) < 1e-40)
    assert _debits(parties) == {"counts_p": (1.0, 1), "counts_i": (1.0, 1)}

    changed = vectors["counts_i"].copy()
    changed[7] += 1  # one more person in category 7 at the insurer
    he_deposit(inbox, keys, "counts_i", changed)
    second = _ask(parties, ASK)
    assert second.status is RequestStatus.RELEASED, second.reasons
    again = np.array(open_total(parties.bank.result(second.id).payload, keys)[:HE_CATEGORIES])
    guess = again - noisy  # the attacker's estimate of the change
    truth = np.zeros(HE_CATEGORIES)
    truth[7] = 1.0
    assert np.max(np.abs(guess - truth)) > 0.5  # the change is hidden in the noise
    assert not np.allclose(again, exact + truth, atol=0.5)
    assert _debits(parties) == {"counts_p": (2.0, 2), "counts_i": (2.0, 2)}

    third = _ask(parties, ASK)  # 3.0 > epsilon_budget 2.5: nothing released, nothing debited
    assert third.status is RequestStatus.REFUSED
    assert any("BUDGET_EXHAUSTED" in r for r in third.reasons), third.reasons
    assert _debits(parties) == {"counts_p": (2.0, 2), "counts_i": (2.0, 2)}


def test_dry_run_prices_epsilon_on_each_providers_dataset(
    world: HEWorld,
) -> None:
    parties, _, _ = world
    _agree(parties, epsilon_budget=3)
    price = parties.bank.submit("he_sum", ASK, PURPOSE, dry_run=True)
    assert isinstance(price, dict)
    assert price["would_be_refused"] == []
    assert {k: v["epsilon"] for k, v in price["plan"]["cost"].items()} == {
        "counts_p": 1.0, "counts_i": 1.0
    }  # fmt: skip
    assert price["budget"]["counts_p"]["remaining"]["epsilon"] == 3
    assert _debits(parties) == {}


def test_noise_without_a_declared_contribution_bound_is_refused(
    world: HEWorld,
) -> None:
    parties, _, _ = world
    _agree(parties, contribution_bound=None)
    request = _ask(parties, ASK)
    assert request.status is RequestStatus.REFUSED
    assert any(r.startswith("BOUND_NOT_DECLARED") for r in request.reasons), request.reasons


def test_an_agreement_requiring_noise_refuses_a_plain_total(
    world: HEWorld,
) -> None:
    parties, _, _ = world
    _agree(parties, require_noise=True, epsilon_budget=1)
    plain = _ask(parties, {"datasets": ["counts_p", "counts_i"], "recipient": "bank"})
    assert plain.status is RequestStatus.REFUSED
    assert any(r.startswith("NOISE_REQUIRED") for r in plain.reasons), plain.reasons
    noisy = _ask(parties, ASK)
    assert noisy.status is RequestStatus.RELEASED, noisy.reasons


def test_epsilon_above_the_per_request_cap_is_refused(
    world: HEWorld,
) -> None:
    parties, _, _ = world
    _agree(parties, max_epsilon_per_request=0.5)
    request = _ask(parties, ASK)
    assert request.status is RequestStatus.REFUSED
    assert _debits(parties) == {}


def test_sensitivity_adds_the_declared_bounds_and_refuses_nonsense() -> None:
    assert sensitivity({"a": 1, "b": 2.5}) == 3.5
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError, match="contribution_bound"):
            sensitivity({"a": bad})


def test_laplace_vector_follows_laplace_of_the_stated_scale() -> None:
    """DKW: P(sup |F_n - F| > c) <= 2 exp(-2 n c^2); c set for a false alarm rate 1e-6."""
    n, scale = 20_000, 2.0
    draws = np.sort(np.array(laplace_vector(n, scale, epsilon=0.5, l1=1.0)))
    cdf = np.where(draws < 0, 0.5 * np.exp(draws / scale), 1 - 0.5 * np.exp(-draws / scale))
    empirical_hi = np.arange(1, n + 1) / n
    distance = max(np.max(empirical_hi - cdf), np.max(cdf - (empirical_hi - 1 / n)))
    assert distance < math.sqrt(math.log(2 / 1e-6) / (2 * n))


def test_noise_is_added_under_encryption_and_decrypts_near_the_total(keys: RecipientKeys) -> None:
    """Long vectors span several packed ciphertexts: the noise follows each part."""
    public = keys.public_context()
    values = [float(i % 7) for i in range(5000)]  # 2 parts of 4096 slots
    total, scale = noisy_total(public, encrypt(public, values), l1=1.0, epsilon=100.0)
    assert scale == 0.01
    opened = np.array(keys.decrypt(total))
    assert opened.shape == (5000,)
    assert np.max(np.abs(opened - values)) < 0.5  # scale 0.01: within 0.5 but not exact
    assert np.max(np.abs(opened - values)) > 1e-4
