"""Public bins in GROUP BY: CASE WHEN / IF, width_bucket and FLOOR(x / w) * w on one column.

A bin is *public* when everything but its one column is a literal written in the query:
then its set of possible values (its domain) is known before any data is read (the
literal results of a CASE, the buckets 0..n+1 of width_bucket, the multiples of w between
the column's declared bounds), so a DP query can release every bin, empty ones included,
without private partition selection. A bin that reads two columns, compares a column with
a column, or computes its result from the data is refused, naming the GROUP BY item.
Grouping on a raw measure stays refused unless the owner lists it as a dimension; binning
it needs its declared bounds (checked with the rules).
"""

from __future__ import annotations

import math
from typing import Any

from sqlglot import exp

from collabzone.techniques.sql._frontend import ColumnRef, QueryRejected, ResolvedQuery

MAX_BUCKETS = 10_000
_CONDITION_NODES = (
    exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
    exp.Between, exp.In, exp.Is,
)  # fmt: skip
_LITERALS = (exp.Literal, exp.Neg, exp.Null, exp.Boolean)
HOW = (
    "a bin must be CASE WHEN col < literal THEN literal ... END, "
    "width_bucket(col, lo, hi, n) or FLOOR(col / w) * w, with literals only"
)


def _refuse(node: exp.Expression, why: str, clause: str = "GROUP BY") -> QueryRejected:
    return QueryRejected("CONSTRUCT_NOT_ALLOWED", f"{clause} {node.sql()}: {why}; {HOW}")


def _number(node: Any) -> float | None:
    from collabzone.techniques.sql._shape import literal_value

    if not isinstance(node, exp.Literal | exp.Neg) or (
        isinstance(node, exp.Literal) and node.is_string
    ):
        return None
    value = literal_value(node)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _floor_width(node: exp.Expression) -> tuple[exp.Column, float, bool] | None:
    """(column, w, multiplied back) for FLOOR(col / w) or FLOOR(col / w) * w."""
    times = None
    if isinstance(node, exp.Mul):
        node, times = node.this, _number(node.expression)
        if times is None:
            return None
    if not isinstance(node, exp.Floor) or node.args.get("decimals") is not None:
        return None
    inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
    if not isinstance(inner, exp.Div) or not isinstance(inner.this, exp.Column):
        return None
    width = _number(inner.expression)
    if width is None or width <= 0 or (times is not None and times != width):
        return None
    return inner.this, width, times is not None


def _check_case(node: exp.Expression, clause: str) -> None:
    """Every condition compares the column with literals; every result is a literal."""
    if isinstance(node, exp.Case):
        branches = list(node.args.get("ifs") or [])
        results = [b.args.get("true") for b in branches] + [node.args.get("default")]
        conditions = [b.this for b in branches]
        if node.this is not None:  # CASE col WHEN v THEN ...: a comparison with literals
            conditions = []
            if not isinstance(node.this, exp.Column) or any(
                not isinstance(c, _LITERALS) for c in (b.this for b in branches)
            ):
                raise _refuse(node, "CASE col WHEN takes literal values", clause)
    else:
        results = [node.args.get("true"), node.args.get("false")]
        conditions = [node.this]
    for result in results:
        if result is not None and not isinstance(result, _LITERALS):
            raise _refuse(node, "each result must be a literal", clause)
    for condition in conditions:
        for part in condition.walk():
            if isinstance(part, (exp.Column, exp.Identifier, *_LITERALS, *_CONDITION_NODES)):
                continue
            raise _refuse(
                node, f"{part.sql()} is not a comparison of the column with literals", clause
            )
        for comparison in condition.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE):
            sides = (comparison.this, comparison.expression)
            if sum(isinstance(s, exp.Column) for s in sides) != 1:
                raise _refuse(node, "conditions compare the column with a literal", clause)


def is_bin_form(node: exp.Expression) -> bool:
    """Whether ``node`` is written as a bin (CASE / IF / width_bucket / FLOOR(x / w) [* w]),
    whether or not it turns out public: such an item is checked by ``public_bin``."""
    if isinstance(node, exp.Mul):
        node = node.this
    return isinstance(node, exp.Case | exp.If | exp.WidthBucket | exp.Floor)


def public_bin(node: exp.Expression, query: ResolvedQuery, clause: str = "GROUP BY") -> ColumnRef:
    """The one column a public bin reads (the GROUP BY or WHERE item is validated, or
    refused naming it)."""
    columns = list(node.find_all(exp.Column))
    if not columns or any(id(c) not in query.refs for c in columns):
        raise _refuse(node, "it must read one column of the shared datasets", clause)
    refs = {query.ref(c).key for c in columns}
    if len(refs) != 1:
        raise _refuse(node, "a bin reads exactly one column", clause)
    if isinstance(node, exp.WidthBucket):
        low, high = _number(node.args.get("min_value")), _number(node.args.get("max_value"))
        count = _number(node.args.get("num_buckets"))
        if not isinstance(node.this, exp.Column) or low is None or high is None or count is None:
            raise _refuse(node, "width_bucket takes a column and three literal numbers", clause)
        if not low < high or not count.is_integer() or not 0 < count <= MAX_BUCKETS:
            raise _refuse(
                node, f"width_bucket needs lo < hi and 1 to {MAX_BUCKETS} buckets", clause
            )
    elif isinstance(node, exp.Case | exp.If):
        _check_case(node, clause)
    elif _floor_width(node) is None:
        raise _refuse(node, "it is not a public bin", clause)
    return query.ref(columns[0])


def bin_domain(node: exp.Expression, bounds: tuple[float, float] | None) -> list[Any] | None:
    """Every value the bin can take (from literals and declared bounds), or None when it
    is not known without the data (a FLOOR bin of a column without bounds)."""
    from collabzone.techniques.sql._shape import literal_value

    if isinstance(node, exp.WidthBucket):
        return list(range(int(_number(node.args["num_buckets"]) or 0) + 2))
    if isinstance(node, exp.Case):
        results = [b.args.get("true") for b in node.args.get("ifs") or []]
        default = node.args.get("default")
        values = [literal_value(r) for r in results] + [
            literal_value(default) if default is not None else None
        ]
        return list(dict.fromkeys(values))
    if isinstance(node, exp.If):
        other = node.args.get("false")
        values = [literal_value(node.args["true"]), literal_value(other) if other else None]
        return list(dict.fromkeys(values))
    found = _floor_width(node)
    if found is None or bounds is None:
        return None
    _, width, scaled = found
    first, last = math.floor(bounds[0] / width), math.floor(bounds[1] / width)
    if last - first + 1 > MAX_BUCKETS:
        return None
    return [float(k * width) if scaled else float(k) for k in range(first, last + 1)]


def engine_form(node: exp.Expression) -> exp.Expression:
    """The bin as the engine computes it: DuckDB has no width_bucket, so it becomes the
    CASE of its SQL-standard meaning (0 below lo, n + 1 at or above hi); others unchanged."""
    if not isinstance(node, exp.WidthBucket):
        return node.copy()
    column = node.this
    low, high = node.args["min_value"], node.args["max_value"]
    count = node.args["num_buckets"]
    width = exp.Div(
        this=exp.Mul(this=exp.Paren(this=exp.Sub(this=column.copy(), expression=low.copy())),
                     expression=count.copy()),
        expression=exp.Paren(this=exp.Sub(this=high.copy(), expression=low.copy())),
    )  # fmt: skip
    inside = exp.Add(
        this=exp.Cast(this=exp.Floor(this=width), to=exp.DataType.build("BIGINT")),
        expression=exp.Literal.number(1),
    )
    return exp.Case(
        ifs=[
            exp.If(this=exp.Is(this=column.copy(), expression=exp.Null()), true=exp.Null()),
            exp.If(this=exp.LT(this=column.copy(), expression=low.copy()),
                   true=exp.Literal.number(0)),
            exp.If(this=exp.GTE(this=column.copy(), expression=high.copy()),
                   true=exp.Add(this=count.copy(), expression=exp.Literal.number(1))),
        ],
        default=inside,
    )  # fmt: skip


def bin_values_are_text(node: exp.Expression) -> bool | None:
    """Whether the bin's values are text (a CASE of string results), numbers (width_bucket,
    FLOOR, a CASE of numbers), or None when its results mix both (refused in WHERE)."""
    if not isinstance(node, exp.Case | exp.If):
        return False
    values = [v for v in bin_domain(node, None) or [] if v is not None]
    kinds = {isinstance(v, str) for v in values}
    return kinds.pop() if len(kinds) == 1 else (None if kinds else False)
