"""PrivBayes: pure-epsilon accounting, the score's sensitivity, public domains, the zone."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collabzone.errors import InvalidInputError
from collabzone.techniques.synthetic.privbayes import (
    mutual_information_counts,
    privbayes,
    score_sensitivity,
)
from tests.conftest import Parties
from tests.synthetic.conftest import ADULT, COLUMNS


def test_the_spend_is_epsilon_split_between_the_network_and_the_tables(adult) -> None:  # type: ignore[no-untyped-def]
    from collabzone.techniques.synthetic.encode import public_domains_of, table_codec

    train, _, _ = adult
    codec = table_codec(public_domains_of(pd.read_csv(ADULT)[COLUMNS]), bins=6)
    codes = codec.encode(train)
    result = privbayes(codes, codec.shape, 0.8, max_rows=600, seed=3)
    d = len(COLUMNS)
    picks = [r for what, r in result.spend.parts if what.startswith("select")]
    tables = [r for what, r in result.spend.parts if what.startswith("table")]
    assert picks == pytest.approx([0.4 / (d - 1)] * (d - 1))
    assert tables == pytest.approx([0.4 / d] * d)
    assert result.spend.rho == pytest.approx(0.8)
    # every table spans the declared domain, not the codes the data happens to hold
    for clique, noisy in result.measurements:
        assert noisy.size == math.prod(codec.shape[a] for a in clique)
    assert {c for c, _ in result.network} | {result.network[0][1][0]} == set(COLUMNS)
    # degree at most 2, and on 600 rows at epsilon 0.8 only tables of theta-useful size
    limit = 600 * 0.8 / 2 / d / 4
    for child, parents in result.network:
        cells = codec.shape[child] * math.prod(codec.shape[p] for p in parents)
        assert 1 <= len(parents) <= 2 and (cells <= limit or len(parents) == 1)
    assert abs(len(result.codes["age"]) - 600) < 150  # the noisy row count
    assert max(result.codes["education"]) < codec.shape["education"]


def test_the_score_moves_by_at_most_its_sensitivity_when_a_row_comes_or_goes() -> None:
    """Worst cases the bound must cover: each row added to or removed from small tables
    that are skewed, uniform or nearly empty."""
    rng = np.random.default_rng(0)
    shape = {"x": 3, "p": 2, "q": 3}
    worst = 0.0
    for rows, skew in itertools.product((1, 2, 5, 30), (0.0, 0.9)):
        for _ in range(20):
            codes = {
                a: np.where(rng.random(rows) < skew, 0, rng.integers(size, size=rows))
                for a, size in shape.items()
            }
            base = mutual_information_counts(codes, shape, "x", ("p", "q"))
            for extra in itertools.product(*(range(s) for s in shape.values())):
                more = {a: np.append(codes[a], v) for a, v in zip(shape, extra, strict=True)}
                moved = abs(mutual_information_counts(more, shape, "x", ("p", "q")) - base)
                assert moved <= score_sensitivity(rows + 1)
                worst = max(worst, moved / score_sensitivity(rows + 1))
    assert worst > 0.2  # the bound is not vacuous on these cases


SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "region", "type": "string", "class": "dimension", "domain": ["n", "s", "e"]},
        {"name": "plan", "type": "string", "class": "dimension", "domain": ["basic", "gold"]},
        {"name": "age", "type": "integer", "class": "dimension", "domain": {"min": 18, "max": 90}},
    ]
}


def test_a_privbayes_request_is_charged_pure_epsilon(sqlite_zone: Parties, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "token": [f"t{i}" for i in range(200)],
            "region": rng.choice(["n", "s", "e"], 200),
            "plan": rng.choice(["basic", "gold"], 200),
            "age": rng.integers(18, 91, 200),
        }
    )
    frame.to_csv(tmp_path / "c.csv", index=False)
    zone = sqlite_zone
    zone.bank.add_dataset("customers", tmp_path / "c.csv", SPEC)
    zone.bank.add_agreement(
        "customers",
        grantees=["partner"],
        technique="synthetic",
        purposes=["research"],
        rules={"methods": ["privbayes"], "epsilon_budget": 1.0},
    )
    for bad in ({"delta": 1e-6}, {"rho": 0.1}):
        spec = {"dataset": "customers", "method": "privbayes", "epsilon": 0.5, **bad}
        with pytest.raises(InvalidInputError, match="pure epsilon"):
            zone.partner.submit("synthetic", spec, "research", dry_run=True)
    spec = {"dataset": "customers", "method": "privbayes", "epsilon": 0.6, "bins": 4,
            "degree": 1}  # fmt: skip
    released = zone.partner.result(zone.partner.submit("synthetic", spec, "research").id)  # type: ignore[union-attr]
    assert released.payload["method"] == "privbayes" and "network" in released.payload
    assert all(len(parents) == 1 for _, parents in released.payload["network"])  # degree 1
    assert released.payload["report"]["privacy"]["epsilon_spent"] == pytest.approx(0.6)
    assert released.receipt.budget_spent == {
        "customers": {"epsilon": 0.6, "delta": 0.0, "rho": 0.0}
    }
    assert {d.name for d in zone.partner.datasets()} >= {"customers_synthetic"}
    # 0.4 left: a second epsilon of 0.6 is refused
    again = zone.partner.submit("synthetic", {**spec, "name": "b"}, "research")
    assert zone.partner.request(again.id).status.value in {"refused", "rejected"}  # type: ignore[union-attr]
