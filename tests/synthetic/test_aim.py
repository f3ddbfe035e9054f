"""AIM: its accounting, its bounded candidates and model, and a small fixed-seed run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collabzone.techniques.synthetic.aim import _Projector, aim, workload_candidates
from collabzone.techniques.synthetic.encode import public_domains_of, table_codec
from collabzone.techniques.synthetic.fidelity import marginal_tvd
from collabzone.techniques.synthetic.mst import _linear, _marginal, _mbi
from collabzone.techniques.synthetic.technique import rho_for
from tests.synthetic.conftest import ADULT

COLUMNS = ["age", "education", "marital", "sex", "income"]


@pytest.fixture(scope="module")
def small() -> tuple[dict[str, np.ndarray], dict[str, int]]:
    if not ADULT.exists():
        pytest.skip("shared Adult data not available")
    full = pd.read_csv(ADULT)[COLUMNS]
    codec = table_codec(public_domains_of(full), bins=6)
    return codec.encode(full.sample(2000, random_state=3)), codec.shape


@pytest.fixture(scope="module")
def run(small):  # type: ignore[no-untyped-def]
    codes, shape = small
    return aim(
        codes, shape, rho_for(2.0, 1e-6), rounds=8, round_iters=30, iters=60, seed=4,
        max_model_size=0.05,
    )  # fmt: skip


def test_aim_spends_exactly_its_rho_as_opendp_measures_it(run) -> None:  # type: ignore[no-untyped-def]
    rho = rho_for(2.0, 1e-6)
    assert run.spend.budget == rho
    assert run.spend.rho == pytest.approx(rho, rel=1e-9)  # spent to the last bit ...
    assert run.spend.rho <= rho * (1 + 1e-12)  # ... and never beyond
    parts = run.spend.parts
    kinds = [what.split(" ")[0] for what, _ in parts]
    rounds = len(run.measured)
    assert kinds.count("1-way") == len(COLUMNS)
    assert kinds.count("select") == rounds == kinds.count("measure") >= 2
    # each round: a selection then a measurement, the measurement 9 times the selection
    # (the reference's 0.9 / 0.1 split of a round's budget)
    for i in range(rounds):
        (select, r_select), (measure, r_measure) = parts[
            len(COLUMNS) + 2 * i : len(COLUMNS) + 2 * i + 2
        ]
        assert select.startswith("select") and measure.startswith("measure")
        assert r_measure == pytest.approx(9 * r_select, rel=1e-6)
    # the 1-way measurements use the first round's sigma: rounds * 0.9 of them is rho
    assert parts[0][1] == pytest.approx(0.9 * rho / 8, rel=1e-9)


def test_aim_keeps_its_model_under_the_size_cap_and_samples_the_rows(small, run) -> None:  # type: ignore[no-untyped-def]
    codes, shape = small
    assert run.model_mb <= 0.05
    assert all(len(c) <= 3 for c in run.measured)
    (rows,) = {len(v) for v in run.codes.values()}  # the model's noisy total
    assert abs(rows - len(codes["age"])) < 200
    for name, size in shape.items():
        assert run.codes[name].min() >= 0 and run.codes[name].max() < size


def test_aim_beats_a_table_with_no_relation_to_the_data(small, run) -> None:  # type: ignore[no-untyped-def]
    codes, shape = small
    rng = np.random.default_rng(0)
    uniform = {k: rng.integers(0, n, size=2000) for k, n in shape.items()}
    shuffled = {k: rng.permutation(v) for k, v in codes.items()}  # right 1-ways, no structure
    tvd = {k: marginal_tvd(codes, run.codes, shape, k) for k in (1, 2, 3)}
    assert tvd[1] < 0.1, tvd
    assert tvd[3] < marginal_tvd(codes, uniform, shape, 3) - 0.2, tvd
    assert tvd[3] < marginal_tvd(codes, shuffled, shape, 3), tvd


def test_workload_candidates_are_bounded_by_degree_and_cells() -> None:
    shape = {"a": 10, "b": 10, "c": 10, "d": 200}
    three = workload_candidates(shape, 3, max_cells=1000)
    assert max(len(c) for c in three) == 3
    assert ("a", "b", "c") in three and ("a", "b", "d") not in three  # 20,000 cells
    assert ("a", "d") not in three  # small, but inside no allowed 3-way marginal
    two = workload_candidates(shape, 2, max_cells=1000)
    assert max(len(c) for c in two) == 2 and ("a", "d") not in two  # 2,000 cells
    # weight: attributes shared with the workload ((a,b), (a,c), (b,c)): 2 + 1 + 1 for (a, b)
    assert two[("a",)] == 2.0 and two[("a", "b")] == 4.0
    with pytest.raises(Exception, match="2-way or the 3-way"):
        workload_candidates(shape, 4, max_cells=1000)


def test_projections_in_numpy_match_private_pgm(small) -> None:  # type: ignore[no-untyped-def]
    codes, shape = small
    mbi = _mbi()
    domain = mbi.Domain(tuple(shape), tuple(shape.values()))
    cliques = [("age",), ("age", "education"), ("education", "sex"), ("marital", "income")]
    measurements = [_linear(_marginal(codes, shape, c).astype(float), c, 1.0) for c in cliques]
    model = mbi.estimation.MirrorDescent().estimate(domain, measurements, iters=50)
    project = _Projector(model, shape)
    for clique in [
        ("sex", "age"),
        ("income", "age", "education"),
        ("marital",),
        ("income", "marital"),
    ]:
        expected = np.asarray(model.project(clique).datavector(), dtype=float)
        assert np.allclose(project(clique), expected, rtol=1e-4, atol=1e-3 * expected.max())


def test_aim_refuses_a_budget_below_its_one_way_measurements(small) -> None:  # type: ignore[no-untyped-def]
    codes, shape = small
    with pytest.raises(Exception, match="1-way"):
        aim(codes, shape, 1e-3, rounds=1)
