"""A deliberately unprotected target: what every attack family must break.

Exact SQL on DuckDB with only a per-cell threshold (no disclosure audit, no clamping, no
bound on an owned join side, DP noise without per-person bounds or a cache), plus, when
asked, the historical mistake one family exploits. tests/attacks/test_sanity.py shows each
family isolating people here, so that isolating nobody on the product means something.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import sqlglot
from sqlglot import exp

from collabzone.attacks import Answer, Question
from collabzone.attacks._target import from_payload, refused
from tests.attacks.attack_support import MIN_GROUP_SIZE


@dataclass
class NaiveTarget:
    """Exact SQL on DuckDB with a per-cell threshold only: what the attacks must break.

    Flags switch on the historical mistakes one attack each exploits: ``monitor`` (refuse
    a release whose people differ from an earlier one's by 1 .. min-1: the refusal is an
    oracle), ``report_suppressed`` (the exact count in the payload), ``suppression_delay``
    (seconds of work per suppressed non-empty row: a timing channel). DP answers add
    Laplace noise for one row per person, with no bound on rows per person after a join
    and no cache. Values are never clamped.
    """

    tables: dict[str, pa.Table]
    protected: str = "adult"
    entity: str = "token"
    min_group_size: int = MIN_GROUP_SIZE
    monitor: bool = False
    report_suppressed: bool = False
    suppression_delay: float = 0.0
    seed: int = 0
    history: list[frozenset[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._con = duckdb.connect()
        for name, table in self.tables.items():
            self._con.register(name, table)
        self._rng = np.random.default_rng(self.seed)

    def upload(self, name: str, table: pa.Table, columns: Sequence[Mapping[str, Any]]) -> str:
        self.tables[name] = table
        self._con.register(name, table)
        return name

    def close(self) -> None:
        self._con.close()

    def _instrumented(self, sql: str) -> tuple[str, int]:
        """The query with each row's people added (and how many outputs it had)."""
        tree = sqlglot.parse_one(sql, read="duckdb")
        assert isinstance(tree, exp.Select)
        alias = self.protected
        for table in tree.find_all(exp.Table):
            if table.name == self.protected:
                alias = table.alias_or_name
        entity = exp.column(self.entity, table=alias)
        outputs = len(tree.expressions)
        tree = tree.select(
            exp.alias_(exp.Count(this=exp.Distinct(expressions=[entity.copy()])), "_n"),
            exp.alias_(exp.func("list", exp.Distinct(expressions=[entity.copy()])), "_m"),
        )
        return tree.sql(dialect="duckdb"), outputs

    def ask(self, question: Question) -> Answer:
        started = time.perf_counter()
        try:
            sql, outputs = self._instrumented(question.sql)
            rows = self._con.execute(sql).fetchall()
        except (duckdb.Error, sqlglot.errors.SqlglotError):
            return refused("INVALID_INPUT", seconds=time.perf_counter() - started)
        if question.epsilon is not None:
            return self._noisy(question.sql, rows, outputs, question.epsilon, started)
        shown, hidden = [], 0
        for row in rows:
            people = frozenset(row[outputs + 1] or ())
            if row[outputs] >= self.min_group_size:
                shown.append((row[:outputs], people))
            elif people:
                hidden += 1
                time.sleep(self.suppression_delay)
        if self.monitor:
            for _, people in shown:
                if any(0 < len(people ^ old) < self.min_group_size for old in self.history):
                    return refused("DIFFERENCING", seconds=time.perf_counter() - started)
            self.history += [people for _, people in shown]
        payload: dict[str, Any] = {"columns": [], "rows": [list(r) for r, _ in shown]}
        if self.report_suppressed:
            payload["suppressed_rows"] = hidden
        return from_payload(payload, seconds=time.perf_counter() - started)

    def _noisy(
        self, sql: str, rows: list[tuple[Any, ...]], outputs: int, epsilon: float, started: float
    ) -> Answer:
        tree = sqlglot.parse_one(sql, read="duckdb")
        noisy = [i for i, e in enumerate(tree.expressions) if e.find(exp.AggFunc) is not None]
        scale = len(noisy) / epsilon
        out = []
        for row in rows:
            values = list(row[:outputs])
            for i in noisy:
                values[i] = float(values[i] or 0) + float(self._rng.laplace(0, scale))
            out.append(values)
        payload = {"columns": [], "rows": out, "spent": {"epsilon": epsilon}}
        return from_payload(payload, seconds=time.perf_counter() - started)
