"""SafePub (ARX's differentially private anonymisation): parameters by hand, OpenDP's
sampler and selection, and a release that holds its derived k."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid import KAnonymity, Lattice, deidentify, encode, parse_config
from collabzone.techniques.deid._hierarchy import Hierarchy
from collabzone.techniques.deid._safepub import (
    _delta_of_k,
    dp_score,
    safepub_parameters,
    safepub_search,
    sample,
)


def test_parameters_by_hand() -> None:
    # epsilon_anon = ln 2: beta = 1 - 1/2 = 0.5, gamma = (2 - 1 + 0.5) / 2 = 0.75.
    # k = 1: n from ceil(1/0.75 - 1) = 1; P[Bin(1, .5) > 0] = 0.5 is the largest term.
    # k = 2: n from 2; P[Bin(2, .5) > 1] = 0.25, later terms are smaller (0.125, 0.0625,
    # 0.1875, ...). So delta = 0.3 is met at k = 2 and, as in ARX, k = 3 is returned.
    assert _delta_of_k(1, 0.5, 0.75) == pytest.approx(0.5)
    assert _delta_of_k(2, 0.5, 0.75) == pytest.approx(0.25)
    params = safepub_parameters(math.log(2) + 0.1, 0.3, search_epsilon=0.1)
    assert params.beta == pytest.approx(0.5) and params.k == 3
    assert params.anonymisation_epsilon == pytest.approx(math.log(2))
    # a smaller delta needs a larger k
    assert safepub_parameters(1.0, 1e-3).k > safepub_parameters(1.0, 1e-1).k
    with pytest.raises(InvalidInputError, match="epsilon > search_epsilon"):
        safepub_parameters(0.05, 1e-5)


@pytest.mark.parametrize("beta", [0.3, 0.8])
def test_the_opendp_sampler_keeps_records_with_probability_beta(beta: float) -> None:
    n = 4000
    kept = sample(n, beta)
    sd = math.sqrt(n * beta * (1 - beta))
    assert abs(kept.sum() - n * beta) < 5 * sd


def test_the_discernibility_score_by_hand() -> None:
    # 6 sampled rows of an input of 10, at the node where ages group as {1,1,1,1} and {2,2}:
    # k = 3 keeps the class of 4 and suppresses the pair; 4 unsampled rows count as
    # suppressed too: -(4^2 + 10 * (2 + 4)) / (10 * (3^2 / 2 + 1)) = -76 / 55
    table = pa.table({"age": ["1", "1", "1", "1", "2", "2"]})
    h = Hierarchy.from_rows("age", [["1", "*"], ["2", "*"]])
    lattice = Lattice(encode(table, ["age"], {"age": h}), [KAnonymity(3)], 1.0)
    assert dp_score(lattice, (0,), 10, 3) == pytest.approx(-76 / 55)
    # the top node keeps all 6: -(36 + 10 * 4) / 55
    assert dp_score(lattice, (1,), 10, 3) == pytest.approx(-76 / 55)
    prec = Lattice(encode(table, ["age"], {"age": h}), [KAnonymity(3)], 1.0, "precision")
    # precision: -(4 * 0/1 + 6) / 1 / (3 - 1) = -3 at the bottom; -(6 * 1 + 4) / 2 = -5 at top
    assert dp_score(prec, (0,), 10, 3) == pytest.approx(-3.0)
    assert dp_score(prec, (1,), 10, 3) == pytest.approx(-5.0)


def test_the_search_spends_its_budget_and_draws_predecessors() -> None:
    table = pa.table({"age": [str(a) for a in np.repeat(np.arange(20), 5)]})
    rows = [[str(a), f"{a // 5}", f"{a // 10}", "*"] for a in range(20)]
    h = Hierarchy.from_rows("age", rows)
    lattice = Lattice(encode(table, ["age"], {"age": h}), [KAnonymity(3)], 1.0)
    params = safepub_parameters(2.0, 1e-3, search_epsilon=0.5, steps=3)
    found = safepub_search(lattice, params, 150)
    assert found.pivots[0] == (3,) and found.pivots == ((3,), (2,), (1,), (0,))  # one path
    assert found.epsilon_spent == pytest.approx(0.5)
    assert found.best in found.pivots


def test_a_safepub_release_holds_its_k_and_reports_the_budget() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    table = pa.table(
        {
            "age": rng.integers(20, 80, size=n).tolist(),
            "sex": rng.choice(["m", "f"], size=n).tolist(),
        }
    )
    config = parse_config(
        {
            "quasi_identifiers": {"age": {"intervals": [5, 10, 20]}, "sex": None},
            "safepub": {"epsilon": 1.5, "delta": 1e-4, "steps": 20},
        }
    )
    released, report = deidentify(table, config)
    dp = report["dp"]
    assert dp["input_rows"] == n and dp["k"] == safepub_parameters(1.5, 1e-4).k
    # 0.1 / 20 per draw; the search stops early when the small lattice runs out of nodes
    assert 0 < dp["search_epsilon_spent"] <= 0.1 + 1e-9
    assert report["rows_in"] < n  # a random sample (beta = 1 - e^-1.4 = 0.75)
    counts = released.group_by(["age", "sex"]).aggregate([([], "count_all")])
    assert released.num_rows == 0 or min(counts.column("count_all").to_pylist()) >= dp["k"]
    assert report["algorithm"] == "safepub"


def test_safepub_refuses_other_models_and_the_loss_metric() -> None:
    base = {"quasi_identifiers": {"age": None}, "safepub": {"epsilon": 1.0, "delta": 1e-5}}
    with pytest.raises(InvalidInputError, match="derives its own k"):
        parse_config({**base, "privacy": {"k": 5}})
    with pytest.raises(InvalidInputError, match="not loss"):
        parse_config({**base, "metric": "loss"})


def test_safepub_in_the_zone_is_charged_to_the_ledger() -> None:
    from collabzone.budget import PrivacyCost
    from collabzone.techniques.deid import Deidentify

    from .test_technique import _context, _rules

    spec = {
        "dataset": "ds0",
        "quasi_identifiers": {"zip": {"masking": True}},
        "safepub": {"epsilon": 2.0, "delta": 0.01, "steps": 10},
    }
    k = safepub_parameters(2.0, 0.01).k
    ctx = _context({"k": 5, "suppression_limit": 1.0})
    tech = Deidentify()
    plan = tech.plan(spec, ctx)
    assert plan.cost == {"ds0": PrivacyCost(epsilon=2.0, delta=0.01)}  # priced before running
    assert tech.check(plan, _rules(ctx, ["ds0"], "deid"), ctx) == []
    outcome = tech.release(plan, tech.run(plan, ctx), _rules(ctx, ["ds0"], "deid"))
    assert outcome.spent == {"ds0": PrivacyCost(epsilon=2.0, delta=0.01)}
    assert outcome.mechanism == "safepub"
    report = outcome.payload["report"]
    assert report["dp"]["k"] == k and report["rows_out"] <= report["rows_in"] <= 60
    # the agreement asks for l: SafePub does not give it; a k above SafePub's: refused
    strict = _context({"k": 5, "l": 2, "suppression_limit": 1.0})
    codes = [
        r.code for r in tech.check(tech.plan(spec, strict), _rules(strict, ["ds0"], "deid"), strict)
    ]
    assert "DEID_SAFEPUB_MODEL" in codes
    high = _context({"k": k + 1, "suppression_limit": 1.0})
    reasons = tech.check(tech.plan(spec, high), _rules(high, ["ds0"], "deid"), high)
    assert [r.code for r in reasons] == ["DEID_K_NOT_MET"]
