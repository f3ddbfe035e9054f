"""The privacy report flags a copying generator and clears DP MST at epsilon 1."""

from __future__ import annotations

import pandas as pd
import pytest

from collabzone.attacks.synthetic_data import (
    copying_generator,
    dcr,
    inference,
    linkability,
    rare_copies,
    singling_out,
    wilson,
)


def test_wilson_interval_matches_the_formula() -> None:
    rate = wilson(5, 10)
    assert rate.value == 0.5
    assert rate.low == pytest.approx(0.2366, abs=1e-4)
    assert rate.high == pytest.approx(0.7634, abs=1e-4)
    assert wilson(0, 0).high == 1.0


def test_copying_generator_scores_high_risk(adult) -> None:  # type: ignore[no-untyped-def]
    train, control, _ = adult
    copy = copying_generator(train, seed=3)
    single = singling_out(train, copy, control, n_attacks=150, n_cols=4)
    assert single.risk > 0.3 and not single.within_control
    link = linkability(
        train,
        copy,
        control,
        ["age", "education", "marital"],
        ["occupation", "hr_per_week", "income"],
        n_attacks=150,
    )
    assert link.original.value > link.control.high
    infer = inference(train, copy, control, "income", n_attacks=150)
    assert infer.original.value > infer.control.high
    distances = dcr(train, copy, control)
    assert distances["share_closer_to_train"] > 0.8
    assert distances["median_dcr_train"] == 0.0
    copies = rare_copies(train, copy, control)
    assert copies["copied_rare_original"] > 5 * max(copies["copied_rare_control"], 1)


def test_dp_mst_at_epsilon_1_stays_within_the_control(adult, mst_at_epsilon_1) -> None:  # type: ignore[no-untyped-def]
    train, control, _ = adult
    codec, result, _ = mst_at_epsilon_1
    # compare on the generator's own public bins (decoded ages are drawn inside their bin
    # and would never equal a real age): the attacker gets the benefit of the doubt
    train = pd.DataFrame(codec.encode(train)).astype(str)
    control = pd.DataFrame(codec.encode(control)).astype(str)
    synthetic = pd.DataFrame(result.codes).astype(str)
    for attack in (
        singling_out(train, synthetic, control, n_attacks=150, n_cols=4),
        inference(train, synthetic, control, "income", n_attacks=150),
        linkability(
            train,
            synthetic,
            control,
            ["age", "education", "marital"],
            ["occupation", "hr_per_week", "income"],
            n_attacks=150,
        ),
    ):
        # OpenDP draws its noise from the OS (no seed), so each run's synthetic table differs:
        # ask that the attack's rate is not significantly above the control's (the intervals
        # meet), not that its point estimate lands inside, which fails by chance at n = 150
        assert attack.original.low <= attack.control.high, attack.as_dict()
    copies = rare_copies(train, synthetic, control)
    # on coarse public bins some unique rows recur by chance, as often for the control's
    # (same size) as for the training rows: the training count must not be significantly
    # higher (one-sided exact binomial test of the split, at 0.001; a copying generator
    # copies hundreds against the control's handful). A fixed margin failed by chance.
    from scipy.stats import binomtest  # type: ignore[import-untyped]

    hits, misses = copies["copied_rare_original"], copies["copied_rare_control"]
    if hits + misses:
        split = binomtest(hits, hits + misses, 0.5, alternative="greater")
        assert split.pvalue > 1e-3, copies
    assert dcr(train, synthetic, control)["share_closer_to_train"] < 0.6


def test_singling_out_needs_isolating_predicates() -> None:
    original = pd.DataFrame({"a": ["x", "y", "y"], "b": ["1", "2", "2"]})
    control = pd.DataFrame({"a": ["y", "y", "x"], "b": ["2", "2", "2"]})
    result = singling_out(original, original.iloc[[0]], control, n_attacks=10, n_cols=2)
    assert result.original.value == 1.0  # (x, 1) isolates one original record
    assert result.control.value == 0.0  # and none of the control


def test_distance_and_rare_copies_on_a_hand_computed_case() -> None:
    original = pd.DataFrame({"a": ["x", "y", "z"], "b": ["1", "2", "3"]})
    control = pd.DataFrame({"a": ["p", "q", "r"], "b": ["7", "8", "9"]})
    synthetic = pd.DataFrame({"a": ["x", "y", "x"], "b": ["1", "2", "1"]})  # copies two rows
    assert rare_copies(original, synthetic, control) == {
        "rare_original_rows": 3,
        "copied_rare_original": 2,
        "copied_rare_control": 0,
    }
    distances = dcr(original, synthetic, control)
    assert distances["median_dcr_train"] == 0.0 and distances["median_dcr_control"] > 0.0
    assert distances["share_closer_to_train"] == 1.0
    fresh = pd.DataFrame({"a": ["p", "q"], "b": ["1", "8"]})  # near the control, not a copy
    assert rare_copies(original, fresh, control)["copied_rare_original"] == 0
    assert dcr(original, fresh, control)["share_closer_to_train"] <= 0.5
