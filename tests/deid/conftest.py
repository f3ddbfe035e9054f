"""Shared fixtures for the de-identification tests: Adult data and an in-memory zone context."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from collabzone.budget import PrivacyCost
from collabzone.model import (
    Agreement,
    Approval,
    Column,
    ColumnClass,
    ColumnType,
    Dataset,
    Party,
    Role,
)
from collabzone.techniques.deid import Hierarchy, read_arx_csv

ADULT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "arx_adult"
ADULT_QIS = [
    "sex",
    "age",
    "race",
    "marital-status",
    "education",
    "native-country",
    "workclass",
    "salary-class",
]


def _need_adult() -> None:
    if not (ADULT / "adult.csv").exists():
        pytest.skip(f"shared Adult data not found at {ADULT}")


@pytest.fixture(scope="session")
def adult() -> pa.Table:
    _need_adult()
    return pacsv.read_csv(ADULT / "adult.csv", parse_options=pacsv.ParseOptions(delimiter=";"))


@pytest.fixture(scope="session")
def adult_hierarchies() -> dict[str, Hierarchy]:
    _need_adult()
    names = [*ADULT_QIS, "occupation"]
    return {n: read_arx_csv(ADULT / f"adult_hierarchy_{n}.csv", n) for n in names}


NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def make_dataset(
    name: str, owner: str, table: pa.Table, classes: Mapping[str, ColumnClass]
) -> Dataset:
    columns = tuple(
        Column(
            name=c,
            type=ColumnType.INTEGER
            if pa.types.is_integer(table.schema.field(c).type)
            else ColumnType.STRING,
            column_class=classes.get(c, ColumnClass.OTHER),
        )
        for c in table.column_names
    )
    return Dataset(
        name=name, owner=owner, columns=columns, row_count=table.num_rows, version=1, created_at=NOW
    )


def make_agreement(dataset: str, owner: str, technique: str, rules: dict[str, Any]) -> Agreement:
    return Agreement(
        id=f"agr-{dataset}-{technique}",
        dataset=dataset,
        owner=owner,
        grantees=("ml",),
        technique=technique,
        purposes=("*",),
        rules=rules,
        approval=Approval.AUTO,
        valid_from=NOW - dt.timedelta(days=1),
        valid_until=None,
        created_at=NOW,
    )


class FakeContext:
    """An in-memory RunContext: datasets, tables, agreements, a seeded rng."""

    def __init__(
        self,
        tables: dict[str, tuple[Dataset, pa.Table]],
        agreements: list[Agreement],
        seed: int = 0,
    ) -> None:
        self._tables = tables
        self._agreements = agreements
        self._rng = np.random.default_rng(seed)
        self.read: list[str] = []

    @property
    def requester(self) -> Party:
        return Party(name="ml", roles=(Role.ANALYST,), created_at=NOW)

    @property
    def now(self) -> dt.datetime:
        return NOW

    def dataset(self, name: str) -> Dataset:
        from collabzone.errors import NotFoundError

        if name not in self._tables:
            raise NotFoundError(f"no dataset {name!r}")
        return self._tables[name][0]

    def visible_datasets(self) -> list[Dataset]:
        return [d for d, _ in self._tables.values()]

    def agreements_for(self, dataset: str) -> list[Agreement]:
        return [a for a in self._agreements if a.dataset == dataset]

    def party(self, name: str) -> Party:
        return Party(name=name, roles=(Role.PROVIDER,), created_at=NOW)

    def table(self, dataset: str) -> pa.Table:
        self.read.append(dataset)
        return self._tables[dataset][1]

    def connection(self) -> Any:
        raise NotImplementedError

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        return bytes(length)

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    def spent(self, dataset: str) -> PrivacyCost:
        return PrivacyCost()

    def history(self, dataset: str) -> list[Mapping[str, Any]]:
        return []
