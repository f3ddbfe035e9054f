"""MST's accounting, the public-domain encoder and the fidelity measures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone._opendp import dp
from collabzone.techniques.synthetic.encode import OTHER, codec_for
from collabzone.techniques.synthetic.fidelity import (
    cramers_v,
    fidelity_report,
    marginal_tvd,
    ml_efficacy,
)
from collabzone.techniques.synthetic.technique import rho_for


def test_mst_spends_exactly_its_rho_across_its_measurements(mst_at_epsilon_1) -> None:  # type: ignore[no-untyped-def]
    codec, result, _ = mst_at_epsilon_1
    d = len(codec.shape)
    assert result.spend.rho == pytest.approx(rho_for(1.0, 1e-6), rel=1e-9)
    assert result.spend.rho <= result.spend.budget * (1 + 1e-12)
    kinds = [what.split(" ")[0] for what, _ in result.spend.parts]
    assert (
        kinds.count("1-way") == d
        and kinds.count("select") == d - 1
        and kinds.count("2-way") == d - 1
    )
    assert len(result.tree) == d - 1  # a spanning tree: d - 1 edges, no cycle
    assert len({frozenset(edge) for edge in result.tree}) == d - 1


@given(epsilon=st.floats(0.01, 20), delta=st.sampled_from([1e-9, 1e-6, 1e-3]))
@settings(max_examples=25, deadline=None)
def test_rho_for_epsilon_never_exceeds_the_epsilon_opendp_converts_it_to(
    epsilon: float, delta: float
) -> None:
    rho = rho_for(epsilon, delta)
    scale = math.sqrt(1 / (2 * rho))
    gaussian = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=scale
    )
    assert gaussian.map(1) == pytest.approx(rho, rel=1e-9)
    converted = dp.c.make_zCDP_to_approxDP(gaussian).map(1).epsilon(delta)
    assert converted <= epsilon * (1 + 1e-9)


def test_encoder_bins_come_from_the_declared_domain_not_the_data() -> None:
    codec = codec_for("age", {"min": 0, "max": 100}, bins=4)
    assert codec.edges == (0.0, 25.0, 50.0, 75.0, 100.0)
    assert codec.encode(pd.Series([-5, 10, 30, 99, 250])).tolist() == [0, 0, 1, 3, 3]
    colour = codec_for("colour", ["red", "blue"], bins=4)
    assert colour.categories == ("red", "blue", OTHER)
    assert colour.encode(pd.Series(["blue", "green", "red"])).tolist() == [1, 2, 0]


@given(values=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=30))
@settings(max_examples=30, deadline=None)
def test_decoded_numbers_fall_back_into_their_bin(values: list[float]) -> None:
    codec = codec_for("x", {"min": 0, "max": 100}, bins=7)
    codes = codec.encode(pd.Series(values))
    decoded = codec.decode(codes, np.random.default_rng(0))
    assert codec.encode(pd.Series(decoded)).tolist() == codes.tolist()


def test_fidelity_on_a_hand_computed_case() -> None:
    shape = {"a": 2, "b": 2}
    real = {"a": np.array([0, 0, 1, 1]), "b": np.array([0, 0, 1, 1])}
    fake = {"a": np.array([0, 1, 0, 1]), "b": np.array([0, 0, 1, 1])}
    assert marginal_tvd(real, fake, shape, 1) == 0.0  # same 1-way marginals
    assert marginal_tvd(real, fake, shape, 2) == pytest.approx(0.5)  # half the mass moved
    assert cramers_v(real, shape)[0, 1] == pytest.approx(1.0)
    assert cramers_v(fake, shape)[0, 1] == pytest.approx(0.0)
    report = fidelity_report(real, fake, shape)
    assert report["cramers_v_max_diff"] == pytest.approx(1.0)
    assert report["tvd_3way"] == 0.0  # no 3-column sets in a 2-column table


def test_mst_fidelity_beats_independent_columns(adult, mst_at_epsilon_1) -> None:  # type: ignore[no-untyped-def]
    train, _, holdout = adult
    codec, result, synthetic = mst_at_epsilon_1
    real = codec.encode(train)
    rng = np.random.default_rng(0)
    shuffled = {k: rng.permutation(v) for k, v in real.items()}  # right 1-ways, no structure
    report = fidelity_report(real, result.codes, codec.shape)
    assert report["tvd_1way"] < 0.15, report
    # 600 rows at epsilon 1 is a hard case (noise ~25 per cell): errors grow with k and
    # stay well below those of a table with no relation to the data
    assert report["tvd_1way"] < report["tvd_2way"] < report["tvd_3way"] < 0.6, report
    uniform = {k: rng.integers(0, n, size=len(train)) for k, n in codec.shape.items()}
    assert report["tvd_3way"] < marginal_tvd(real, uniform, codec.shape, 3) - 0.1
    assert marginal_tvd(real, shuffled, codec.shape, 1) == 0.0
    scores = ml_efficacy(train, synthetic, holdout, "income")
    assert scores["accuracy_real"] > 0.75
    # at epsilon 1 on 600 rows the synthetic model is near the majority-class share (0.76)
    assert 0.6 < scores["accuracy_synthetic"] <= scores["accuracy_real"] + 0.05, scores
