"""Federated analytics by secure sum with distributed noise; the node-side spec check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collabzone.techniques.federated import _accounting, _analytics, _spec
from tests.federated.fl_support import DOMAINS, FEATURES, LABEL, OWNERS, adult, split_non_iid


def analytics_job(noise: float) -> _spec.JobSpec:
    return _spec.parse(
        {
            "task": "analytics",
            "datasets": list(OWNERS),
            "queries": [
                {"kind": "count"},
                {"kind": "histogram", "column": "sex"},
                {"kind": "mean", "column": "age"},
                {"kind": "histogram", "column": "hours_per_week"},
            ],
            "privacy": {"noise_multiplier": noise, "delta": 1e-6},
        }
    )


def test_analytics_match_the_pooled_data_up_to_the_noise() -> None:
    frame = adult(3000)
    frames = split_non_iid(frame)
    payload, _ = _analytics.run(analytics_job(2.0), frames, DOMAINS)
    count, sex, age, hours = payload["results"]
    assert count["value"] == pytest.approx(len(frame), abs=15)  # std 2
    assert sex["counts"]["Male"] == pytest.approx((frame["sex"] == "Male").sum(), abs=15)
    assert age["value"] == pytest.approx(frame["age"].mean(), abs=1.5)  # sum noise std 180
    assert sum(hours["counts"].values()) == pytest.approx(len(frame), abs=40)
    # five Gaussian mechanisms (a mean is two) composed by the accountant
    assert payload["epsilon"] == pytest.approx(_accounting.epsilon(5, 1.0, 2.0, 1e-6))


def test_the_zone_sees_neither_an_owners_figures_nor_the_exact_total() -> None:
    """Attack: the aggregator reads each owner's masked count and the sum before release."""
    frames = split_non_iid(adult(3000))
    spec = _spec.parse(
        {"task": "analytics", "datasets": list(OWNERS), "queries": [{"kind": "count"}],
         "privacy": {"noise_multiplier": 3.0}}
    )  # fmt: skip
    totals = []
    for _ in range(5):
        payload, views = _analytics.run(spec, frames, DOMAINS)
        seen = _analytics.vectors_of(views[0])
        for owner, view in zip(sorted(frames), seen, strict=True):
            assert abs(view[0] - len(frames[owner])) > 1e6  # masked: uniform over 2**64
        totals.append(payload["results"][0]["value"])
    assert len(set(totals)) == 5  # fresh noise each time, never the exact count
    assert np.std(totals) > 0.3


def _signed(spec: _spec.JobSpec) -> dict[str, object]:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "spec-json": json.dumps(spec.as_json()),
        "spec-sha256": spec.digest(),
        "signature": _spec.sign(spec, key),
        "zone-key": raw.hex(),
        "domains-json": json.dumps(DOMAINS),
    }


@pytest.mark.filterwarnings("ignore::UserWarning")  # Flower's protobuf gencode notice
def test_a_node_refuses_a_spec_its_owner_did_not_approve(tmp_path: Path) -> None:
    """Attack: the analyst gets the zone to sign a 20-round job after the owner approved
    5 rounds; the owner's node compares with the digest its owner approved."""
    from flwr.common import Context, RecordDict

    from collabzone.techniques.federated._flower import _client_fn

    data = tmp_path / "rows.csv"
    adult(200)[[*FEATURES, LABEL]].to_csv(data, index=False)
    base = {"datasets": list(OWNERS), "features": FEATURES, "label": LABEL}
    approved = _spec.parse({**base, "rounds": 5})
    sent = _spec.parse({**base, "rounds": 20})

    def context(spec: _spec.JobSpec) -> Context:
        node = {"data-path": str(data), "approved-sha256": approved.digest()}
        return Context(1, 1, node, RecordDict(), _signed(spec))  # type: ignore[arg-type]

    assert _client_fn(context(approved)) is not None
    with pytest.raises(PermissionError, match="did not approve"):
        _client_fn(context(sent))


def test_dp_quantiles_over_three_owners_match_the_pooled_quantiles() -> None:
    """Adult split across three owners (non-IID): the quartiles of age and hours come from
    one securely summed noisy histogram each, within a bin width of the true pooled ones;
    the job costs one Gaussian mechanism per quantile query, however many quantiles."""
    frame = adult(3000)
    qs = [0.25, 0.5, 0.75]
    spec = _spec.parse(
        {
            "task": "analytics",
            "datasets": list(OWNERS),
            "queries": [
                {"kind": "quantile", "column": "age", "quantiles": qs, "bins": 73},
                {"kind": "quantile", "column": "hours_per_week", "quantiles": [0.1, 0.9]},
            ],
            "privacy": {"noise_multiplier": 2.0, "delta": 1e-6},
        }
    )
    payload, _ = _analytics.run(spec, split_non_iid(frame), DOMAINS)
    age, hours = payload["results"]
    assert list(age["value"]) == ["0.25", "0.5", "0.75"]
    got = list(age["value"].values())
    assert got == sorted(got)
    for q, value in zip(qs, got, strict=True):  # bins of width 1 over [17, 90]
        assert value == pytest.approx(np.quantile(frame["age"], q), abs=1.5)
    for q, value in zip([0.1, 0.9], hours["value"].values(), strict=True):  # width 1.5
        assert value == pytest.approx(np.quantile(frame["hours_per_week"], q), abs=3.0)
    assert payload["epsilon"] == pytest.approx(_accounting.epsilon(2, 1.0, 2.0, 1e-6))


def test_quantiles_from_a_noisy_histogram_stay_ordered_and_inside_the_domain() -> None:
    """Heavy noise (negative counts, bumps) cannot make a reported quantile leave the
    declared range or a higher quantile fall below a lower one."""
    rng = np.random.default_rng(3)
    edges = np.linspace(0.0, 10.0, 21)
    for _ in range(50):
        counts = rng.normal(0.0, 20.0, 20) + np.r_[np.zeros(10), np.full(10, 5.0)]
        values = _analytics.quantiles_from_histogram(counts, edges, [0.1, 0.5, 0.9])
        assert values == sorted(values)
        assert all(0.0 <= v <= 10.0 for v in values)


@pytest.mark.parametrize(
    "query",
    [
        {"kind": "quantile", "column": "age"},
        {"kind": "quantile", "column": "age", "quantiles": [1.0]},
        {"kind": "quantile", "column": "age", "quantiles": [0.5], "bins": 1},
        {"kind": "quantile", "column": "age", "quantiles": [0.5], "epsilon": 9},
    ],
)
def test_a_malformed_quantile_query_is_a_clear_error(query: dict[str, object]) -> None:
    from collabzone.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="quantile"):
        _spec.parse({"task": "analytics", "datasets": list(OWNERS), "queries": [query]})
