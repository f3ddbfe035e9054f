"""Compile a request: spec + catalogue + agreements -> checked, rewritten query (no data).

This is the pure heart of governed SQL. It parses and resolves the SQL, decides the
analysis mode, merges the agreements' rules, runs the rule checks and applies the rewrite
rules that the mode needs. ``plan`` prices the result, ``check`` reports its reasons and
``run`` executes its rewritten tree.

The pieces live in their own modules: ``_compiled`` (the result), ``_checks`` (rule
checks), ``_value_bounds`` (exact-mode clamping), ``_dp_params`` (budget and public
groups), ``_quantities`` / ``_moments`` (the noisy quantities of dp mode) and
``_small_data`` (refusing limits that cannot be derived).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

from collabzone.errors import InvalidInputError
from collabzone.model import ColumnType, Dataset
from collabzone.techniques.sql import _quantities, _rules
from collabzone.techniques.sql._bounds import CANDIDATES, too_wide
from collabzone.techniques.sql._checks import check, distinct_only
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._dp_params import budget, grouped_order_statistics, public_keys
from collabzone.techniques.sql._frontend import (
    ColumnRef,
    QueryRejected,
    ResolvedQuery,
    parse_select,
    resolve,
)
from collabzone.techniques.sql._protect import protected_of
from collabzone.techniques.sql._shape import Shape, analyse
from collabzone.techniques.sql._small_data import limits_needed
from collabzone.techniques.sql._templates import find_template
from collabzone.techniques.sql._value_bounds import value_bounds
from collabzone.techniques.sql.rules._context import OwnTable

SPEC_KEYS = frozenset(
    {"sql", "template", "params", "analysis", "epsilon", "rho", "delta", "alpha", "engine"}
)


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
    compiled.reasons = entity_reasons + check(compiled, requester)
    if mode in ("aggregation", "template"):
        compiled.value_bounds, problems = value_bounds(compiled)
        compiled.reasons += problems
    if mode == "dp":
        # which values occur is what SELECT DISTINCT asks: never from a public domain
        compiled.public_keys = None if distinct_only(shape) else public_keys(shape, eff)
        compiled.budget, problems = budget(spec, eff, public=compiled.public_keys is not None)
        compiled.reasons += problems
        compiled.reasons += grouped_order_statistics(shape, compiled.public_keys, owners)
        quantities = _quantities.quantities(compiled)
        compiled.quantities = tuple(quantities.values())
        compiled.quantity_index = {key: q.name for key, q in quantities.items()}
        compiled.reasons += limits_needed(compiled, by_name)
        compiled.reasons += too_wide(
            compiled.quantities,
            rows=eff.max_rows_per_entity or CANDIDATES[-1],
            groups=(eff.max_groups_per_entity or CANDIDATES[-1]) if shape.group_by else 1,
        )
    return compiled


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
