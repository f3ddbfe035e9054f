"""Fixtures of the attack tests: UCI Adult, the attacker's knowledge, the ground truth,
and a real embedded zone sharing Adult with the analyst."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collabzone.attacks import Scenario, TableTruth
from collabzone.zone import Zone, init
from tests.attacks.attack_support import (
    ADULT_COLUMNS,
    ADULT_DIR,
    AGGREGATION_RULES,
    DP_RULES,
    adult_scenario,
    load_adult,
)

PURPOSE = "research"


@pytest.fixture(scope="session")
def adult() -> pa.Table:
    if not (ADULT_DIR / "adult.data").exists():
        pytest.skip(f"UCI Adult is not at {ADULT_DIR}")
    return load_adult()


@pytest.fixture(scope="session")
def scenario(adult: pa.Table) -> Scenario:
    return adult_scenario(adult)


@pytest.fixture(scope="session")
def truth(adult: pa.Table) -> Iterator[TableTruth]:
    judge = TableTruth(adult, "adult", "token")
    yield judge
    judge.close()


@pytest.fixture
def analyst(tmp_path: Path, adult: pa.Table) -> Zone:
    """A zone where the analyst may run aggregation and DP queries on Adult (answering on
    the test suite's short response-time ladder)."""
    return share_adult(tmp_path, adult)


def share_adult(tmp_path: Path, adult: pa.Table) -> Zone:
    """A new zone in ``tmp_path``: the census shares Adult with the analyst (aggregation and
    DP); the analyst's handle."""
    operator, _ = init(tmp_path / "zone")
    _, census_token = operator.add_party("census", ["provider"])
    _, analyst_token = operator.add_party("analyst", ["provider", "analyst"])
    census = operator.as_party(census_token)
    path = tmp_path / "adult.parquet"
    pq.write_table(adult, path)
    spec = {"columns": [c.model_dump(by_alias=True, mode="json") for c in ADULT_COLUMNS]}
    census.add_dataset("adult", path, spec)
    rules = {**DP_RULES, **AGGREGATION_RULES, "analysis": ["aggregation", "dp"]}
    census.add_agreement(
        "adult", grantees=["analyst"], technique="sql", purposes=[PURPOSE], rules=rules
    )
    return operator.as_party(analyst_token)
