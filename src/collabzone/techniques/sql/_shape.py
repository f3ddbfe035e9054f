"""The shape of a resolved query: dimensions, aggregates, filters, joins, ordering.

Governed SQL accepts one flat form: ``SELECT dims, aggregates FROM a [JOIN b ON a.k = b.k]
[WHERE simple conditions] [GROUP BY dims] [HAVING ...] [ORDER BY ...] [LIMIT n]`` (or, for
row-level ``list`` releases, plain columns without aggregates). Anything else is refused
here, structurally, before a rule looks at column classes: expressions inside aggregates
(magnifiers such as ``SUM(CASE ...)`` or ``SUM(x * 1e6)``), arithmetic in WHERE (error
oracles such as ``1 / (age - 37)``; public bins compared with literals are the exception,
DP mode only), outer joins, joins on anything but column equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from collabzone.model import ColumnType
from collabzone.techniques.sql._bins import (
    bin_values_are_text,
    engine_form,
    is_bin_form,
    public_bin,
)
from collabzone.techniques.sql._frontend import ColumnRef, QueryRejected, ResolvedQuery

AGG_FUNCS: dict[type[exp.Expression], str] = {
    exp.Count: "COUNT",
    exp.Sum: "SUM",
    exp.Avg: "AVG",
    exp.Min: "MIN",
    exp.Max: "MAX",
    exp.Variance: "VAR",
    exp.VariancePop: "VAR_POP",
    exp.Stddev: "STDDEV",
    exp.StddevSamp: "STDDEV",
    exp.StddevPop: "STDDEV_POP",
    exp.Median: "MEDIAN",
    exp.Quantile: "QUANTILE",
    exp.PercentileCont: "QUANTILE",
}
DP_ONLY = frozenset({"VAR", "VAR_POP", "STDDEV", "STDDEV_POP", "MEDIAN", "QUANTILE"})
"""Aggregates answered only in dp mode (from noisy moments or a private quantile)."""
QUANTILE_FUNCS = frozenset({"MIN", "MAX", "MEDIAN", "QUANTILE"})
"""Aggregates released in dp mode by OpenDP's private quantile over the declared bounds."""
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_LITERALS = (exp.Literal, exp.Boolean, exp.Null, exp.Neg)
RESERVED_PREFIX = "_cz_"
"""Names the governed rewrite gives its own columns; no output may take one."""


@dataclass(frozen=True)
class Aggregate:
    """One aggregate call: ``func`` is COUNT, COUNT_DISTINCT, SUM, AVG, MIN, MAX, VAR,
    VAR_POP, STDDEV, STDDEV_POP, MEDIAN or QUANTILE."""

    func: str
    ref: ColumnRef | None
    """The column aggregated; ``None`` for COUNT(*)."""
    q: float | None = None
    """The quantile asked (MIN 0, MEDIAN 0.5, MAX 1, QUANTILE_CONT's literal)."""


@dataclass(frozen=True)
class OutputItem:
    """One SELECT item with its output name and what it is made of."""

    name: str
    node: exp.Expression
    """The item's expression (without its alias) in the resolved tree."""
    dimension: ColumnRef | None = None
    aggregates: tuple[Aggregate, ...] = ()

    @property
    def is_aggregate(self) -> bool:
        return bool(self.aggregates)


@dataclass(frozen=True)
class Condition:
    """A leaf WHERE condition on one column: the operator and the literal values."""

    ref: ColumnRef
    op: str
    values: tuple[object, ...]
    bin: exp.Expression | None = field(default=None, compare=False)
    """The public bin compared (``WHERE width_bucket(x, 0, 100, 10) = 3``), as written;
    ``values`` are then bin values, not the column's. DP mode only (``_rules``)."""


@dataclass
class Shape:
    """Everything the rules need to know about a query, without its data."""

    items: list[OutputItem]
    group_by: list[ColumnRef]
    conditions: list[Condition]
    join_pairs: list[tuple[ColumnRef, ColumnRef]]
    having_aggregates: list[Aggregate] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)
    """(output name, descending)."""
    bins: dict[int, exp.Expression] = field(default_factory=dict)
    """GROUP BY position -> its public bin expression (``_bins``) when not a plain column."""
    limit: int | None = None

    @property
    def is_aggregate(self) -> bool:
        return any(item.is_aggregate for item in self.items)

    @property
    def aggregates(self) -> list[Aggregate]:
        seen = [a for item in self.items for a in item.aggregates] + self.having_aggregates
        return list(dict.fromkeys(seen))


def literal_value(node: exp.Expression) -> object:
    """The Python value of a literal node (strings stay strings, numbers become numbers)."""
    if isinstance(node, exp.Neg):
        inner = literal_value(node.this)
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            return -inner
        raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "only numbers can be negated")
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        text = str(node.this)
        try:
            return int(text)
        except ValueError:
            return float(text)
    raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "conditions compare a column with literals only")


def _aggregate(node: exp.Expression, query: ResolvedQuery) -> Aggregate:
    func = AGG_FUNCS[type(node)]
    arg = node.this
    q = _quantile_of(node, func)
    if isinstance(arg, exp.Distinct):
        if func != "COUNT" or len(arg.expressions) != 1:
            raise QueryRejected(
                "CONSTRUCT_NOT_ALLOWED", "DISTINCT is allowed only as COUNT(DISTINCT col)"
            )
        func, arg = "COUNT_DISTINCT", arg.expressions[0]
    if isinstance(arg, exp.Star) and func == "COUNT":
        return Aggregate("COUNT", None)
    if not isinstance(arg, exp.Column) or node.expressions or _extra_argument(node, func):
        raise QueryRejected(
            "CONSTRUCT_NOT_ALLOWED",
            "aggregate arguments must be one plain column: expressions inside aggregates "
            "(CASE, arithmetic) can magnify one person's value",
        )
    ref = query.ref(arg)
    numeric = (ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.BOOLEAN)
    if func in ("SUM", "AVG", *DP_ONLY) and ref.column.type not in numeric:
        raise QueryRejected(
            "TYPE_MISMATCH",
            f"{func} needs a numeric column; {ref.column.name!r} is {ref.column.type.value}",
        )
    return Aggregate(func, ref, q)


def _extra_argument(node: exp.Expression, func: str) -> bool:
    """Whether an aggregate carries an argument besides its column (and a quantile's q)."""
    allowed = {"this", "quantile", "expression"} if func == "QUANTILE" else {"this"}
    return any(
        isinstance(v, exp.Expression | list) and bool(v) and k not in allowed
        for k, v in node.args.items()
    )


def _quantile_of(node: exp.Expression, func: str) -> float | None:
    """The quantile an order statistic asks for (a literal in [0, 1] for QUANTILE_CONT)."""
    fixed = {"MIN": 0.0, "MEDIAN": 0.5, "MAX": 1.0}
    if func in fixed:
        return fixed[func]
    if func != "QUANTILE":
        return None
    given = node.args.get("quantile") or node.args.get("expression")
    value = literal_value(given) if isinstance(given, exp.Literal | exp.Neg) else None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise QueryRejected(
            "CONSTRUCT_NOT_ALLOWED",
            "QUANTILE_CONT(col, q) needs q written as a number between 0 and 1",
        )
    return float(value)


def _engine_forms(
    tree: exp.Select,
    bins: dict[int, exp.Expression],
    query: ResolvedQuery,
    conditions: list[Condition],
) -> None:
    """Bins the engine lacks (width_bucket) rewritten in place, in GROUP BY, SELECT and
    WHERE; ``bins`` and the conditions keep the written form, detached from the tree."""
    for index, node in list(bins.items()):
        if _engine_form_in_place(tree, node, query):
            bins[index] = node.copy()
    for condition in conditions:
        if condition.bin is not None:
            _engine_form_in_place(tree, condition.bin.copy(), query)


def _engine_form_in_place(tree: exp.Select, node: exp.Expression, query: ResolvedQuery) -> bool:
    text = node.sql()
    form = engine_form(node)
    if form.sql() == text:
        return False
    for target in [n for n in tree.find_all(type(node)) if n.sql() == text]:
        copy = form.copy()
        ref = query.ref(next(target.find_all(exp.Column)))
        for column in copy.find_all(exp.Column):
            query.refs[id(column)] = ref
        target.replace(copy)
    return True


def _group_item(node: exp.Expression, tree: exp.Select, query: ResolvedQuery) -> exp.Expression:
    """A GROUP BY item, with ``GROUP BY 1`` or ``GROUP BY alias`` replaced (in the tree)
    by a copy of the SELECT item it names, its columns resolved as the original's."""
    target = None
    if isinstance(node, exp.Literal) and not node.is_string and str(node.this).isdigit():
        position = int(str(node.this)) - 1
        if not 0 <= position < len(tree.expressions):
            raise QueryRejected("BAD_SHAPE", f"GROUP BY {node.this}: no such SELECT item")
        target = tree.expressions[position]
    elif isinstance(node, exp.Column) and id(node) not in query.refs and not node.table:
        target = next(
            (e for e in tree.expressions if isinstance(e, exp.Alias) and e.alias == node.name),
            None,
        )
    if target is None:
        return node
    original = target.this if isinstance(target, exp.Alias) else target
    copy: exp.Expression = original.copy()
    for old, new in zip(original.find_all(exp.Column), copy.find_all(exp.Column), strict=True):
        if id(old) in query.refs:
            query.refs[id(new)] = query.refs[id(old)]
    node.replace(copy)
    return copy


def _aggregates_in(node: exp.Expression, query: ResolvedQuery) -> tuple[Aggregate, ...]:
    found: list[Aggregate] = []
    for agg in node.find_all(*AGG_FUNCS):
        if agg.find_ancestor(*AGG_FUNCS) is not None:
            raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "aggregates cannot be nested")
        found.append(_aggregate(agg, query))
    return tuple(found)


def _bare_columns_outside_aggregates(node: exp.Expression) -> list[exp.Column]:
    return [c for c in node.find_all(exp.Column) if c.find_ancestor(*AGG_FUNCS) is None]


def _output_name(item: exp.Expression, index: int, taken: set[str]) -> str:
    if isinstance(item, exp.Alias):
        base = item.alias
    elif isinstance(item, exp.Column):
        base = item.name
    elif isinstance(item, tuple(AGG_FUNCS)):
        arg = item.this
        inner = arg.expressions[0] if isinstance(arg, exp.Distinct) else arg
        label = AGG_FUNCS[type(item)].lower() + (
            "_distinct" if isinstance(arg, exp.Distinct) else ""
        )
        base = f"{label}_{inner.name}" if isinstance(inner, exp.Column) else f"{label}_all"
    else:
        base = f"col{index}"
    if base.lower().startswith(RESERVED_PREFIX):
        raise QueryRejected(
            "BAD_SHAPE",
            f"output names starting with {RESERVED_PREFIX} are reserved for the zone's "
            "rewrite; choose another alias",
        )
    # DuckDB resolves names case-insensitively, so "n" and "N" would be the same column
    name, n = base, 2
    while name.lower() in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name.lower())
    return name


def _typed(condition: Condition) -> list[Condition]:
    """Refuse a literal of the wrong type: the engine would cast every row's value to it,
    and whether that cast fails would depend on the data (an error oracle)."""
    kind = condition.ref.column.type
    for value in condition.values:
        if value is None:
            continue
        if kind in (ColumnType.INTEGER, ColumnType.FLOAT):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind == ColumnType.BOOLEAN:
            ok = isinstance(value, bool)
        else:  # strings, and dates / timestamps written as ISO text (cast once, at bind time)
            ok = isinstance(value, str)
        if not ok:
            raise QueryRejected(
                "TYPE_MISMATCH",
                f"column {condition.ref.column.name!r} is {kind.value}: compare it with a "
                f"{kind.value} literal",
            )
    return [condition]


def _bin_comparisons(node: exp.Expression, ref: ColumnRef) -> None:
    """The comparisons inside a bin's CASE / IF typed like WHERE's: a text column compared
    with a number would be cast row by row, failing on some values only (an error oracle)."""
    for comparison in node.find_all(*_COMPARISONS):
        sides = (comparison.this, comparison.expression)
        literal = next((s for s in sides if isinstance(s, _LITERALS)), None)
        if literal is not None:
            _typed(Condition(ref, type(comparison).__name__, (literal_value(literal),)))
    for listed in node.find_all(exp.In):
        _typed(Condition(ref, "IN", tuple(literal_value(v) for v in listed.expressions)))


def _binned(
    node: exp.Expression, op: str, values: tuple[object, ...], query: ResolvedQuery
) -> list[Condition]:
    """A WHERE condition on a public bin (its values are the bin's, typed like them)."""
    where = f"WHERE {node.sql()}"
    ref = public_bin(node, query, clause="WHERE")
    _bin_comparisons(node, ref)
    text = bin_values_are_text(node)
    for value in values:
        if value is None:
            continue
        is_text = isinstance(value, str)
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if text is None or (text and not is_text) or (not text and not is_number):
            kind = "mixed text and numbers" if text is None else ("text" if text else "numbers")
            raise QueryRejected(
                "TYPE_MISMATCH", f"{where}: the bin's values are {kind}; compare it with those"
            )
    return [Condition(ref, op, values, bin=node)]


def _conditions(node: Any, query: ResolvedQuery) -> list[Condition]:
    if node is None:
        return []
    if isinstance(node, exp.And | exp.Or):
        return _conditions(node.left, query) + _conditions(node.right, query)
    if isinstance(node, exp.Not | exp.Paren):
        return _conditions(node.this, query)
    if isinstance(node, _COMPARISONS):
        col, lit = (node.left, node.right)
        if isinstance(lit, exp.Column) and not isinstance(col, exp.Column):
            col, lit = lit, col
        if isinstance(col, exp.Column) and isinstance(lit, _LITERALS):
            return _typed(Condition(query.ref(col), type(node).__name__, (literal_value(lit),)))
        left, right = node.left, node.right
        binned, other = (right, left) if isinstance(left, _LITERALS) else (left, right)
        if (
            isinstance(other, _LITERALS)
            and isinstance(binned, exp.Expression)
            and is_bin_form(binned)
        ):
            return _binned(binned, type(node).__name__, (literal_value(other),), query)
    elif isinstance(node, exp.In) and is_bin_form(node.this):
        if node.args.get("query") or not node.expressions:
            raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "IN takes a list of literals")
        values = tuple(literal_value(v) for v in node.expressions)
        return _binned(node.this, "IN", values, query)
    elif isinstance(node, exp.Between) and is_bin_form(node.this):
        values = (literal_value(node.args["low"]), literal_value(node.args["high"]))
        return _binned(node.this, "BETWEEN", values, query)
    elif isinstance(node, exp.In) and isinstance(node.this, exp.Column):
        if node.args.get("query") or not node.expressions:
            raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "IN takes a list of literals")
        values = tuple(literal_value(v) for v in node.expressions)
        return _typed(Condition(query.ref(node.this), "IN", values))
    elif isinstance(node, exp.Between) and isinstance(node.this, exp.Column):
        values = (literal_value(node.args["low"]), literal_value(node.args["high"]))
        return _typed(Condition(query.ref(node.this), "BETWEEN", values))
    elif isinstance(node, exp.Is) and isinstance(node.this, exp.Column):
        return [Condition(query.ref(node.this), "IS", (None,))]
    raise QueryRejected(
        "CONSTRUCT_NOT_ALLOWED",
        "WHERE conditions must compare one column with literals (=, <>, <, <=, >, >=, IN, "
        "BETWEEN, IS NULL) combined with AND / OR / NOT; no arithmetic or column-to-column tests",
    )


def _join_pairs(query: ResolvedQuery) -> list[tuple[ColumnRef, ColumnRef]]:
    pairs: list[tuple[ColumnRef, ColumnRef]] = []
    for join in query.tree.args.get("joins") or []:
        if join.args.get("side") or join.args.get("kind") not in (None, "", "INNER"):
            raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "only inner JOIN ... ON is allowed")
        if join.args.get("using") or join.args.get("on") is None:
            raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "write JOIN ... ON a.key = b.key")
        stack: list[Any] = [join.args["on"]]
        while stack:
            cond = stack.pop()
            if isinstance(cond, exp.Paren):
                stack.append(cond.this)
            elif isinstance(cond, exp.And):
                stack += [cond.left, cond.right]
            elif (
                isinstance(cond, exp.EQ)
                and isinstance(cond.left, exp.Column)
                and isinstance(cond.right, exp.Column)
                and query.ref(cond.left).alias != query.ref(cond.right).alias
            ):
                pairs.append((query.ref(cond.left), query.ref(cond.right)))
            else:
                raise QueryRejected(
                    "CONSTRUCT_NOT_ALLOWED",
                    "JOIN ... ON takes only equalities between key columns of two tables",
                )
    return pairs


def analyse(query: ResolvedQuery) -> Shape:
    """Classify the parts of ``query``; refuse any part outside the governed form."""
    tree = query.tree
    group_by: list[ColumnRef] = []
    group = tree.args.get("group")
    bins: dict[int, exp.Expression] = {}
    if group is not None:
        for node in list(group.expressions):
            node = _group_item(node, tree, query)
            if isinstance(node, exp.Column):
                group_by.append(query.ref(node))
                continue
            ref = public_bin(node, query)
            _bin_comparisons(node, ref)
            bins[len(group_by)] = node
            group_by.append(ref)
        keys = [r.key for r in group_by]
        if len(set(keys)) != len(keys):
            raise QueryRejected(
                "CONSTRUCT_NOT_ALLOWED", "GROUP BY uses each column once (raw or binned)"
            )
        if any(group.args.get(k) for k in ("rollup", "cube", "grouping_sets", "totals")):
            raise QueryRejected(
                "CONSTRUCT_NOT_ALLOWED", "ROLLUP, CUBE and GROUPING SETS are not allowed"
            )
    taken: set[str] = set()
    items: list[OutputItem] = []
    for index, select in enumerate(tree.expressions):
        name = _output_name(select, index, taken)
        node = select.this if isinstance(select, exp.Alias) else select
        aggs = _aggregates_in(node, query)
        binned = next((i for i, b in bins.items() if b.sql() == node.sql()), None)
        if isinstance(node, exp.Column):
            items.append(OutputItem(name, node, dimension=query.ref(node)))
        elif binned is not None:
            items.append(OutputItem(name, node, dimension=group_by[binned]))
        elif aggs and not _bare_columns_outside_aggregates(node):
            items.append(OutputItem(name, node, aggregates=aggs))
        elif not aggs and node.find(exp.Column, exp.Star) is None:
            items.append(OutputItem(name, node))  # a constant, written in the query
        else:
            raise QueryRejected(
                "CONSTRUCT_NOT_ALLOWED",
                "each output is a plain column or an expression of aggregates and numbers",
            )
    shape = Shape(
        items,
        group_by,
        _conditions(tree.args.get("where") and tree.args["where"].this, query),
        _join_pairs(query),
    )
    where = tree.args.get("where")
    if where is not None and where.find(*AGG_FUNCS):
        raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "aggregates belong in HAVING, not WHERE")
    if shape.is_aggregate:
        grouped = {r.key for r in group_by}
        for item in items:
            if item.dimension is not None and item.dimension.key not in grouped:
                raise QueryRejected(
                    "BAD_SHAPE", f"output {item.name!r} must be in GROUP BY or aggregated"
                )
    elif group_by:  # SELECT DISTINCT: dp mode only (checked once the mode is known)
        grouped = {r.key for r in group_by}
        if any(item.dimension is None or item.dimension.key not in grouped for item in items):
            raise QueryRejected(
                "BAD_SHAPE", "GROUP BY without aggregates outputs the grouped columns only"
            )
    having = tree.args.get("having")
    if having is not None:
        named = [c for c in _bare_columns_outside_aggregates(having.this) if id(c) in query.refs]
        if named:  # (a column the resolver left unresolved names an output: DP only)
            raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "HAVING may test aggregates only")
        shape.having_aggregates = list(_aggregates_in(having.this, query))
    shape.bins = bins
    _engine_forms(tree, bins, query, shape.conditions)
    shape.order_by = _order_by(tree, items)
    limit = tree.args.get("limit")
    if limit is not None:
        value = limit.expression
        if not (isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit()):
            raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "LIMIT takes a whole number")
        shape.limit = int(value.this)
    return shape


def _order_by(tree: exp.Select, items: list[OutputItem]) -> list[tuple[str, bool]]:
    order = tree.args.get("order")
    if order is None:
        return []
    out: list[tuple[str, bool]] = []
    for ordered in order.expressions:
        node = ordered.this
        desc = bool(ordered.args.get("desc"))
        match = None
        if isinstance(node, exp.Literal) and not node.is_string and str(node.this).isdigit():
            position = int(node.this)
            if 1 <= position <= len(items):
                match = items[position - 1].name
        elif isinstance(node, exp.Column) and not node.table:
            match = next((i.name for i in items if i.name == node.name), None)
        if match is None:
            match = next((i.name for i in items if i.node == node), None)
        if match is None:
            raise QueryRejected("BAD_SHAPE", "ORDER BY must name an output column")
        out.append((match, desc))
    return out
