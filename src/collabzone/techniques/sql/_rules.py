"""Agreement rules of governed SQL: their specs, their most-restrictive merge, the checks.

Rules are read per dataset (``by_dataset``). Parameters that speak of one dataset's
columns (allowed aggregates, dimensions, join keys, bounds, list columns, templates) stay
per dataset; numeric and flag parameters merge most restrictively across every agreement
a request needs (largest minimum group size, smallest caps, any protection flag).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from collabzone.errors import Reason
from collabzone.model import ColumnClass, ColumnType, Dataset
from collabzone.techniques.base import Merge, RuleSpec
from collabzone.techniques.sql._frontend import ColumnRef
from collabzone.techniques.sql._shape import DP_ONLY, Condition, Shape

MODES = ("aggregation", "list", "template", "dp")
DEFAULT_MIN_GROUP_SIZE = 10
DEFAULT_DELTA = 1e-6
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RESULT_ROWS = 100_000

RULE_SPECS: tuple[RuleSpec, ...] = (
    RuleSpec(
        "analysis",
        Merge.PER_DATASET,
        "allowed analyses: aggregation, list, template, dp",
        (str, list),
    ),
    RuleSpec("min_group_size", Merge.AT_LEAST, "distinct entities behind every released row", int),
    RuleSpec(
        "aggregates",
        Merge.PER_DATASET,
        "{column: [COUNT, COUNT_DISTINCT, SUM, AVG, MIN, MAX]}",
        dict,
    ),
    RuleSpec("dimensions", Merge.PER_DATASET, "columns usable in GROUP BY and WHERE", list),
    RuleSpec("join_keys", Merge.PER_DATASET, "columns usable only in JOIN ... ON", list),
    RuleSpec("entity_key", Merge.PER_DATASET, "the column whose values are people", str),
    RuleSpec("list_columns", Merge.PER_DATASET, "columns a list release may output", list),
    RuleSpec("list_recipients", Merge.SUBSET, "parties that may receive row-level lists", list),
    RuleSpec(
        "templates", Merge.PER_DATASET, "{name: {sql, params: {p: {type, min, max, values}}}}", dict
    ),
    RuleSpec(
        "bounds", Merge.PER_DATASET, "{column: [low, high]} clamping bounds for DP sums", dict
    ),
    RuleSpec(
        "public_domains", Merge.PER_DATASET, "{column: [values]} public group keys for DP", dict
    ),
    RuleSpec("max_rows_per_entity", Merge.AT_MOST, "DP: rows per entity per group", int),
    RuleSpec("max_groups_per_entity", Merge.AT_MOST, "DP: groups per entity", int),
    RuleSpec("max_epsilon_per_query", Merge.AT_MOST, "DP: epsilon cap per query", (int, float)),
    RuleSpec("max_rho_per_query", Merge.AT_MOST, "DP: rho cap per query", (int, float)),
    RuleSpec("dp_delta", Merge.AT_MOST, "DP: delta for private partition selection", (int, float)),
    RuleSpec("query_monitor", Merge.ANY, "refuse differencing against earlier releases", bool),
    RuleSpec(
        "monitor_across_parties",
        Merge.ANY,
        "deprecated: the audit combines every analyst's releases unless audit_scope narrows it",
        bool,
    ),
    RuleSpec("max_result_rows", Merge.AT_MOST, "largest result released", int),
    RuleSpec(
        "audit_scope",
        Merge.SAME,
        "whose releases the disclosure audit combines: all (default) or requester",
        str,
    ),
    RuleSpec(
        "threshold_jitter",
        Merge.AT_LEAST,
        "keyed, content-sticky raise of the minimum group size (default half of it)",
        int,
    ),
    RuleSpec("timeout_seconds", Merge.AT_MOST, "statement timeout", (int, float)),
)

_DEFAULT_AGGREGATES: Mapping[ColumnClass, tuple[str, ...]] = {
    ColumnClass.MEASURE: ("COUNT", "SUM", "AVG"),
    ColumnClass.DIMENSION: ("COUNT", "COUNT_DISTINCT"),
    ColumnClass.JOIN_KEY: ("COUNT_DISTINCT",),
    ColumnClass.LABEL: ("COUNT",),
}


@dataclass(frozen=True)
class Effective:
    """The rules that apply to one request, merged most restrictively."""

    by_dataset: Mapping[str, Mapping[str, Any]]
    min_group_size: int
    max_rows_per_entity: int | None
    max_groups_per_entity: int | None
    max_epsilon: float | None
    max_rho: float | None
    delta: float
    monitor: bool
    across_parties: bool
    max_result_rows: int
    timeout_s: float
    list_recipients: tuple[str, ...] | None
    audit_scope: str = "all"
    """``all``: the audit combines every analyst's releases; ``requester``: only this one's."""
    threshold_jitter: int | None = None

    def of(self, dataset: str) -> Mapping[str, Any]:
        return self.by_dataset.get(dataset, {})

    def to_json(self) -> dict[str, Any]:
        return {
            "min_group_size": self.min_group_size,
            "max_rows_per_entity": self.max_rows_per_entity,
            "max_groups_per_entity": self.max_groups_per_entity,
            "max_epsilon": self.max_epsilon,
            "max_rho": self.max_rho,
            "delta": self.delta,
            "monitor": self.monitor,
            "across_parties": self.across_parties,
            "audit_scope": self.audit_scope,
            "threshold_jitter": self.threshold_jitter,
            "max_result_rows": self.max_result_rows,
            "timeout_s": self.timeout_s,
        }


def _values(rule_sets: Iterable[Mapping[str, Any]], name: str) -> list[Any]:
    return [r[name] for r in rule_sets if r.get(name) is not None]


_LISTS = ("dimensions", "list_columns", "join_keys")


def _narrow(key: str, old: Any, new: Any) -> Any:
    """Two agreements on one dataset: keep what both allow (lists, modes, aggregates)."""
    if key == "analysis":
        both = [
            m for m in allowed_modes({"analysis": old}) if m in allowed_modes({"analysis": new})
        ]
        return both
    if key in _LISTS and isinstance(old, list) and isinstance(new, list):
        return [v for v in old if v in new]
    if key == "aggregates" and isinstance(old, Mapping) and isinstance(new, Mapping):
        return {c: [f for f in old[c] if f in new[c]] for c in old if c in new}
    return old


def merge(by_dataset: Mapping[str, Iterable[Mapping[str, Any]]]) -> Effective:
    """Merge the rules of every agreement behind a request (several per dataset allowed)."""
    per: dict[str, dict[str, Any]] = {}
    everything: list[Mapping[str, Any]] = []
    for dataset, rule_sets in by_dataset.items():
        merged: dict[str, Any] = {}
        for rules in rule_sets:
            everything.append(rules)
            for key, value in rules.items():
                merged[key] = _narrow(key, merged[key], value) if key in merged else value
        per[dataset] = merged
    mins = [int(v) for v in _values(everything, "min_group_size")]
    recipients = _values(everything, "list_recipients")
    common: set[str] | None = None
    for group in recipients:
        common = set(group) if common is None else common & set(group)

    def smallest(name: str) -> Any:
        found = _values(everything, name)
        return min(found) if found else None

    return Effective(
        by_dataset=per,
        min_group_size=max(mins) if mins else DEFAULT_MIN_GROUP_SIZE,
        max_rows_per_entity=smallest("max_rows_per_entity"),
        max_groups_per_entity=smallest("max_groups_per_entity"),
        max_epsilon=smallest("max_epsilon_per_query"),
        max_rho=smallest("max_rho_per_query"),
        delta=smallest("dp_delta") or DEFAULT_DELTA,
        monitor=not everything
        or any(r.get("query_monitor", True) is not False for r in everything),
        across_parties=any(bool(v) for v in _values(everything, "monitor_across_parties")),
        audit_scope=(
            "requester"
            if everything and all(r.get("audit_scope") == "requester" for r in everything)
            else "all"
        ),
        threshold_jitter=max(_values(everything, "threshold_jitter"), default=None),
        max_result_rows=smallest("max_result_rows") or DEFAULT_MAX_RESULT_ROWS,
        timeout_s=float(smallest("timeout_seconds") or DEFAULT_TIMEOUT_S),
        list_recipients=tuple(sorted(common)) if common is not None else None,
    )


def allowed_modes(rules: Mapping[str, Any]) -> tuple[str, ...]:
    value = rules.get("analysis", "aggregation")
    modes = (value,) if isinstance(value, str) else tuple(value)
    return tuple(m for m in modes if m in MODES)


def entity_column(dataset: Dataset, rules: Mapping[str, Any]) -> str | None:
    """The column whose distinct values count people: the rule, else the first join key
    (``collabzone link prepare`` writes the match keys in priority order, best first)."""
    named = rules.get("entity_key")
    if isinstance(named, str) and dataset.column(named) is not None:
        return named
    keys = [c.name for c in dataset.columns_of(ColumnClass.JOIN_KEY)]
    return keys[0] if keys else None


def _dimensions(ref: ColumnRef, rules: Mapping[str, Any]) -> bool:
    listed = rules.get("dimensions")
    if listed is not None:
        return ref.column.name in listed
    return ref.column.column_class == ColumnClass.DIMENSION


def _joinable(ref: ColumnRef, rules: Mapping[str, Any]) -> bool:
    """Whether ``ref`` may appear in JOIN ... ON: the rule's list when it gives one (it
    narrows), else any column of class join_key."""
    listed = rules.get("join_keys")
    if listed is not None:
        return ref.column.name in listed
    return ref.column.column_class == ColumnClass.JOIN_KEY


def _is_join_key(ref: ColumnRef, rules: Mapping[str, Any]) -> bool:
    listed = rules.get("join_keys")
    if listed is not None and ref.column.name in listed:
        return True
    return ref.column.column_class == ColumnClass.JOIN_KEY


def _reason(code: str, message: str, rule: str, owner: str | None) -> Reason:
    return Reason(code=code, rule=f"sql.{rule}", message=message, owner=owner)


def _in_domain(condition: Condition) -> bool:
    domain = condition.ref.column.domain
    values = [v for v in condition.values if v is not None]
    if isinstance(domain, list):
        allowed = {str(v) for v in domain}
        return all(str(v) in allowed for v in values) if condition.op in ("EQ", "IN") else True
    if isinstance(domain, dict) and values:
        low, high = domain.get("min"), domain.get("max")
        try:
            return all((low is None or v >= low) and (high is None or v <= high) for v in values)
        except TypeError:
            return False
    return True


def check_columns(
    shape: Shape,
    mode: str,
    eff: Effective,
    owners: Mapping[str, str],
    entity: ColumnRef | None,
    requester: str = "",
) -> list[Reason]:
    """Column-class and aggregate rules of ``aggregation``, ``dp`` and ``list`` modes.

    Columns of the requester's own datasets may be grouped, filtered and aggregated
    freely; join keys stay join-only everywhere (grouping on one's own key would still
    single out the partner's rows behind it).
    """
    reasons: list[Reason] = []
    seen: set[tuple[str, str, str]] = set()

    def add(code: str, message: str, rule: str, dataset: str) -> None:
        if (code, message, dataset) not in seen:
            seen.add((code, message, dataset))
            reasons.append(_reason(code, message, rule, owners.get(dataset)))

    binned = {shape.group_by[i].key for i in shape.bins}
    for index in shape.bins:
        ref = shape.group_by[index]
        rules = eff.of(ref.dataset)
        if mode != "dp":
            add(
                "BIN_NOT_ALLOWED",
                f"GROUP BY {shape.bins[index].sql()}: bins are released in dp mode only "
                "(give an epsilon or rho)",
                "dp",
                ref.dataset,
            )
        elif ref.column.column_class not in (ColumnClass.MEASURE, ColumnClass.DIMENSION):
            add(
                "COLUMN_NOT_ALLOWED",
                f"column {ref.column.name!r} may not be binned (only measures and dimensions)",
                "dimensions",
                ref.dataset,
            )
        elif bounds_of(ref, rules) is None and not _dimensions(ref, rules):
            add(
                "MISSING_BOUNDS",
                f"binning {ref.column.name!r} needs its declared bounds (rule bounds or a "
                "min/max domain)",
                "bounds",
                ref.dataset,
            )
    for condition in shape.conditions:
        if condition.bin is None:
            continue
        ref = condition.ref
        rules = eff.of(ref.dataset)
        where = f"WHERE {condition.bin.sql()}"
        if mode != "dp":
            add(
                "BIN_NOT_ALLOWED",
                f"{where}: bins in WHERE are allowed in dp mode only (give an epsilon or rho)",
                "dp",
                ref.dataset,
            )
        elif ref.column.column_class not in (ColumnClass.MEASURE, ColumnClass.DIMENSION):
            add(
                "COLUMN_NOT_ALLOWED",
                f"{where}: column {ref.column.name!r} may not be binned (only measures and "
                "dimensions)",
                "dimensions",
                ref.dataset,
            )
        elif bounds_of(ref, rules) is None and not _dimensions(ref, rules):
            add(
                "MISSING_BOUNDS",
                f"{where}: binning {ref.column.name!r} needs its declared bounds (rule bounds "
                "or a min/max domain)",
                "bounds",
                ref.dataset,
            )
    used_refs = [r for r in shape.group_by if r.key not in binned]
    used_refs += [c.ref for c in shape.conditions if c.bin is None]
    for ref in used_refs:
        rules = eff.of(ref.dataset)
        if _is_join_key(ref, rules):
            add(
                "JOIN_KEY_MISUSE",
                f"join key {ref.column.name!r} may be used only in JOIN ... ON",
                "join_keys",
                ref.dataset,
            )
        elif not _dimensions(ref, rules) and owners.get(ref.dataset) != requester:
            add(
                "COLUMN_NOT_ALLOWED",
                f"column {ref.column.name!r} may not be grouped or filtered on",
                "dimensions",
                ref.dataset,
            )
    for condition in shape.conditions:
        if condition.bin is None and not _in_domain(condition):
            add(
                "OUT_OF_DOMAIN",
                f"a condition on {condition.ref.column.name!r} uses a value outside its "
                "declared domain",
                "domain",
                condition.ref.dataset,
            )
    for left, right in shape.join_pairs:
        for ref in (left, right):
            if owners.get(ref.dataset) != requester and not _joinable(ref, eff.of(ref.dataset)):
                add(
                    "JOIN_NOT_ALLOWED",
                    f"column {ref.column.name!r} is not a join key the agreement lists",
                    "join_keys",
                    ref.dataset,
                )
    if mode == "list":
        for item in shape.items:
            out = item.dimension
            if out is None:
                continue
            listed = eff.of(out.dataset).get("list_columns") or []
            if out.column.name not in listed and owners.get(out.dataset) != requester:
                add(
                    "COLUMN_NOT_ALLOWED",
                    f"column {out.column.name!r} may not be listed row by row",
                    "list_columns",
                    out.dataset,
                )
        return reasons
    for item in shape.items:
        output = item.dimension
        if output is not None and _is_join_key(output, eff.of(output.dataset)):
            add(
                "JOIN_KEY_MISUSE",
                f"join key {output.column.name!r} may not be output",
                "join_keys",
                output.dataset,
            )
    for agg in shape.aggregates:
        if agg.ref is None:
            continue
        rules = eff.of(agg.ref.dataset)
        if agg.ref.column.column_class == ColumnClass.IDENTIFIER:
            add(
                "COLUMN_NOT_ALLOWED",
                f"identifier {agg.ref.column.name!r} may not be used",
                "aggregates",
                agg.ref.dataset,
            )
            continue
        listed = (rules.get("aggregates") or {}).get(agg.ref.column.name)
        allowed = (
            tuple(str(f).upper() for f in listed)
            if listed is not None
            else _DEFAULT_AGGREGATES.get(agg.ref.column.column_class, ())
        )
        if mode == "dp":
            if agg.func not in ("COUNT", "COUNT_DISTINCT") and bounds_of(agg.ref, rules) is None:
                add(
                    "MISSING_BOUNDS",
                    f"{agg.func} of {agg.ref.column.name!r} needs clamping bounds in the "
                    "agreement (rule bounds) or a declared min/max domain",
                    "bounds",
                    agg.ref.dataset,
                )
            if agg.func == "COUNT_DISTINCT" and entity is not None and agg.ref.key == entity.key:
                continue  # counting people: allowed on the entity key whatever its class
        if mode != "dp" and agg.func in DP_ONLY:
            add(
                "AGGREGATE_NOT_ALLOWED",
                f"{agg.func} is answered in dp mode only (ask with an epsilon or rho)",
                "dp",
                agg.ref.dataset,
            )
            continue
        # in dp, the moments and order statistics of a measure go with its AVG
        func = "AVG" if mode == "dp" and agg.func in (*DP_ONLY, "MIN", "MAX") else agg.func
        if (
            func not in allowed
            and agg.func not in allowed
            and (owners.get(agg.ref.dataset) != requester)
        ):
            add(
                "AGGREGATE_NOT_ALLOWED",
                f"{agg.func} is not allowed on {agg.ref.column.name!r}",
                "aggregates",
                agg.ref.dataset,
            )
    return reasons


def bounds_of(ref: ColumnRef, rules: Mapping[str, Any]) -> tuple[float, float] | None:
    """Clamping bounds for ``ref``: the rule ``bounds``, else the declared min/max domain."""
    given = (rules.get("bounds") or {}).get(ref.column.name)
    if given is not None and len(given) == 2:
        return float(given[0]), float(given[1])
    if ref.column.type == ColumnType.BOOLEAN:
        return 0.0, 1.0
    domain = ref.column.domain
    if isinstance(domain, dict) and domain.get("min") is not None and domain.get("max") is not None:
        return float(domain["min"]), float(domain["max"])
    return None
