"""Accounting, spec signing, secure sums and the in-process round loop (no Flower)."""

from __future__ import annotations

import dataclasses

import dp_accounting
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dp_accounting import rdp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from collabzone.errors import NotAuthorisedError
from collabzone.techniques.federated import _accounting, _federation, _models, _secure_sum, _spec
from tests.federated.fl_support import (
    FEATURES,
    LABEL,
    OWNERS,
    adult,
    centralised,
    client_data,
    split_non_iid,
)


def job(**overrides: object) -> _spec.JobSpec:
    doc: dict[str, object] = {
        "datasets": list(OWNERS), "features": FEATURES, "label": LABEL, "rounds": 8,
        "local_epochs": 2, "learning_rate": 1.0,
        "privacy": {"clipping_norm": 5.0, "noise_multiplier": 0.0},
    }  # fmt: skip
    doc.update(overrides)
    return _spec.parse(doc)


def test_epsilon_is_the_accountants_own_figure() -> None:
    """Ten rounds composed one by one in dp-accounting give the job's epsilon."""
    accountant = rdp.RdpAccountant(list(_accounting.ORDERS))
    for _ in range(10):
        accountant.compose(
            dp_accounting.PoissonSampledDpEvent(0.5, dp_accounting.GaussianDpEvent(1.3))
        )
    assert _accounting.epsilon(10, 0.5, 1.3, 1e-5) == pytest.approx(accountant.get_epsilon(1e-5))
    assert _accounting.epsilon(10, 1.0, 0.0, 1e-5) == float("inf")


@settings(max_examples=6, deadline=None)
@given(
    budget=st.floats(0.5, 30.0),
    rate=st.floats(0.1, 1.0),
    noise=st.floats(0.8, 5.0),
)
def test_max_rounds_is_the_last_round_within_budget(
    budget: float, rate: float, noise: float
) -> None:
    rounds = _accounting.max_rounds(budget, rate, noise, 1e-5, 20)
    assert _accounting.epsilon(rounds, rate, noise, 1e-5) <= budget
    if rounds < 20:
        assert _accounting.epsilon(rounds + 1, rate, noise, 1e-5) > budget


def test_a_spec_changed_after_approval_is_refused_at_the_node() -> None:
    key = Ed25519PrivateKey.generate()
    approved = job()
    signature = _spec.sign(approved, key)
    _spec.verify(approved, approved.digest(), signature, key.public_key())  # runs
    tampered = dataclasses.replace(approved, rounds=approved.rounds + 1)
    with pytest.raises(NotAuthorisedError, match="differs"):
        _spec.verify(tampered, approved.digest(), signature, key.public_key())
    # a forged approval: the analyst hashes its own spec but cannot sign as the zone
    forged = _spec.sign(tampered, Ed25519PrivateKey.generate())
    with pytest.raises(NotAuthorisedError, match="not signed"):
        _spec.verify(tampered, tampered.digest(), forged, key.public_key())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4), min_size=2, max_size=6))
def test_secure_sum_is_the_sum_and_only_the_sum(rows: list[list[float]]) -> None:
    vectors = [np.array(r) for r in rows]
    total, seen = _secure_sum.secure_sum(vectors)
    np.testing.assert_allclose(total, np.sum(vectors, axis=0), atol=1e-5)
    # what reaches the aggregator from each client is not that client's vector
    for mine, masked in zip(vectors, seen, strict=True):
        assert not np.allclose(_secure_sum.decode(masked), mine, atol=1.0)


@pytest.fixture(scope="module")
def adult_split() -> tuple[dict[str, _federation.ClientData], np.ndarray, np.ndarray]:
    frame = adult(4000)
    x, y = centralised(frame)
    return client_data(split_non_iid(frame)), x, y


def test_federated_training_learns_on_non_iid_adult(adult_split) -> None:  # type: ignore[no-untyped-def]
    clients, x, y = adult_split
    majority = max(y.mean(), 1 - y.mean())
    result = _federation.train(job(), clients, epsilon_budget=float("inf"))
    assert result.stopped is None and len(result.rounds) == 8
    assert _models.accuracy(result.params, x, y) >= majority
    assert roc_auc_score(y, _models.predict_proba(result.params, x)) > 0.75
    start = _models.init_params("logreg", x.shape[1])
    assert _models.log_loss(result.params, x, y) < _models.log_loss(start, x, y) - 0.1


def test_the_aggregator_never_holds_an_individual_update(adult_split) -> None:  # type: ignore[no-untyped-def]
    """Attack: a curious aggregator reads what each client sent in round 1."""
    clients, _, _ = adult_split
    spec = job(rounds=1)
    result = _federation.train(spec, clients, epsilon_budget=float("inf"))
    like = _models.init_params("logreg", clients["bank"].x.shape[1])
    flat = _models.flatten(like)
    updates = [_federation.client_update(spec, flat, like, clients[n], 1000 * 0 + 31 + i)
               for i, n in enumerate(sorted(clients))]  # fmt: skip
    seen = [_secure_sum.decode(v) for v in result.server_view[0]]
    for update in updates:
        for view in seen:
            assert np.linalg.norm(view - update) > 1e3 * spec.privacy.clipping_norm
    # ...while their sum modulo 2**64 is exactly the sum of the updates
    total = _secure_sum.unmask_sum(result.server_view[0])
    np.testing.assert_allclose(total, np.sum(updates, axis=0), atol=1e-5)


def test_budget_exhaustion_stops_the_job(adult_split) -> None:  # type: ignore[no-untyped-def]
    clients, _, _ = adult_split
    spec = job(rounds=20, privacy={"clipping_norm": 1.0, "noise_multiplier": 2.0})
    full = _accounting.epsilon(20, 1.0, 2.0, 1e-5)
    budget = full / 2
    result = _federation.train(spec, clients, epsilon_budget=budget)
    assert result.stopped is not None and "privacy budget" in result.stopped
    assert 0 < len(result.rounds) < 20
    assert result.epsilon <= budget
    assert _accounting.epsilon(len(result.rounds) + 1, 1.0, 2.0, 1e-5) > budget
    assert {tuple(r["clients"]) for r in result.rounds} == {tuple(sorted(OWNERS))}
