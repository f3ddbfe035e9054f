"""Compile a request: spec + catalogue + agreements -> checked, rewritten query (no data).

This is the pure heart of governed SQL. It parses and resolves the SQL, decides the
analysis mode, merges the agreements' rules, runs the rule checks and applies the rewrite
rules that the mode needs. ``plan`` prices the result, ``check`` reports its reasons and
``run`` executes its rewritten tree.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from collabzone.errors import InvalidInputError, Reason
from collabzone.model import ColumnType, Dataset
from collabzone.techniques.sql import _rules
from collabzone.techniques.sql._dp import Budget
from collabzone.techniques.sql._frontend import (
    ColumnRef,
    QueryRejected,
    ResolvedQuery,
    parse_select,
    resolve,
)
from collabzone.techniques.sql._shape import Shape, analyse
from collabzone.techniques.sql.rules._context import Quantity, RewriteContext, SumBound
from collabzone.techniques.sql.rules.bind_template import bind_template
from collabzone.techniques.sql.rules.bound_contributions import bound_contributions
from collabzone.techniques.sql.rules.enforce_min_group_size import enforce_min_group_size
from collabzone.techniques.sql.rules.enforce_min_list_size import enforce_min_list_size
from collabzone.techniques.sql.rules.limit_rows import limit_rows

SPEC_KEYS = frozenset(
    {"sql", "template", "params", "analysis", "epsilon", "rho", "delta", "alpha", "engine"}
)
MAX_PUBLIC_GROUPS = 100_000
FLOAT_SUM_SCALE = 100


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

    @property
    def datasets(self) -> tuple[str, ...]:
        return self.query.datasets

    def rewrite_context(
        self,
        *,
        collect_members: bool = False,
        salt: int = 0,
        max_rows: int | None = None,
        max_groups: int | None = None,
    ) -> RewriteContext:
        assert self.entity is not None
        eff = self.effective
        return RewriteContext(
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
        )

    def rewritten(
        self,
        *,
        collect_members: bool = False,
        salt: int = 0,
        max_rows: int | None = None,
        max_groups: int | None = None,
    ) -> exp.Select:
        """The governed tree the engine runs (the rules of this mode, in order)."""
        ctx = self.rewrite_context(
            collect_members=collect_members, salt=salt, max_rows=max_rows, max_groups=max_groups
        )
        tree = self.query.tree
        if self.mode == "dp":
            return bound_contributions(tree, ctx=ctx)
        if self.mode == "list":
            return limit_rows(enforce_min_list_size(tree, ctx=ctx), ctx=ctx)
        return limit_rows(enforce_min_group_size(tree, ctx=ctx), ctx=ctx)


def _template(spec: Mapping[str, Any], rule_sets: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    name = spec["template"]
    found: list[Mapping[str, Any]] = [
        rules["templates"][name]
        for sets in rule_sets.values()
        for rules in sets
        if isinstance(rules.get("templates"), Mapping) and name in rules["templates"]
    ]
    if not found:
        raise QueryRejected(
            "BAD_PARAMETER", f"no agreement shared with you defines template {name!r}"
        )
    template = found[0]
    params = spec.get("params") or {}
    if not isinstance(params, Mapping):
        raise QueryRejected("BAD_PARAMETER", "params must be an object of name: value")
    tree = parse_select(str(template["sql"]))
    bound = bind_template(tree, declared=template.get("params") or {}, values=params)
    return bound.sql(dialect="duckdb")


def _budget(spec: Mapping[str, Any], delta: float) -> Budget:
    epsilon, rho = spec.get("epsilon"), spec.get("rho")
    if epsilon is None and rho is None:
        raise InvalidInputError("a dp query needs an epsilon (pure DP) or a rho (zCDP) budget")
    spec_delta = spec.get("delta")
    return Budget(epsilon=epsilon, rho=rho, delta=delta if spec_delta is None else spec_delta)


def _public_keys(shape: Shape, eff: _rules.Effective) -> list[tuple[Any, ...]] | None:
    domains: list[list[Any]] = []
    for ref in shape.group_by:
        declared = (eff.of(ref.dataset).get("public_domains") or {}).get(ref.column.name)
        if declared is None and isinstance(ref.column.domain, list):
            declared = ref.column.domain
        if declared is None:
            return None
        domains.append(list(declared))
    size = 1
    for domain in domains:
        size *= max(1, len(domain))
    if size > MAX_PUBLIC_GROUPS:
        return None
    return [tuple(k) for k in itertools.product(*domains)]


def _quantities(compiled: Compiled) -> dict[str, Quantity]:
    names: dict[str, Quantity] = {}

    def add(
        key: str, kind: str, ref: ColumnRef | None = None, bound: SumBound | None = None
    ) -> None:
        if key not in names:
            column: exp.Expression | None = None
            if ref is not None:
                column = exp.column(
                    exp.to_identifier(ref.column.name, quoted=True),
                    table=exp.to_identifier(ref.alias, quoted=True),
                )
                if ref.column.type == ColumnType.BOOLEAN:
                    column = exp.Cast(this=column, to=exp.DataType.build("INTEGER"))
            names[key] = Quantity(f"_cz_q{len(names)}", kind, column, bound)

    if compiled.public_keys is None:
        add("rows", "rows")
    for agg in compiled.shape.aggregates:
        if agg.ref is None:
            add("rows", "rows")
        elif agg.func == "COUNT":
            add(f"nonnull:{agg.ref.alias}.{agg.ref.column.name}", "nonnull", agg.ref)
        elif agg.func == "COUNT_DISTINCT":
            add("entities", "entities")
        elif agg.func in ("SUM", "AVG"):
            low_high = _rules.bounds_of(agg.ref, compiled.effective.of(agg.ref.dataset))
            if low_high is None:
                continue
            integral = agg.ref.column.type in (ColumnType.INTEGER, ColumnType.BOOLEAN)
            scale = 1 if integral else FLOAT_SUM_SCALE
            bound = SumBound(round(low_high[0] * scale), round(low_high[1] * scale), scale)
            add(f"sum:{agg.ref.alias}.{agg.ref.column.name}", "sum", agg.ref, bound)
            if agg.func == "AVG":
                add(f"nonnull:{agg.ref.alias}.{agg.ref.column.name}", "nonnull", agg.ref)
    return names


def quantity_key(compiled: Compiled, func: str, ref: ColumnRef | None) -> list[str]:
    """Which quantities (by rewrite name) an aggregate is computed from."""
    by_key = compiled.quantity_index
    if ref is None:
        return [by_key["rows"]]
    col = f"{ref.alias}.{ref.column.name}"
    if func == "COUNT":
        return [by_key[f"nonnull:{col}"]]
    if func == "COUNT_DISTINCT":
        return [by_key["entities"]]
    if func == "SUM":
        return [by_key[f"sum:{col}"]]
    return [by_key[f"sum:{col}"], by_key[f"nonnull:{col}"]]


def _count_booleans(query: ResolvedQuery) -> None:
    """SUM / AVG of a boolean column counts its true values (as integers 0 / 1)."""
    for agg in list(query.tree.find_all(exp.Sum, exp.Avg)):
        arg = agg.this
        if isinstance(arg, exp.Column) and query.ref(arg).column.type == ColumnType.BOOLEAN:
            agg.set("this", exp.Cast(this=arg.copy(), to=exp.DataType.build("INTEGER")))


def compile_request(
    spec: Mapping[str, Any],
    catalogue: Sequence[Dataset],
    rule_sets: Mapping[str, Sequence[Mapping[str, Any]]],
    requester: str,
) -> Compiled:
    """Parse, resolve, merge rules, check and prepare the rewrite of one request."""
    if not isinstance(spec, Mapping):
        raise InvalidInputError("the spec must be an object with a 'sql' or 'template' key")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise InvalidInputError(f"unknown spec keys: {', '.join(sorted(unknown))}")
    if ("sql" in spec) == ("template" in spec):
        raise InvalidInputError("give exactly one of 'sql' or 'template'")
    sql = _template(spec, rule_sets) if "template" in spec else spec["sql"]
    if not isinstance(sql, str):
        raise InvalidInputError("'sql' must be a string")
    tree = parse_select(sql)
    if tree.find(exp.Placeholder) is not None:
        raise QueryRejected("BAD_PARAMETER", "placeholders are allowed only in templates")
    query = resolve(tree, catalogue, copy=False)
    shape = analyse(query)
    _count_booleans(query)
    by_name = {d.name: d for d in catalogue}
    owners = {name: by_name[name].owner for name in query.datasets}
    sets: dict[str, Sequence[Mapping[str, Any]]] = {}
    for name in query.datasets:
        sets[name] = rule_sets.get(name, ())
        if owners[name] == requester:  # an owner may ask anything of its own data
            sets[name] = [{**r, "analysis": list(_rules.MODES)} for r in sets[name]] or [
                {"analysis": list(_rules.MODES)}
            ]
    eff = _rules.merge(sets)
    first_alias = next(iter(query.tables))
    first = by_name[query.tables[first_alias]]
    entity_name = _rules.entity_column(first, eff.of(first.name))
    entity = None
    if entity_name is not None:
        column = first.column(entity_name)
        assert column is not None
        entity = ColumnRef(first_alias, first.name, column)
    mode = _mode(spec, shape, eff, query.datasets)
    compiled = Compiled(spec, mode, query, shape, eff, owners, entity)
    compiled.reasons = _check(compiled, requester)
    if mode == "dp":
        compiled.public_keys = _public_keys(shape, eff)
        compiled.budget = _budget(spec, 0.0 if compiled.public_keys is not None else eff.delta)
        quantities = _quantities(compiled)
        compiled.quantities = tuple(quantities.values())
        compiled.quantity_index = {key: q.name for key, q in quantities.items()}
    return compiled


def _mode(
    spec: Mapping[str, Any], shape: Shape, eff: _rules.Effective, datasets: Sequence[str]
) -> str:
    if "template" in spec:
        return "template"
    asked = spec.get("analysis")
    if asked is not None:
        if asked not in _rules.MODES or asked == "template":
            raise InvalidInputError("analysis must be aggregation, list or dp")
        return str(asked)
    if not shape.is_aggregate:
        return "list"
    everywhere = [set(_rules.allowed_modes(eff.of(d))) for d in datasets]
    wants_dp = spec.get("epsilon") is not None or spec.get("rho") is not None
    if all("dp" in modes for modes in everywhere) and (
        wants_dp or not all("aggregation" in modes for modes in everywhere)
    ):
        return "dp"
    return "aggregation"  # refused later if an agreement does not allow it


def _check(compiled: Compiled, requester: str) -> list[Reason]:
    reasons: list[Reason] = []
    eff, shape, mode = compiled.effective, compiled.shape, compiled.mode
    for dataset in compiled.datasets:
        if mode not in _rules.allowed_modes(eff.of(dataset)):
            reasons.append(
                Reason(
                    "ANALYSIS_NOT_ALLOWED",
                    "sql.analysis",
                    f"the agreement on {dataset!r} does not allow {mode} queries",
                    compiled.owners[dataset],
                )
            )
    if compiled.entity is None:
        first = compiled.datasets[0]
        reasons.append(
            Reason(
                "NO_ENTITY_KEY",
                "sql.entity_key",
                f"dataset {first!r} names no entity key (rule entity_key), so people "
                "behind a row cannot be counted; list it first or ask its owner",
                compiled.owners[first],
            )
        )
    if mode in ("aggregation", "dp", "template") and not shape.is_aggregate:
        reasons.append(
            Reason("BAD_SHAPE", "sql.aggregation", "this analysis releases aggregates only")
        )
    if mode != "template":
        reasons += _rules.check_columns(
            shape, mode, eff, compiled.owners, compiled.entity, requester
        )
    if mode == "list":
        if shape.is_aggregate:
            reasons.append(
                Reason("BAD_SHAPE", "sql.list", "a list releases plain columns, no aggregates")
            )
        if not shape.join_pairs:
            reasons.append(
                Reason(
                    "LIST_NEEDS_OVERLAP",
                    "sql.list",
                    "a list is released only for entities in the overlap: "
                    "JOIN the other party's dataset",
                )
            )
        recipients = eff.list_recipients or ()
        if requester not in recipients:
            reasons.append(
                Reason(
                    "LIST_RECIPIENT",
                    "sql.list_recipients",
                    "the agreement does not name you as a recipient of row-level lists",
                )
            )
    if mode == "dp":
        reasons += _check_dp(compiled)
    return reasons


def _check_dp(compiled: Compiled) -> list[Reason]:
    reasons: list[Reason] = []
    shape, eff, spec = compiled.shape, compiled.effective, compiled.spec
    if any(
        len(item.aggregates) != 1 or not isinstance(item.node, tuple(_AGG_NODES))
        for item in shape.items
        if item.is_aggregate
    ):
        reasons.append(
            Reason(
                "BAD_SHAPE",
                "sql.dp",
                "in dp, output each aggregate on its own (no arithmetic between them)",
            )
        )
    if compiled.query.tree.args.get("having") is not None:
        reasons.append(
            Reason(
                "BAD_SHAPE",
                "sql.dp",
                "HAVING would filter on exact values; filter the noisy result instead",
            )
        )
    epsilon, rho = spec.get("epsilon"), spec.get("rho")
    if (
        eff.max_epsilon is not None
        and isinstance(epsilon, int | float)
        and epsilon > eff.max_epsilon
    ):
        reasons.append(
            Reason(
                "EPSILON_TOO_HIGH",
                "sql.max_epsilon_per_query",
                f"epsilon per query is capped at {eff.max_epsilon}",
            )
        )
    if eff.max_rho is not None and isinstance(rho, int | float) and rho > eff.max_rho:
        reasons.append(
            Reason(
                "EPSILON_TOO_HIGH",
                "sql.max_rho_per_query",
                f"rho per query is capped at {eff.max_rho}",
            )
        )
    return reasons


_AGG_NODES = (exp.Count, exp.Sum, exp.Avg)
