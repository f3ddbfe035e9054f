"""What a DP answer may compute from its noisy values (pure checks, no data).

The SELECT list of a DP query may hold aggregates, numbers, brackets, + - * / and the
functions of ``POST_FUNCTIONS`` over them, and HAVING may compare such expressions (or an
output's name); ``_postprocess`` evaluates them on the released values. These checks turn
anything else into a refusal naming the offending output, before any data is read. In
exact modes the functions (and output names in HAVING) are refused outright.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from collabzone.errors import Reason
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._frontend import QueryRejected
from collabzone.techniques.sql._shape import AGG_FUNCS, Aggregate, _aggregate, literal_value

DP_AGGREGATES = frozenset(
    {"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "VAR", "VAR_POP", "STDDEV", "STDDEV_POP", "MIN",
     "MAX", "MEDIAN", "QUANTILE"}
)  # fmt: skip
"""Aggregates a DP answer releases (``_postprocess.LEAVES`` reads each from its quantities)."""
POST_FUNCTIONS: Mapping[type[exp.Expr], str] = {
    exp.Pow: "POWER", exp.Round: "ROUND", exp.Abs: "ABS", exp.Sqrt: "SQRT", exp.Ln: "LN",
    exp.Log: "LOG", exp.Exp: "EXP", exp.Floor: "FLOOR", exp.Ceil: "CEIL",
    exp.Greatest: "GREATEST", exp.Least: "LEAST", exp.Sign: "SIGN",
}  # fmt: skip
"""Functions computed only on released DP values (never by the engine on exact data)."""
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)
COMPARISONS: Mapping[type[exp.Expr], Callable[[Any, Any], bool]] = {
    exp.EQ: lambda a, b: a == b, exp.NEQ: lambda a, b: a != b, exp.GT: lambda a, b: a > b,
    exp.GTE: lambda a, b: a >= b, exp.LT: lambda a, b: a < b, exp.LTE: lambda a, b: a <= b,
}  # fmt: skip
_SUPPORTED = (
    "outputs are aggregates (COUNT, SUM, AVG, VAR, STDDEV, MIN, MAX, MEDIAN, QUANTILE_CONT), numbers, + - * / and "
    + ", ".join(sorted(set(POST_FUNCTIONS.values())))
    + " of them"
)


class Unsupported(ValueError):
    """A part of the SELECT list or HAVING that cannot be computed from noisy values."""


def aggregate_of(node: Any, query: Any) -> Aggregate:
    """The aggregate a node of the compiled tree computes (SUM / AVG of a boolean column
    read it as CAST(col AS INTEGER), a rewrite made after the shape was checked)."""
    arg = node.this
    if isinstance(arg, exp.Cast) and isinstance(arg.this, exp.Column):
        column = arg.this  # a copy made by the rewrite: found by its qualified name
        ref = next(
            r
            for r in query.refs.values()
            if (r.alias, r.column.name) == (column.table, column.name)
        )
        return Aggregate(AGG_FUNCS[type(node)], ref)
    return _aggregate(node, query)


def _refuse(message: str) -> Unsupported:
    return Unsupported(message)


# ---------------------------------------------------------------- checks (no data)


def functions_outside_dp(compiled: Compiled) -> list[Reason]:
    """Functions of aggregates (POWER, LN, ...) are refused in exact modes: the engine would
    compute them on exact values, and whether it fails (LN(COUNT(*) - 37)) is an oracle.
    So is a HAVING that names an output (``HAVING n > 10``): exact HAVING stays as written."""
    if compiled.mode == "dp":
        return []
    reasons = []
    found = sorted(
        {
            POST_FUNCTIONS[type(n)]
            for n in compiled.query.tree.find_all(*POST_FUNCTIONS)
            if n.find(*AGG_FUNCS) is not None  # (FLOOR(x / w) of a bin is not one)
        }
    )
    if found:
        reasons.append(
            Reason(
                "BAD_SHAPE",
                "sql.aggregation",
                f"{', '.join(found)} of aggregates is computed only on DP answers (as "
                "post-processing of noisy values); in exact mode compute it from the released "
                "values",
            )
        )
    aliases = _output_names_in_having(compiled)
    if aliases:
        reasons.append(
            Reason(
                "BAD_SHAPE",
                "sql.aggregation",
                f"HAVING names the output {aliases[0]!r}: in exact mode repeat its aggregate "
                "(HAVING COUNT(*) > 10, not HAVING n > 10)",
            )
        )
    return reasons


def _output_names_in_having(compiled: Compiled) -> list[str]:
    having = compiled.query.tree.args.get("having")
    if having is None:
        return []
    return [
        c.name
        for c in having.find_all(exp.Column)
        if id(c) not in compiled.query.refs and c.find_ancestor(*AGG_FUNCS) is None
    ]


def output_of(node: exp.Column, compiled: Compiled) -> Any:
    """The SELECT item a HAVING column names (an output alias, as DuckDB allows)."""
    item = next((i for i in compiled.shape.items if i.name.lower() == node.name.lower()), None)
    if item is None or item.dimension is not None:
        raise _refuse(
            f"{node.name!r} is not an aggregate output; HAVING tests aggregates or their outputs"
        )
    return item.node


def check(compiled: Compiled) -> list[Reason]:
    """What a DP query's SELECT list and HAVING may compute from noisy values, as reasons."""
    reasons: list[Reason] = []
    for item in compiled.shape.items:
        if item.dimension is not None or is_literal(item.node):
            continue
        try:
            _check_value(item.node, compiled)
        except Unsupported as error:
            reasons.append(Reason("BAD_SHAPE", "sql.dp", f"output {item.name!r}: {error}"))
    having = compiled.query.tree.args.get("having")
    if having is not None:
        try:
            _check_predicate(having.this, compiled)
        except Unsupported as error:
            reasons.append(Reason("BAD_SHAPE", "sql.dp", f"HAVING: {error}"))
    return reasons


def constant(node: Any, what: str = "") -> float:
    """A number written in the query (a literal, maybe negated or in brackets)."""
    while isinstance(node, exp.Paren):
        node = node.this
    try:
        value = literal_value(node)
    except QueryRejected:
        value = None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse(f"{what or node.sql()} must be a number written in the query")
    return float(value)


def _check_value(node: Any, compiled: Compiled) -> None:
    if isinstance(node, exp.Paren | exp.Neg):
        _check_value(node.this, compiled)
    elif isinstance(node, _ARITHMETIC):
        _check_value(node.left, compiled)
        _check_value(node.right, compiled)
    elif isinstance(node, exp.Column) and id(node) not in compiled.query.refs:
        _check_value(output_of(node, compiled), compiled)  # HAVING n > 10 (an output's name)
    elif type(node) in AGG_FUNCS:
        agg = aggregate_of(node, compiled.query)
        if agg.func not in DP_AGGREGATES:
            raise _refuse(f"{agg.func} has no DP form here")
    elif isinstance(node, exp.Literal | exp.Null):
        if isinstance(node, exp.Literal) and node.is_string:
            raise _refuse("text cannot be computed with; " + _SUPPORTED)
    elif isinstance(node, exp.Pow):
        _check_value(node.this, compiled)
        constant(node.expression, "POWER's exponent")
    elif isinstance(node, exp.Round):
        _check_value(node.this, compiled)
        digits = node.args.get("decimals")
        if digits is not None and not constant(digits, "ROUND's decimals").is_integer():
            raise _refuse("ROUND takes a whole number of decimals")
    elif isinstance(node, exp.Log):
        value = node.expression if node.expression is not None else node.this
        _check_value(value, compiled)
        if node.expression is not None:
            base = constant(node.this, "LOG's base")
            if base <= 0 or base == 1:
                raise _refuse("LOG's base must be a positive number other than 1")
    elif isinstance(node, exp.Greatest | exp.Least):
        for part in [node.this, *node.expressions]:
            _check_value(part, compiled)
    elif type(node) in POST_FUNCTIONS:
        if any(node.args.get(k) for k in node.args if k != "this"):
            raise _refuse(f"{POST_FUNCTIONS[type(node)]} takes one argument here")
        _check_value(node.this, compiled)
    else:
        raise _refuse(f"{node.sql()} cannot be computed from noisy values; " + _SUPPORTED)


def _check_predicate(node: Any, compiled: Compiled) -> None:
    if isinstance(node, exp.Paren | exp.Not):
        _check_predicate(node.this, compiled)
    elif isinstance(node, exp.And | exp.Or):
        _check_predicate(node.left, compiled)
        _check_predicate(node.right, compiled)
    elif isinstance(node, exp.Binary) and type(node) in COMPARISONS:
        _check_value(node.left, compiled)
        _check_value(node.right, compiled)
    elif isinstance(node, exp.Between):
        for part in (node.this, node.args["low"], node.args["high"]):
            _check_value(part, compiled)
    elif isinstance(node, exp.In) and not node.args.get("query"):
        _check_value(node.this, compiled)
        for value in node.expressions:
            constant(value, "each value of IN (...)")
    elif isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        _check_value(node.this, compiled)
    elif not isinstance(node, exp.Boolean):
        raise _refuse(
            "compare noisy aggregates or their arithmetic with =, <>, <, <=, >, >=, BETWEEN, "
            "IN or IS NULL, combined with AND / OR / NOT"
        )


def is_literal(node: Any) -> bool:
    return isinstance(node, exp.Literal | exp.Boolean | exp.Null | exp.Neg)
