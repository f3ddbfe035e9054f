"""Compile a request: spec + catalogue + agreements -> checked, rewritten query (no data).

This is the pure heart of governed SQL. It parses and resolves the SQL, decides the
analysis mode, merges the agreements' rules, runs the rule checks and applies the rewrite
rules that the mode needs. ``plan`` prices the result, ``check`` reports its reasons and
``run`` executes its rewritten tree.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from collabzone.budget import privacy_parameter
from collabzone.errors import InvalidInputError, Reason
from collabzone.model import ColumnType, Dataset
from collabzone.techniques.sql import _postcheck, _rules
from collabzone.techniques.sql._bins import bin_domain
from collabzone.techniques.sql._bounds import (
    AUTO_SHARE,
    CANDIDATES,
    bad_bounds,
    scaled_bound,
    too_wide,
)
from collabzone.techniques.sql._dp import Budget
from collabzone.techniques.sql._frontend import (
    ColumnRef,
    QueryRejected,
    ResolvedQuery,
    parse_select,
    resolve,
)
from collabzone.techniques.sql._protect import (
    Protected,
    mixed_conditions,
    protected_of,
    self_joins,
    text_ranges,
)
from collabzone.techniques.sql._shape import QUANTILE_FUNCS, Aggregate, Shape, analyse
from collabzone.techniques.sql._templates import TemplateUse, find_template, unapproved
from collabzone.techniques.sql.rules._context import OwnTable, Quantity, RewriteContext, SumBound
from collabzone.techniques.sql.rules.bound_contributions import bound_contributions
from collabzone.techniques.sql.rules.bound_joined_tables import bound_joined_tables
from collabzone.techniques.sql.rules.clamp_values import clamp_values
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
        """One table whose entity column is declared unique (checked at ingest): every
        person has exactly one row, so contribution limits of 1 are public facts."""
        return self.entity is not None and self.entity.column.unique and len(self.query.tables) == 1

    def rewrite_context(
        self,
        *,
        collect_members: bool = False,
        member_salt: int = 0,
        salt: int = 0,
        max_rows: int | None = None,
        max_groups: int | None = None,
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
        )

    def rewritten(
        self,
        *,
        collect_members: bool = False,
        member_salt: int = 0,
        salt: int = 0,
        max_rows: int | None = None,
        max_groups: int | None = None,
    ) -> exp.Select:
        """The governed tree the engine runs (the rules of this mode, in order)."""
        ctx = self.rewrite_context(
            collect_members=collect_members,
            member_salt=member_salt,
            salt=salt,
            max_rows=max_rows,
            max_groups=max_groups,
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


def _budget(
    spec: Mapping[str, Any], eff: _rules.Effective, *, public: bool
) -> tuple[Budget, list[Reason]]:
    """The query's DP budget from its spec, and the reasons it is looser than the agreements.

    A spec may only tighten what the agreements set: epsilon and rho are capped by
    ``max_epsilon_per_query`` / ``max_rho_per_query`` (see ``_check_dp``), delta by the
    merged ``dp_delta`` (a larger delta would lower the partition-selection threshold).
    ``alpha`` only sets the width of the reported intervals (post-processing of public
    scales), so any value in (0, 1) is accepted. Malformed values raise InvalidInputError.
    """
    epsilon, rho = spec.get("epsilon"), spec.get("rho")
    if epsilon is None and rho is None:
        raise InvalidInputError("a dp query needs an epsilon (pure DP) or a rho (zCDP) budget")
    alpha = spec.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise InvalidInputError("alpha must be a number between 0 and 1 (e.g. 0.05)")
    asked = spec.get("delta")
    if asked is not None:
        asked = privacy_parameter("delta", asked)
    reasons: list[Reason] = []
    if public:  # public groups: no partition selection, no delta spent
        delta = 0.0
    elif asked is None:
        delta = eff.delta
    elif asked > eff.delta:
        reasons.append(
            Reason(
                "DELTA_TOO_HIGH",
                "sql.dp_delta",
                f"delta may only be lowered: the agreements allow at most {eff.delta:g}",
            )
        )
        delta = eff.delta
    elif asked == 0:
        reasons.append(
            Reason(
                "DELTA_REQUIRED",
                "sql.dp_delta",
                "groups without a public domain are selected privately, which needs a "
                "delta above 0: omit delta or declare public_domains for the GROUP BY columns",
            )
        )
        delta = eff.delta
    else:
        delta = asked
    return Budget(epsilon=epsilon, rho=rho, delta=delta), reasons


def _public_keys(shape: Shape, eff: _rules.Effective) -> list[tuple[Any, ...]] | None:
    domains: list[list[Any]] = []
    for index, ref in enumerate(shape.group_by):
        if index in shape.bins:  # a public bin: its values follow from literals and bounds
            declared = bin_domain(shape.bins[index], _rules.bounds_of(ref, eff.of(ref.dataset)))
            if declared is None:
                return None
            domains.append(declared)
            continue
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
        elif agg.func == "COUNT_DISTINCT" and not _is_entity(compiled, agg.ref):
            add(f"distinct:{agg.ref.alias}.{agg.ref.column.name}", "distinct", agg.ref)
        elif agg.func == "COUNT_DISTINCT":
            add("entities", "entities")
        elif agg.func in ("SUM", "AVG", *MOMENTS):
            low_high = _rules.bounds_of(agg.ref, compiled.effective.of(agg.ref.dataset))
            if low_high is None:
                continue
            integral = agg.ref.column.type in (ColumnType.INTEGER, ColumnType.BOOLEAN)
            scale = 1 if integral else FLOAT_SUM_SCALE
            bound = scaled_bound(low_high, scale)
            if bound is None:
                compiled.reasons.append(
                    bad_bounds(agg.ref.column.name, compiled.owners[agg.ref.dataset])
                )
                continue
            col = f"{agg.ref.alias}.{agg.ref.column.name}"
            add(f"sum:{col}", "sum", agg.ref, bound)
            if agg.func != "SUM":
                add(f"nonnull:{col}", "nonnull", agg.ref)
            if agg.func in MOMENTS:
                squares = scaled_bound(_square_bounds(low_high), scale)
                if squares is None:
                    compiled.reasons.append(
                        bad_bounds(agg.ref.column.name, compiled.owners[agg.ref.dataset])
                    )
                    continue
                if f"sumsq:{col}" not in names:
                    names[f"sumsq:{col}"] = Quantity(
                        f"_cz_q{len(names)}", "sum", _clamped_square(agg.ref, low_high), squares
                    )
    return names


MOMENTS = ("VAR", "VAR_POP", "STDDEV", "STDDEV_POP")
"""Aggregates computed (as SmartNoise does) from noisy SUM(x), SUM(x * x) and COUNT(x)."""


def _square_bounds(low_high: tuple[float, float]) -> tuple[float, float]:
    """Where x * x lies when x lies in [low, high]."""
    low, high = low_high
    top = max(low * low, high * high)
    return (0.0 if low <= 0 <= high else min(low * low, high * high)), top


def _clamped_square(ref: ColumnRef, low_high: tuple[float, float]) -> exp.Expression:
    """x clamped to its bounds, squared (NULL stays NULL): the value SUM(x * x) adds up."""
    column: exp.Expression = exp.column(
        exp.to_identifier(ref.column.name, quoted=True),
        table=exp.to_identifier(ref.alias, quoted=True),
    )
    if ref.column.type == ColumnType.BOOLEAN:
        column = exp.Cast(this=column, to=exp.DataType.build("INTEGER"))
    low, high = (exp.Literal.number(v) for v in low_high)
    clamped = exp.Least(
        this=exp.Greatest(this=column.copy(), expressions=[low]), expressions=[high]
    )
    square = exp.Mul(this=exp.Paren(this=clamped), expression=exp.Paren(this=clamped.copy()))
    return exp.If(
        this=exp.Is(this=column.copy(), expression=exp.Null()), true=exp.Null(), false=square
    )


def quantity_key(
    compiled: Compiled, func: str, ref: ColumnRef | None, q: float | None = None
) -> list[str]:
    """Which quantities (by rewrite name) an aggregate is computed from."""
    by_key = compiled.quantity_index
    if ref is None:
        return [by_key["rows"]]
    col = f"{ref.alias}.{ref.column.name}"
    if func == "COUNT":
        return [by_key[f"nonnull:{col}"]]
    if func == "COUNT_DISTINCT":
        return [by_key["entities" if _is_entity(compiled, ref) else f"distinct:{col}"]]
    if func == "SUM":
        return [by_key[f"sum:{col}"]]
    if func in QUANTILE_FUNCS:
        return [order_statistic_key(func, ref, q)]
    if func in MOMENTS:
        return [by_key[f"sum:{col}"], by_key[f"sumsq:{col}"], by_key[f"nonnull:{col}"]]
    return [by_key[f"sum:{col}"], by_key[f"nonnull:{col}"]]


def order_statistic_key(func: str, ref: ColumnRef, q: float | None) -> str:
    """The name of one released order statistic (MIN, MAX, MEDIAN, QUANTILE_CONT)."""
    return f"_cz_os:{ref.alias}.{ref.column.name}@{q}"


def order_statistics(compiled: Compiled) -> list[Aggregate]:
    """The distinct order statistics a DP query releases (each one private quantile)."""
    seen: dict[str, Aggregate] = {}
    for agg in compiled.shape.aggregates:
        if agg.func in QUANTILE_FUNCS and agg.ref is not None:
            seen.setdefault(order_statistic_key(agg.func, agg.ref, agg.q), agg)
    return list(seen.values())


def _is_entity(compiled: Compiled, ref: ColumnRef) -> bool:
    """Whether COUNT(DISTINCT ref) counts people (the entity key) rather than values."""
    return compiled.entity is not None and ref.key == compiled.entity.key


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
    template = find_template(spec, rule_sets) if "template" in spec else None
    sql = template.sql if template is not None else spec["sql"]
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
    protected, entity_reasons = protected_of(query, by_name, owners, eff.by_dataset, requester)
    entity = protected[0].entity if protected else None
    if entity is None and not entity_reasons:
        # only the requester's own data: its first table's people are counted
        first_alias = next(iter(query.tables))
        first = by_name[query.tables[first_alias]]
        entity_name = _rules.entity_column(first, eff.of(first.name))
        if entity_name is not None:
            column = first.column(entity_name)
            assert column is not None
            entity = ColumnRef(first_alias, first.name, column)
    mode = _mode(spec, shape, eff, query.datasets)
    if shape.group_by and not shape.is_aggregate and mode != "dp":
        raise QueryRejected(
            "BAD_SHAPE",
            "GROUP BY without aggregates (SELECT DISTINCT) is released in dp mode only, "
            "through private partition selection: give an epsilon or rho, or add COUNT(*)",
        )
    compiled = Compiled(
        spec, mode, query, shape, eff, owners, entity, protected=tuple(protected), template=template
    )
    if protected:
        compiled.own_tables = _own_tables(query, shape, by_name, owners, requester)
    compiled.reasons = entity_reasons + _check(compiled, requester)
    if mode in ("aggregation", "template"):
        compiled.value_bounds, problems = _value_bounds(compiled)
        compiled.reasons += problems
    if mode == "dp":
        # which values occur is what SELECT DISTINCT asks: never from a public domain
        compiled.public_keys = None if distinct_only(shape) else _public_keys(shape, eff)
        compiled.budget, problems = _budget(spec, eff, public=compiled.public_keys is not None)
        compiled.reasons += problems
        quantities = _quantities(compiled)
        compiled.quantities = tuple(quantities.values())
        compiled.quantity_index = {key: q.name for key, q in quantities.items()}
        compiled.reasons += _limits_needed(compiled, by_name)
        compiled.reasons += too_wide(
            compiled.quantities,
            rows=eff.max_rows_per_entity or CANDIDATES[-1],
            groups=(eff.max_groups_per_entity or CANDIDATES[-1]) if shape.group_by else 1,
        )
    return compiled


MIN_DERIVATION_SIGNAL = 20.0
"""Least (rows x budget share) for which the private derivation of a contribution limit
is worth its cost: below it the derived limit is mostly noise (issue 11 saw 16 rows and 32
groups per person on a 500-row table at epsilon 0.1) and the answer useless."""


def _limits_needed(compiled: Compiled, by_name: Mapping[str, Dataset]) -> list[Reason]:
    """Refuse, before reading data, a DP query whose contribution limits would have to be
    derived from too few rows (the catalogue's row count) for the budget asked."""
    eff, budget, entity = compiled.effective, compiled.budget, compiled.entity
    if budget is None or entity is None or compiled.entity_unique:
        return []
    missing = [
        name
        for name, value, needed in (
            ("max_rows_per_entity", eff.max_rows_per_entity, True),
            ("max_groups_per_entity", eff.max_groups_per_entity, bool(compiled.shape.group_by)),
        )
        if needed and value is None
    ]
    if not missing:
        return []
    total = budget.epsilon if budget.epsilon is not None else math.sqrt(2 * (budget.rho or 0))
    share = total * AUTO_SHARE / len(missing)
    rows = by_name[entity.dataset].row_count
    if rows * share >= MIN_DERIVATION_SIGNAL:
        return []
    return [
        Reason(
            "LIMITS_NEEDED",
            "sql.max_rows_per_entity",
            f"{entity.dataset!r} has {rows} rows, too few to derive {' and '.join(missing)} "
            f"privately at this budget (the answer would be mostly noise): declare "
            f"{' and '.join(missing)} in the agreement (1 when each person has one row), "
            "or ask with a larger epsilon",
            compiled.owners[entity.dataset],
        )
    ]


def distinct_only(shape: Shape) -> bool:
    """SELECT DISTINCT dims (or GROUP BY dims without aggregates): released in dp mode
    through private partition selection on a noisy count of rows per group."""
    return (
        bool(shape.group_by)
        and not shape.is_aggregate
        and all(item.dimension is not None for item in shape.items)
    )


def _own_tables(
    query: ResolvedQuery,
    shape: Shape,
    by_name: Mapping[str, Dataset],
    owners: Mapping[str, str],
    requester: str,
) -> dict[str, OwnTable]:
    """The requester's own tables and the key columns each is joined on."""
    out: dict[str, OwnTable] = {}
    for alias, name in query.tables.items():
        if owners[name] != requester:
            continue
        keys = []
        for left, right in shape.join_pairs:
            for ref in (left, right):
                if ref.alias == alias and ref.column.name not in keys:
                    keys.append(ref.column.name)
        if keys:
            columns = tuple(c.name for c in by_name[name].columns)
            out[alias] = OwnTable(name, tuple(keys), columns)
    return out


MAX_SCALED_BOUND = 2**62
"""Largest clamping bound (after scaling to an integer) whose exact sums cannot overflow."""


def _value_bounds(
    compiled: Compiled,
) -> tuple[dict[tuple[str, str], SumBound], list[Reason]]:
    """Clamping bounds of every SUM / AVG / MIN / MAX over a protected column."""
    protected = {p.alias for p in compiled.protected}
    bounds: dict[tuple[str, str], SumBound] = {}
    reasons: list[Reason] = []
    for agg in compiled.shape.aggregates:
        ref = agg.ref
        if (
            ref is None
            or ref.alias not in protected
            or agg.func not in ("SUM", "AVG", "MIN", "MAX")
        ):
            continue
        found = _rules.bounds_of(ref, compiled.effective.of(ref.dataset))
        owner = compiled.owners[ref.dataset]
        if found is None:
            reasons.append(
                Reason(
                    "MISSING_BOUNDS",
                    "sql.bounds",
                    f"{agg.func} of {ref.column.name!r} needs clamping bounds: the column's "
                    "declared min/max domain or the agreement's rule bounds",
                    owner,
                )
            )
            continue
        integral = ref.column.type in (ColumnType.INTEGER, ColumnType.BOOLEAN)
        scale = 1 if integral else FLOAT_SUM_SCALE
        low, high = round(found[0] * scale), round(found[1] * scale)
        if max(abs(low), abs(high)) > MAX_SCALED_BOUND or low > high:
            reasons.append(
                Reason(
                    "BOUNDS_TOO_WIDE",
                    "sql.bounds",
                    f"the bounds of {ref.column.name!r} must be ordered and within "
                    f"+-{MAX_SCALED_BOUND // scale:.3g}",
                    owner,
                )
            )
            continue
        bounds[(ref.alias, ref.column.name)] = SumBound(low, high, scale)
    return bounds, reasons


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
    wants_dp = spec.get("epsilon") is not None or spec.get("rho") is not None
    if not shape.is_aggregate:
        # SELECT DISTINCT / GROUP BY without aggregates, with a budget: private selection
        return "dp" if wants_dp and shape.group_by else "list"
    everywhere = [set(_rules.allowed_modes(eff.of(d))) for d in datasets]
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
    if compiled.entity is None and all(o == requester for o in compiled.owners.values()):
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
    if (
        mode in ("aggregation", "dp", "template")
        and not shape.is_aggregate
        and not (mode == "dp" and distinct_only(shape))
    ):
        reasons.append(
            Reason("BAD_SHAPE", "sql.aggregation", "this analysis releases aggregates only")
        )
    if mode != "template":
        reasons += _rules.check_columns(
            shape, mode, eff, compiled.owners, compiled.entity, requester
        )
    elif compiled.template is not None:
        reasons += unapproved(compiled.template, compiled.datasets, compiled.owners, requester)
    if compiled.protected and mode in ("aggregation", "template", "list"):
        reasons += self_joins(compiled.query, compiled.protected)
    if compiled.audited:
        reasons += mixed_conditions(compiled.query) + text_ranges(shape, compiled.protected)
    if mode == "list":
        reasons += _list_overlap(compiled, requester)
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
    else:
        reasons += _postcheck.functions_outside_dp(compiled)
    return reasons


def _list_overlap(compiled: Compiled, requester: str) -> list[Reason]:
    """A list is an overlap: each join matches datasets of two different owners, on join
    keys their rules list."""
    reasons: list[Reason] = []
    for left, right in compiled.shape.join_pairs:
        if compiled.owners[left.dataset] == compiled.owners[right.dataset]:
            reasons.append(
                Reason(
                    "LIST_NEEDS_OVERLAP",
                    "sql.list",
                    f"{left.dataset!r} and {right.dataset!r} have the same owner: a list is "
                    "released only for rows matched against another owner's dataset",
                    compiled.owners[left.dataset]
                    if compiled.owners[left.dataset] != requester
                    else None,
                )
            )
    return reasons


def _check_dp(compiled: Compiled) -> list[Reason]:
    reasons: list[Reason] = []
    eff, spec = compiled.effective, compiled.spec
    reasons += _postcheck.check(compiled)  # arithmetic, HAVING: on the noisy values only
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
