"""Helpers of the linking tests: a link spec document and an in-memory RunContext."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from collabzone.budget import PrivacyCost
from collabzone.errors import NotFoundError
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

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


SPEC_DOC: dict[str, Any] = {
    "collaboration": "bank-retail",
    "zone": "demo",
    "fields": {
        "email": {"column": "Email", "normaliser": "email", "options": {"rules": "gmail"}},
        "phone": {"column": "Mobile", "normaliser": "phone", "options": {"region": "GB"}},
        "name": {"column": "FullName", "normaliser": "name"},
        "dob": {"column": "DOB", "normaliser": "dob", "options": {"order": "DMY"}},
        "postcode": {"column": "PostCode", "normaliser": "postcode", "options": {"country": "GB"}},
    },
    "match_keys": [
        {"name": "email", "fields": ["email"]},
        {"name": "phone", "fields": ["phone"]},
        {"name": "name_dob_postcode", "fields": ["name", "dob", "postcode"]},
    ],
    "drop": ["Address"],
}


def dataset_of(
    name: str, owner: str, table: pa.Table, classes: Mapping[str, ColumnClass]
) -> Dataset:
    columns = tuple(
        Column(
            name=c,
            type=ColumnType.STRING,
            column_class=classes.get(c, ColumnClass.OTHER),
        )
        for c in table.column_names
    )
    return Dataset(
        name=name, owner=owner, columns=columns, row_count=table.num_rows, version=1, created_at=NOW
    )


class FakeContext:
    """An in-memory RunContext: datasets as Arrow tables, a fresh DuckDB per connection."""

    def __init__(
        self, tables: Mapping[str, tuple[str, pa.Table, Mapping[str, ColumnClass]]]
    ) -> None:
        self._tables = {name: table for name, (_, table, _) in tables.items()}
        self._datasets = {
            name: dataset_of(name, owner, table, classes)
            for name, (owner, table, classes) in tables.items()
        }
        self._requester = Party(name="analyst", roles=(Role.ANALYST,), created_at=NOW)
        self._rng = np.random.default_rng(7)
        self.audit_states: dict[str, tuple[int, bytes]] = {}
        self.agreements: list[Agreement] = []

    @property
    def requester(self) -> Party:
        return self._requester

    @property
    def now(self) -> dt.datetime:
        return NOW

    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            raise NotFoundError(f"no dataset {name!r}")
        return self._datasets[name]

    def visible_datasets(self) -> list[Dataset]:
        return list(self._datasets.values())

    def agreements_for(self, dataset: str) -> list[Agreement]:
        return [a for a in self.agreements if a.dataset == dataset]

    def agree(self, dataset: str, technique: str, rules: Mapping[str, Any]) -> None:
        """An agreement granting the requester ``technique`` on ``dataset``."""
        owner = self._datasets[dataset].owner
        self.agreements.append(
            Agreement(id=f"agr-{dataset}", dataset=dataset, owner=owner, grantees=("*",),
                      technique=technique, purposes=("*",), rules=dict(rules),
                      approval=Approval.AUTO, valid_from=NOW, valid_until=None, created_at=NOW)
        )  # fmt: skip

    def party(self, name: str) -> Party:
        return Party(name=name, roles=(Role.PROVIDER,), created_at=NOW)

    def table(self, dataset: str) -> pa.Table:
        return self._tables[dataset]

    def connection(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        for name, table in self._tables.items():
            con.register(name, table)
        return con

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        return bytes(length)

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    def spent(self, dataset: str) -> PrivacyCost:
        return PrivacyCost()

    def history(self, dataset: str) -> list[Mapping[str, Any]]:
        return []

    def audit_state(self, space: str) -> tuple[int, bytes] | None:
        return self.audit_states.get(space)

    def store(self, updates: Any) -> None:
        """Keep a release's audited spaces, as the zone's release transaction does."""
        for change in updates:
            current = self.audit_states.get(change.space)
            assert (current[0] if current else None) == change.base_version
            self.audit_states[change.space] = ((current[0] if current else 0) + 1, change.state)
