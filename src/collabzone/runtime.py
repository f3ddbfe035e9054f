"""The contexts the zone hands to techniques (see techniques/base.py).

:class:`ZoneContext` answers catalogue questions for one requester; :class:`ZoneRunContext`
adds read-only access to exactly the datasets a plan names. Neither lets a technique
write anything: outcomes go back to the zone, which decides what is released.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from sqlalchemy import Engine

from collabzone.budget import Period, PrivacyCost, period_key, total
from collabzone.errors import (
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
    PolicyRefusal,
    Reason,
)
from collabzone.keys import KeyProvider
from collabzone.model import Agreement, Dataset, Party
from collabzone.policy import choose_agreement
from collabzone.remote_tables import Location, PostgresTable, SparkTable, is_remote, open_table
from collabzone.store import repo
from collabzone.store.data import DataStore


def technique_dir(zone_root: Path, technique: str) -> Path:
    """Where technique ``technique`` keeps its own files in the zone at ``zone_root``."""
    return Path(zone_root) / "techniques" / technique


def visible_to(
    party: Party, datasets: Sequence[Dataset], agreements: Sequence[Agreement], now: dt.datetime
) -> list[Dataset]:
    """Datasets ``party`` owns, or that an active agreement shares with it."""
    shared = {a.dataset for a in agreements if a.grants(party) and a.is_active(now)}
    return [d for d in datasets if d.owner == party.name or d.name in shared]


def sandboxed_duckdb() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can read no file, reach no network and load no extension:
    techniques see only the tables registered on it."""
    return duckdb.connect(
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )


WAREHOUSE_TECHNIQUES = frozenset({"sql"})
"""Techniques that run on a remote dataset's own engine (:meth:`ZoneRunContext.warehouse`)."""

AUDIT_PURPOSE_PREFIX = "disclosure/"
"""Key purposes of the disclosure audit (derived from the first technique-key version)."""


def audit_member_salt(keys: KeyProvider, zone_id: str) -> int:
    """The salt of the 64-bit hashes the disclosure audit keeps of people and tokens (the
    same one :meth:`ZoneRunContext.derive_key` gives techniques)."""
    from collabzone.disclosure import MEMBER_SALT_PURPOSE

    keys.create("zone-techniques")
    version = min(keys.versions("zone-techniques"))
    material = keys.derive(
        "zone-techniques", f"{zone_id}/{MEMBER_SALT_PURPOSE}", 6, version=version
    )
    return int.from_bytes(material, "little")


def budget_period_of(rules: Mapping[str, Any], now: dt.datetime) -> str:
    return period_key(Period(rules.get("budget_period", "total")), now)


class ZoneContext:
    """Catalogue-level view of the zone for one requester (PlanContext)."""

    def __init__(
        self,
        engine: Engine,
        requester: Party,
        now: dt.datetime | None = None,
        technique: str = "",
        purpose: str = "",
    ) -> None:
        self._engine = engine
        self._technique = technique
        self._purpose = purpose
        self._requester = requester
        self._now = now or dt.datetime.now(dt.UTC)
        with engine.connect() as conn:
            self._datasets = {d.name: d for d in repo.list_datasets(conn)}
            self._agreements = repo.list_agreements(conn)
            self._parties = {p.name: p for p in repo.list_parties(conn)}

    @property
    def requester(self) -> Party:
        return self._requester

    @property
    def now(self) -> dt.datetime:
        return self._now

    @property
    def purpose(self) -> str:
        return self._purpose

    def visible_datasets(self) -> list[Dataset]:
        return visible_to(
            self._requester, list(self._datasets.values()), self._agreements, self._now
        )

    def dataset(self, name: str) -> Dataset:
        for dataset in self.visible_datasets():
            if dataset.name == name:
                return dataset
        if name in self._datasets and self._may_know(self._datasets[name]):
            verdict = choose_agreement(
                self._datasets[name],
                self._agreements,
                self._requester,
                self._technique,
                self._purpose,
                self._now,
            )
            if not isinstance(verdict, Reason):
                verdict = Reason(
                    "NO_AGREEMENT",
                    f"agreements on {name}",
                    f"no active agreement shares {name!r} with {self._requester.name!r}",
                    self._datasets[name].owner,
                )
            raise PolicyRefusal(verdict)
        raise NotFoundError(f"no dataset named {name!r}")

    def _may_know(self, dataset: Dataset) -> bool:
        """Whether the requester may learn that ``dataset`` exists: it owns it, or some
        agreement (even an expired or revoked one) names it as a grantee. Anyone else gets
        the answer an unknown name gets, so refusals do not map other owners' datasets."""
        return dataset.owner == self._requester.name or any(
            a.dataset == dataset.name and a.grants(self._requester) for a in self._agreements
        )

    def agreements_for(self, dataset: str) -> list[Agreement]:
        return [
            a
            for a in self._agreements
            if a.dataset == dataset and a.grants(self._requester) and a.is_active(self._now)
        ]

    def all_agreements(self, dataset: str) -> list[Agreement]:
        return [a for a in self._agreements if a.dataset == dataset]

    def party(self, name: str) -> Party:
        if name not in self._parties:
            raise NotFoundError(f"no party named {name!r}")
        return self._parties[name]

    def spent_in(self, dataset: str, period: str) -> PrivacyCost:
        with self._engine.connect() as conn:
            return total(repo.spent(conn, self._requester.name, dataset, period))


class ZoneRunContext(ZoneContext):
    """Read-only data access for one approved plan (RunContext)."""

    def __init__(
        self,
        engine: Engine,
        requester: Party,
        data: DataStore,
        keys: KeyProvider,
        datasets: Sequence[str],
        rules_by_dataset: Mapping[str, Mapping[str, Any]],
        zone_id: str,
        seed: int | None = None,
        technique: str = "",
        purpose: str = "",
    ) -> None:
        super().__init__(engine, requester, technique=technique, purpose=purpose)
        self._data = data
        self._keys = keys
        self._allowed = tuple(datasets)
        self._rules = rules_by_dataset
        self._zone_id = zone_id
        self._rng = np.random.default_rng(seed)
        self._tables: dict[str, pa.Table] = {}
        self._rows: dict[str, Mapping[str, Any]] = {}
        self._connection: duckdb.DuckDBPyConnection | None = None

    def _row(self, dataset: str) -> Mapping[str, Any]:
        if dataset not in self._allowed:
            raise NotAuthorisedError(f"dataset {dataset!r} is not part of this request's plan")
        if dataset not in self._rows:
            with self._engine.connect() as conn:
                self._rows[dataset] = repo.get_dataset_row(conn, dataset)
        return self._rows[dataset]

    def table(self, dataset: str) -> pa.Table:
        row = self._row(dataset)
        if is_remote(row["data_file"]):
            raise InvalidInputError(
                f"dataset {dataset!r} is a table left in its owner's warehouse: only governed "
                "SQL (technique sql) runs on it; ask its owner for an ingested copy"
            )
        if dataset not in self._tables:
            self._tables[dataset] = self._data.read(dataset, row["version"], row["data_file"])
        return self._tables[dataset]

    def warehouse(self, dataset: str) -> PostgresTable | SparkTable | None:
        """The warehouse table of a remote dataset (None: the dataset is in the zone).

        The object runs governed queries; the credentials stay inside it."""
        row = self._row(dataset)
        if not is_remote(row["data_file"]):
            return None
        blob = self._data.open_blob(dataset, row["version"], row["data_file"])
        return open_table(Location.from_bytes(blob))

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            con = sandboxed_duckdb()
            for name in self._allowed:
                if is_remote(self._row(name)["data_file"]):
                    if self._technique not in WAREHOUSE_TECHNIQUES:
                        self.table(name)  # (refuses, naming what runs on it)
                    continue  # (queried in its warehouse, never copied here)
                con.register(name, self.table(name))
            self._connection = con
        return self._connection

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        self._keys.create("zone-techniques")
        version = None
        if purpose.startswith(AUDIT_PURPOSE_PREFIX):
            # the disclosure audit's salt and jitter must outlive key rotation: the hashes
            # it stored are compared with every later release (oldest version still held)
            version = min(self._keys.versions("zone-techniques"))
        return self._keys.derive(
            "zone-techniques", f"{self._zone_id}/{purpose}", length, version=version
        )

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    def spent(self, dataset: str) -> PrivacyCost:
        return self.spent_in(dataset, budget_period_of(self._rules.get(dataset, {}), self.now))

    def history(self, dataset: str) -> list[Mapping[str, Any]]:
        with self._engine.connect() as conn:
            return list(repo.monitor_history(conn, dataset))

    def audit_state(self, space: str) -> tuple[int, bytes] | None:
        with self._engine.connect() as conn:
            return repo.audit_state(conn, space)

    def technique_dir(self) -> Path:
        folder = technique_dir(self._data.root.parent, self._technique)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
