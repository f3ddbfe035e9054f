"""Run the look-alike technique on in-memory tables, outside any zone.

The attack library and the benchmark call :func:`run_local` to replay the technique's own
``plan -> check -> run -> release`` many times on generated worlds without a store (the
same code path as in the zone, minus persistence, pacing and audit). Never used to serve a
request: the zone's :class:`~collabzone.runtime.ZoneContext` does that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from collabzone.budget import PrivacyCost
from collabzone.errors import ConflictError, NotFoundError, PolicyRefusal
from collabzone.model import Agreement, Approval, Column, Dataset, Party, Role
from collabzone.techniques.base import Outcome, Rules
from collabzone.techniques.lookalike._technique import Lookalike

_NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _dataset(
    name: str, owner: str, table: pa.Table, columns: Sequence[Mapping[str, Any]]
) -> Dataset:
    return Dataset(
        name=name,
        owner=owner,
        columns=tuple(Column.model_validate(c) for c in columns),
        row_count=table.num_rows,
        version=1,
        created_at=_NOW,
    )


class LocalContext:
    """A RunContext over Arrow tables: ``tables`` maps name -> (owner, table, column specs)."""

    def __init__(
        self,
        tables: Mapping[str, tuple[str, pa.Table, Sequence[Mapping[str, Any]]]],
        requester: str,
        rules: Mapping[str, Mapping[str, Any]],
        key: bytes = bytes(32),
        seed: int = 0,
    ) -> None:
        self._tables = {n: t for n, (_, t, _) in tables.items()}
        self._datasets = {n: _dataset(n, o, t, c) for n, (o, t, c) in tables.items()}
        self._requester = Party(name=requester, roles=(Role.ANALYST,), created_at=_NOW)
        self._agreements = [
            Agreement(id=f"local-{n}", dataset=n, owner=self._datasets[n].owner,
                      grantees=(requester,), technique="lookalike", purposes=("*",),
                      rules=dict(r), approval=Approval.AUTO, valid_from=_NOW,
                      valid_until=None, created_at=_NOW)
            for n, r in rules.items()
        ]  # fmt: skip
        self._key = key
        self._rng = np.random.default_rng(seed)

    @property
    def requester(self) -> Party:
        return self._requester

    @property
    def now(self) -> dt.datetime:
        return _NOW

    @property
    def purpose(self) -> str:
        return "local"

    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            raise NotFoundError(f"no dataset named {name!r}")
        return self._datasets[name]

    def visible_datasets(self) -> list[Dataset]:
        return list(self._datasets.values())

    def agreements_for(self, dataset: str) -> list[Agreement]:
        return [a for a in self._agreements if a.dataset == dataset]

    def party(self, name: str) -> Party:
        return Party(name=name, roles=(Role.PROVIDER,), created_at=_NOW)

    def table(self, dataset: str) -> pa.Table:
        return self._tables[dataset]

    def connection(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        for name, table in self._tables.items():
            con.register(name, table)
        return con

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        return (self._key * (1 + length // max(1, len(self._key))))[:length]

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    def spent(self, dataset: str) -> PrivacyCost:
        return PrivacyCost()

    def history(self, dataset: str) -> list[Mapping[str, Any]]:
        return []

    def audit_state(self, space: str) -> tuple[int, bytes] | None:
        return None

    def technique_dir(self) -> Path:
        raise ConflictError("a local look-alike run keeps no files in a zone")


def run_local(ctx: LocalContext, spec: Mapping[str, Any]) -> Outcome:
    """plan, check (refusals raise PolicyRefusal), run and release, as the zone would."""
    technique = Lookalike()
    plan = technique.plan(spec, ctx)
    by_dataset = {n: a.rules for n in plan.datasets for a in ctx.agreements_for(n)}
    merged: dict[str, Any] = {}
    for one in by_dataset.values():
        merged.update(one)
    rules = Rules(by_dataset=by_dataset, merged=merged)
    reasons = technique.check(plan, rules, ctx)
    if reasons:
        raise PolicyRefusal(reasons)
    return technique.release(plan, technique.run(plan, ctx), rules)
