"""Unit and property tests of the look-alike building blocks and the spec checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.errors import InvalidInputError, PolicyRefusal
from collabzone.techniques.lookalike import (
    coin,
    draw_audience,
    lift,
    quality,
    randomized_response,
    rr_keep_probability,
)
from collabzone.techniques.lookalike._local import LocalContext, run_local
from collabzone.techniques.lookalike._synthetic import PARTNER_COLUMNS, SEED_COLUMNS, generate


@given(
    scores=st.lists(st.floats(0, 1), min_size=1, max_size=60),
    size=st.integers(1, 30),
    rate=st.floats(0.05, 1.0),
)
def test_audience_is_the_best_heads_in_order(scores: list[float], size: int, rate: float) -> None:
    tokens = [f"t{i}" for i in range(len(scores))]
    heads = coin(b"k" * 32, rate)
    chosen = draw_audience(tokens, np.array(scores), size, heads)
    assert len(chosen) <= size and len(set(chosen)) == len(chosen)
    assert all(heads(t) for t in chosen)
    eligible = sorted((t for t in tokens if heads(t)), key=lambda t: -scores[int(t[1:])])
    # every heads candidate scoring above the last chosen one was chosen
    if len(chosen) == size:
        worst = min(scores[int(t[1:])] for t in chosen)
        assert all(t in chosen for t in eligible if scores[int(t[1:])] > worst)
    else:
        assert set(chosen) == set(eligible)


def test_coin_is_stable_across_requests_and_near_its_rate() -> None:
    heads = coin(b"z" * 32, 0.25)
    tokens = [f"v1:{i}" for i in range(20_000)]
    first = [heads(t) for t in tokens]
    assert first == [coin(b"z" * 32, 0.25)(t) for t in tokens]  # asking again: same coins
    assert 0.23 < sum(first) / len(first) < 0.27
    assert first != [coin(b"y" * 32, 0.25)(t) for t in tokens]  # keyed


def test_randomized_response_flips_at_its_rate() -> None:
    labels = np.ones(4000, dtype=bool)
    kept = randomized_response(labels, 1.0).mean()
    assert abs(kept - rr_keep_probability(1.0)) < 0.03
    with pytest.raises(InvalidInputError):
        randomized_response(labels, 0.0)


def test_quality_is_withheld_on_small_holdouts() -> None:
    labels = np.array([True, False] * 10)
    scores = labels.astype(float)
    assert quality(labels, scores, min_rows=50) == {"auc": None, "lift_top_decile": None}
    assert quality(labels, scores, min_rows=10)["auc"] == 1.0
    assert lift(labels, scores) == pytest.approx(2.0)


def _ctx(rules: dict[str, Any]) -> LocalContext:
    data = generate(600, seed=9)
    return LocalContext(
        {"partner": ("partner", data.partner, PARTNER_COLUMNS),
         "seed": ("bank", data.seed, SEED_COLUMNS)},
        requester="bank", rules={"partner": rules},
    )  # fmt: skip


SPEC = {"seed": "seed", "label": "bought", "features": "partner", "audience_size": 50}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({**SPEC, "model": "random_forest"}, "must be one of"),
        ({**SPEC, "columns": ["link_email"]}, "measure or dimension"),
        ({**SPEC, "label": "link_email"}, "label-class"),
        ({**SPEC, "audience_size": 0}, "positive integer"),
        ({**SPEC, "seed": "partner", "features": "seed"}, "requester's own"),
        ({**SPEC, "code": "x"}, "unknown lookalike spec fields"),
    ],
)
def test_bad_specs_say_what_to_change(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        run_local(_ctx({"min_audience": 10, "allowed_models": ["logistic_regression"]}), spec)


def test_agreement_must_allow_the_model_and_set_a_minimum() -> None:
    with pytest.raises(PolicyRefusal) as refused:
        run_local(_ctx({"allowed_models": ["gradient_boosting"]}), SPEC)
    codes = {r.code for r in refused.value.reasons}
    assert codes == {"MIN_AUDIENCE_MISSING", "MODEL_NOT_ALLOWED"}


@settings(max_examples=8)
@given(
    seed=st.integers(0, 10_000),
    share=st.floats(0.2, 0.8),
    model=st.sampled_from(["logistic_regression", "gradient_boosting"]),
    rate=st.sampled_from([0.25, 1.0]),
)
def test_audience_never_holds_an_overlap_member(
    seed: int, share: float, model: str, rate: float
) -> None:
    data = generate(400, overlap_share=share, bank_only=50, seed=seed)
    ctx = LocalContext(
        {"partner": ("partner", data.partner, PARTNER_COLUMNS),
         "seed": ("bank", data.seed, SEED_COLUMNS)},
        requester="bank",
        rules={"partner": {"min_audience": 5, "allowed_models": [model], "delivery_rate": rate,
                           "min_training_rows": 20}},
    )  # fmt: skip
    try:
        outcome = run_local(ctx, {**SPEC, "model": model, "audience_size": 40})
    except InvalidInputError as exc:  # too few candidates or one-class labels: nothing leaves
        assert "min_audience" in exc.message or "one class" in exc.message
        return
    audience = {row[0] for row in outcome.parts["partner"]["audience"]["rows"]}
    assert audience and not audience & data.overlap
    assert set(outcome.parts) == {"partner", "bank"}
    assert "audience" not in outcome.parts["bank"] and "audience" not in outcome.payload
