"""The compiled request: everything known about a query before it reads data.

``Compiled`` is what ``compile_request`` (``_compile``) builds and what the checks,
the DP helpers (``_quantities``, ``_order_stats``, ``_postprocess``) and the runners read.
It lives apart from the compiler so those modules can import it without an import circle.
It also builds the governed tree the engine runs (``rewritten``): the rewrite rules of
its mode, in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from collabzone.errors import Reason
from collabzone.techniques.sql import _rules
from collabzone.techniques.sql._dp import Budget
from collabzone.techniques.sql._frontend import ColumnRef, ResolvedQuery
from collabzone.techniques.sql._protect import Protected
from collabzone.techniques.sql._shape import Shape
from collabzone.techniques.sql._templates import TemplateUse
from collabzone.techniques.sql.rules._context import OwnTable, Quantity, RewriteContext, SumBound
from collabzone.techniques.sql.rules.bound_contributions import bound_contributions
from collabzone.techniques.sql.rules.bound_joined_tables import bound_joined_tables
from collabzone.techniques.sql.rules.clamp_values import clamp_values
from collabzone.techniques.sql.rules.enforce_min_group_size import enforce_min_group_size
from collabzone.techniques.sql.rules.enforce_min_list_size import enforce_min_list_size
from collabzone.techniques.sql.rules.limit_rows import limit_rows
from collabzone.techniques.sql.rules.packed_bounding import packable_domains


@dataclass
class Compiled:
    """Everything known about a request before it reads data."""

    spec: Mapping[str, Any]
    mode: str
    query: ResolvedQuery
    shape: Shape
    effective: _rules.Effective
    owners: dict[str, str]
    entity: ColumnRef | None
    budget: Budget | None = None
    public_keys: list[tuple[Any, ...]] | None = None
    quantities: tuple[Quantity, ...] = ()
    quantity_index: dict[str, str] = field(default_factory=dict)
    """Quantity key (``rows``, ``sum:alias.col``...) -> its column in the rewrite."""
    reasons: list[Reason] = field(default_factory=list)
    protected: tuple[Protected, ...] = ()
    """The datasets of other owners in the query (their people are counted and audited)."""
    own_tables: dict[str, OwnTable] = field(default_factory=dict)
    value_bounds: dict[tuple[str, str], SumBound] = field(default_factory=dict)
    template: TemplateUse | None = None

    @property
    def audited(self) -> bool:
        """Whether exact answers leave (aggregation, template) about another owner's data."""
        return self.mode in ("aggregation", "template") and bool(self.protected)

    @property
    def datasets(self) -> tuple[str, ...]:
        return self.query.datasets

    @property
    def entity_unique(self) -> bool:
        """Every person has at most one row in what the query reads, so contribution limits
        of 1 are public facts: one table whose entity column is declared unique (checked
        at ingest), or tables joined only on columns declared unique on both sides, every
        table reached from the entity's (each of its rows then meets at most one row of
        each other table: a join of one-row-per-key tables cannot repeat anyone)."""
        if self.entity is None or not self.entity.column.unique:
            return False
        if len(self.query.tables) == 1:
            return True
        pairs = self.shape.join_pairs
        if not pairs or not all(a.column.unique and b.column.unique for a, b in pairs):
            return False
        reached = {self.entity.alias}
        grown = True
        while grown:
            grown = False
            for a, b in pairs:
                if (a.alias in reached) != (b.alias in reached):
                    reached |= {a.alias, b.alias}
                    grown = True
        return reached == set(self.query.tables)

    def rewrite_context(
        self,
        *,
        collect_members: bool = False,
        member_salt: int = 0,
        salt: int = 0,
        max_rows: int | None = None,
        max_groups: int | None = None,
        engine: str = "duckdb",
    ) -> RewriteContext:
        assert self.entity is not None
        eff = self.effective
        return RewriteContext(
            entities=tuple(_qualified(p.entity) for p in self.protected),
            member_salt=member_salt,
            value_bounds=self.value_bounds,
            own_tables=self.own_tables,
            output_names=tuple(item.name for item in self.shape.items),
            entity=exp.column(
                exp.to_identifier(self.entity.column.name, quoted=True),
                table=exp.to_identifier(self.entity.alias, quoted=True),
            ),
            min_group_size=eff.min_group_size,
            collect_members=collect_members,
            max_result_rows=eff.max_result_rows,
            order_by=tuple(self.shape.order_by),
            limit=self.shape.limit,
            max_rows_per_entity=max_rows or eff.max_rows_per_entity or 1,
            max_groups_per_entity=max_groups or eff.max_groups_per_entity or 1,
            quantities=self.quantities,
            salt=salt,
            entity_unique=self.entity_unique,
            engine=engine,
            group_domains=self._group_domains() if self.mode == "dp" else None,
        )

    def _group_domains(self) -> tuple[tuple[Any, ...], ...] | None:
        """The GROUP BY columns' public domains, when the packed DP bounding can use them."""
        kinds = [
            None if i in self.shape.bins else str(ref.column.type)
            for i, ref in enumerate(self.shape.group_by)
        ]
        return packable_domains(kinds, self.public_keys)

    def rewritten(
        self,
        *,
        collect_members: bool = False,
        member_salt: int = 0,
        salt: int = 0,
        max_rows: int | None = None,
        max_groups: int | None = None,
        engine: str = "duckdb",
    ) -> exp.Select:
        """The governed tree the engine runs (the rules of this mode, in order)."""
        ctx = self.rewrite_context(
            collect_members=collect_members,
            member_salt=member_salt,
            salt=salt,
            max_rows=max_rows,
            max_groups=max_groups,
            engine=engine,
        )
        tree = bound_joined_tables(self.query.tree, ctx=ctx)
        if self.mode == "dp":
            return bound_contributions(tree, ctx=ctx)
        if self.mode == "list":
            return limit_rows(enforce_min_list_size(tree, ctx=ctx), ctx=ctx)
        tree = clamp_values(tree, ctx=ctx)
        return limit_rows(enforce_min_group_size(tree, ctx=ctx), ctx=ctx)


def _qualified(ref: ColumnRef) -> exp.Column:
    return exp.column(
        exp.to_identifier(ref.column.name, quoted=True),
        table=exp.to_identifier(ref.alias, quoted=True),
    )
