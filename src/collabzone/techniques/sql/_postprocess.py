"""Post-processing of a DP answer: expressions of noisy aggregates, HAVING, ORDER BY, LIMIT.

Everything here reads only the *released* noisy values and the public noise scales, so it
is free (post-processing cannot weaken differential privacy): ``SUM(x) / COUNT(*)``,
``POWER(AVG(x), 2)``, ``ROUND(AVG(x), 1)``, constants in the SELECT list, HAVING on noisy
values, ORDER BY and LIMIT after the noise. The SELECT items and the HAVING condition are
evaluated as SQLGlot trees over the released values; an aggregate used several times (or
by AVG and SUM alike) is one noisy quantity, measured once.

Intervals: an output computed from k distinct noisy quantities takes each quantity's
interval at alpha / k, so that all k hold together with probability >= 1 - alpha (union
bound), and propagates them by interval arithmetic (``_interval``). A plain COUNT or SUM
keeps its own (1 - alpha) interval; an AVG is SUM / COUNT at alpha / 2 each.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from collabzone.errors import Reason
from collabzone.techniques.sql import _interval as iv
from collabzone.techniques.sql import _rules
from collabzone.techniques.sql._compile import Compiled, quantity_key
from collabzone.techniques.sql._dp import NoisyTable, accuracy
from collabzone.techniques.sql._frontend import QueryRejected
from collabzone.techniques.sql._shape import AGG_FUNCS, Aggregate, _aggregate, literal_value

POST_FUNCTIONS: Mapping[type[exp.Expr], str] = {
    exp.Pow: "POWER", exp.Round: "ROUND", exp.Abs: "ABS", exp.Sqrt: "SQRT", exp.Ln: "LN",
    exp.Log: "LOG", exp.Exp: "EXP", exp.Floor: "FLOOR", exp.Ceil: "CEIL",
    exp.Greatest: "GREATEST", exp.Least: "LEAST", exp.Sign: "SIGN",
}  # fmt: skip
"""Functions computed only on released DP values (never by the engine on exact data)."""
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)
_COMPARE: Mapping[type[exp.Expr], Callable[[Any, Any], bool]] = {
    exp.EQ: lambda a, b: a == b, exp.NEQ: lambda a, b: a != b, exp.GT: lambda a, b: a > b,
    exp.GTE: lambda a, b: a >= b, exp.LT: lambda a, b: a < b, exp.LTE: lambda a, b: a <= b,
}  # fmt: skip
_SUPPORTED = (
    "outputs are aggregates (COUNT, SUM, AVG), numbers, + - * / and "
    + ", ".join(sorted(set(POST_FUNCTIONS.values())))
    + " of them"
)


class Unsupported(ValueError):
    """A part of the SELECT list or HAVING that cannot be computed from noisy values."""


def _aggregate_of(node: Any, query: Any) -> Aggregate:
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
    found = sorted({POST_FUNCTIONS[type(n)] for n in compiled.query.tree.find_all(*POST_FUNCTIONS)})
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


def _output(node: exp.Column, compiled: Compiled) -> Any:
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
        if item.dimension is not None or _is_literal(item.node):
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


def _constant(node: Any, what: str = "") -> float:
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
        _check_value(_output(node, compiled), compiled)  # HAVING n > 10 (an output's name)
    elif type(node) in AGG_FUNCS:
        agg = _aggregate_of(node, compiled.query)
        if agg.func not in LEAVES:
            raise _refuse(f"{agg.func} has no DP form here")
    elif isinstance(node, exp.Literal | exp.Null):
        if isinstance(node, exp.Literal) and node.is_string:
            raise _refuse("text cannot be computed with; " + _SUPPORTED)
    elif isinstance(node, exp.Pow):
        _check_value(node.this, compiled)
        _constant(node.expression, "POWER's exponent")
    elif isinstance(node, exp.Round):
        _check_value(node.this, compiled)
        digits = node.args.get("decimals")
        if digits is not None and not _constant(digits, "ROUND's decimals").is_integer():
            raise _refuse("ROUND takes a whole number of decimals")
    elif isinstance(node, exp.Log):
        value = node.expression if node.expression is not None else node.this
        _check_value(value, compiled)
        if node.expression is not None:
            base = _constant(node.this, "LOG's base")
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
    elif isinstance(node, exp.Binary) and type(node) in _COMPARE:
        _check_value(node.left, compiled)
        _check_value(node.right, compiled)
    elif isinstance(node, exp.Between):
        for part in (node.this, node.args["low"], node.args["high"]):
            _check_value(part, compiled)
    elif isinstance(node, exp.In) and not node.args.get("query"):
        _check_value(node.this, compiled)
        for value in node.expressions:
            _constant(value, "each value of IN (...)")
    elif isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        _check_value(node.this, compiled)
    elif not isinstance(node, exp.Boolean):
        raise _refuse(
            "compare noisy aggregates or their arithmetic with =, <>, <, <=, >, >=, BETWEEN, "
            "IN or IS NULL, combined with AND / OR / NOT"
        )


# ---------------------------------------------------------------- evaluation (released values)


@dataclass
class _Released:
    """One DP answer's noisy quantities, read as released values (descaled)."""

    compiled: Compiled
    noisy: NoisyTable
    scale_of: Mapping[str, int]
    alpha: float
    widths: dict[tuple[str, float], float] = field(default_factory=dict)

    def width(self, quantity: str, alpha: float) -> float:
        """Half-width of the (1 - alpha) interval of one quantity, in released units."""
        key = (quantity, alpha)
        if key not in self.widths:
            zcdp = bool(self.compiled.budget and self.compiled.budget.zcdp)
            scale = self.noisy.scales[quantity]
            self.widths[key] = accuracy(zcdp, scale, alpha) / self.scale_of[quantity]
        return self.widths[key]

    def scale(self, quantity: str) -> float:
        return self.noisy.scales[quantity] / self.scale_of[quantity]

    def quantity(self, name: str, alpha: float) -> Cell:
        """A noisy quantity, row by row: clamped to where its true value lies (a count is
        never negative, nor a sum of non-negative values), with its interval at ``alpha``."""
        unit = self.scale_of[name]
        raw = self.noisy.values[name]
        low, high = self._natural(name)
        width = self.width(name, alpha)
        partials = {name: 1.0}

        def cell(row: int) -> iv.Noisy:
            value: int | float = min(max(raw[row] / unit, low), high)
            if unit == 1:
                value = int(value)
            return iv.Noisy(value, (max(value - width, low), min(value + width, high)), partials)

        return cell

    def _natural(self, name: str) -> tuple[float, float]:
        quantity = next(q for q in self.compiled.quantities if q.name == name)
        if quantity.bound is None:  # counts
            return 0.0, iv.INF
        bound = quantity.bound
        return (0.0 if bound.low >= 0 else -iv.INF), (0.0 if bound.high <= 0 else iv.INF)


Cell = Callable[[int], iv.Noisy]
"""One output's released value in a given row (the tree is compiled once per answer)."""
Leaf = Callable[[_Released, Aggregate, float], Cell]


def _single(released: _Released, agg: Aggregate, alpha: float) -> Cell:
    (name,) = quantity_key(released.compiled, agg.func, agg.ref)
    return released.quantity(name, alpha)


def _average(released: _Released, agg: Aggregate, alpha: float) -> Cell:
    """AVG = noisy SUM / noisy COUNT, within the column's bounds; its interval is the ratio
    of the two intervals (the whole bounds when the count's interval reaches 0)."""
    total_name, count_name = quantity_key(released.compiled, agg.func, agg.ref)
    total = released.quantity(total_name, alpha)
    count = released.quantity(count_name, alpha)
    assert agg.ref is not None
    bounds = _rules.bounds_of(agg.ref, released.compiled.effective.of(agg.ref.dataset))
    low, high = bounds if bounds is not None else (-iv.INF, iv.INF)

    def cell(row: int) -> iv.Noisy:
        divisor = count(row)
        if divisor.value is None or divisor.value <= 0:
            return iv.Noisy(None, (low, high))
        ratio = iv.div(total(row), divisor)
        interval = ratio.interval if ratio.interval is not None else (low, high)
        return iv.clamp(iv.Noisy(ratio.value, interval, ratio.partials), low, high)

    return cell


LEAVES: dict[str, Leaf] = {
    "COUNT": _single,
    "COUNT_DISTINCT": _single,
    "SUM": _single,
    "AVG": _average,
}
"""How each DP aggregate is read from its noisy quantities (``quantity_key`` names them)."""


def quantities_of(node: Any, compiled: Compiled) -> set[str]:
    """The distinct noisy quantities an expression is computed from."""
    out: set[str] = set()
    for agg in node.find_all(*AGG_FUNCS):
        found = _aggregate_of(agg, compiled.query)
        out.update(quantity_key(compiled, found.func, found.ref))
    return out


def _function(node: Any) -> Callable[[iv.Noisy], iv.Noisy]:
    """The interval form of a one-argument function of the SELECT list."""
    if isinstance(node, exp.Abs):
        return iv.absolute
    if isinstance(node, exp.Sqrt):
        return lambda a: iv.monotone(
            a, math.sqrt, lambda x: 0.5 / math.sqrt(x) if x > 0 else 0.0, domain=(0.0, iv.INF)
        )
    if isinstance(node, exp.Ln | exp.Log):
        base = math.e
        if isinstance(node, exp.Log):  # DuckDB's LOG(x) is base 10
            base = _constant(node.this) if node.expression is not None else 10.0
        factor = math.log(base)
        return lambda a: iv.monotone(
            a, lambda x: math.log(x) / factor, lambda x: 1.0 / (x * factor),
            domain=(0.0, iv.INF), open_low=True, increasing=factor > 0,
        )  # fmt: skip
    if isinstance(node, exp.Exp):
        return lambda a: iv.monotone(a, math.exp, math.exp)
    if isinstance(node, exp.Floor | exp.Ceil):  # the label keeps the noise of the argument
        step = math.floor if isinstance(node, exp.Floor) else math.ceil
        return lambda a: iv.monotone(a, lambda x: float(step(x)), lambda x: 1.0)
    if isinstance(node, exp.Sign):
        return lambda a: iv.monotone(a, lambda x: float((x > 0) - (x < 0)), lambda x: 0.0)
    if isinstance(node, exp.Round):
        decimals = node.args.get("decimals")
        digits = int(_constant(decimals)) if decimals is not None else 0

        def rounded(a: iv.Noisy) -> iv.Noisy:
            out = iv.monotone(a, lambda x: iv.round_half_away(x, digits), lambda x: 1.0)
            if isinstance(a.value, int) and digits >= 0:  # an integer stays itself
                return iv.Noisy(a.value, out.interval, out.partials)
            return out

        return rounded
    raise _refuse(f"{node.sql()} cannot be computed from noisy values")


_OPERATORS: Mapping[type[exp.Expr], Callable[[iv.Noisy, iv.Noisy], iv.Noisy]] = {
    exp.Add: iv.add, exp.Sub: iv.sub, exp.Mul: iv.mul, exp.Div: iv.div,
}  # fmt: skip


def build(node: Any, released: _Released, alpha: float) -> Cell:
    """Compile a SELECT item (or one side of a HAVING test) into its value per row."""
    if isinstance(node, exp.Paren):
        return build(node.this, released, alpha)
    if type(node) in AGG_FUNCS:
        agg = _aggregate_of(node, released.compiled.query)
        return LEAVES[agg.func](released, agg, alpha)
    if isinstance(node, exp.Column):  # an output named in HAVING
        return build(_output(node, released.compiled), released, alpha)
    if isinstance(node, exp.Literal | exp.Null):
        value = literal_value(node)
        constant = iv.Noisy.constant(value if isinstance(value, int | float) else None)
        return lambda row: constant
    if isinstance(node, exp.Neg):
        inner = build(node.this, released, alpha)
        return lambda row: iv.neg(inner(row))
    if type(node) in _OPERATORS:
        op = _OPERATORS[type(node)]
        left, right = build(node.left, released, alpha), build(node.right, released, alpha)
        return lambda row: op(left(row), right(row))
    if isinstance(node, exp.Pow):
        base, exponent = build(node.this, released, alpha), _constant(node.expression)
        return lambda row: iv.power(base(row), exponent)
    if isinstance(node, exp.Greatest | exp.Least):
        parts = [build(p, released, alpha) for p in [node.this, *node.expressions]]
        greatest = isinstance(node, exp.Greatest)
        return lambda row: iv.extreme([p(row) for p in parts], greatest=greatest)
    argument = node.expression if isinstance(node, exp.Log) and node.expression else node.this
    fn, inner = _function(node), build(argument, released, alpha)
    return lambda row: fn(inner(row))


Test = Callable[[int], bool | None]


def build_test(node: Any, released: _Released) -> Test:
    """Compile a HAVING condition on the released values (SQL's three-valued logic)."""

    def value(part: Any) -> Callable[[int], Any]:
        cell = build(part, released, released.alpha)
        return lambda row: cell(row).value

    if isinstance(node, exp.Paren):
        return build_test(node.this, released)
    if isinstance(node, exp.Not):
        inner = build_test(node.this, released)
        return lambda row: None if (v := inner(row)) is None else not v
    if isinstance(node, exp.And | exp.Or):
        left, right = build_test(node.left, released), build_test(node.right, released)
        decisive = isinstance(node, exp.Or)  # True decides an OR, False decides an AND

        def junction(row: int) -> bool | None:
            parts = (left(row), right(row))
            if decisive in parts:
                return decisive
            return None if None in parts else not decisive

        return junction
    if isinstance(node, exp.Boolean):
        truth = bool(node.this)
        return lambda row: truth
    if isinstance(node, exp.Is):
        this = value(node.this)
        return lambda row: this(row) is None
    if isinstance(node, exp.Between):
        this, low, high = (value(node.args[k]) for k in ("this", "low", "high"))

        def between(row: int) -> bool | None:
            x, a, b = this(row), low(row), high(row)
            return None if x is None or a is None or b is None else a <= x <= b

        return between
    if isinstance(node, exp.In):
        this, options = value(node.this), [_constant(v) for v in node.expressions]
        return lambda row: None if (x := this(row)) is None else x in options
    assert isinstance(node, exp.Binary)  # a comparison (checked at compile time)
    compare = _COMPARE[type(node)]
    left, right = value(node.left), value(node.right)

    def comparison(row: int) -> bool | None:
        a, b = left(row), right(row)
        return None if a is None or b is None else compare(a, b)

    return comparison


# ---------------------------------------------------------------- the released table


@dataclass
class Answer:
    """The released rows, their intervals, each output's noise label, and notes."""

    rows: list[list[Any]]
    intervals: dict[str, list[list[float | None]]]
    noise: dict[str, float]
    notes: list[str]


def _sort_key(value: Any) -> tuple[bool, str, Any]:
    kind = "number" if isinstance(value, int | float) else type(value).__name__
    return (value is None, kind, value if value is not None else 0)


def _public(interval: tuple[float, float] | None) -> list[float | None]:
    if interval is None:
        return [None, None]
    return [v if math.isfinite(v) else None for v in interval]


def answer(
    compiled: Compiled, noisy: NoisyTable, scale_of: Mapping[str, int], alpha: float
) -> Answer:
    """Evaluate the SELECT list on the released noisy values, keep the rows whose HAVING
    holds on them, then ORDER BY and LIMIT: all after the noise, all free."""
    released = _Released(compiled, noisy, scale_of, alpha)
    shape = compiled.shape
    dims = {ref.key: i for i, ref in enumerate(shape.group_by)}
    having = compiled.query.tree.args.get("having")
    order = list(range(len(noisy.keys)))
    if noisy.threshold is not None:  # privately selected groups: an order of the keys alone
        order.sort(key=lambda i: tuple(_sort_key(v) for v in noisy.keys[i]))
    item_alpha = {
        item.name: alpha / max(1, len(quantities_of(item.node, compiled)))
        for item in shape.items
        if item.dimension is None
    }
    keep = build_test(having.this, released) if having is not None else None
    # per output: a group key's position, a constant, or a noisy cell's evaluator
    plan: list[tuple[str, int, Any, Cell | None]] = []
    for item in shape.items:
        if item.dimension is not None:
            plan.append((item.name, dims[item.dimension.key], None, None))
        elif not item.is_aggregate:  # a constant output: written in the query, not noisy
            fixed = (
                literal_value(item.node)
                if _is_literal(item.node)
                else build(item.node, released, alpha)(0).value
            )
            plan.append((item.name, -1, fixed, None))
        else:
            plan.append((item.name, -1, None, build(item.node, released, item_alpha[item.name])))
    rows: list[list[Any]] = []
    cells: list[dict[str, iv.Noisy]] = []
    for index in order:
        if keep is not None and not keep(index):
            continue
        key = noisy.keys[index]
        row: list[Any] = []
        noisy_cells: dict[str, iv.Noisy] = {}
        for name, position, fixed, evaluate in plan:
            if evaluate is None:
                row.append(key[position] if position >= 0 else fixed)
                continue
            cell = evaluate(index)
            value = cell.value
            row.append(value if value is None or math.isfinite(value) else None)
            noisy_cells[name] = cell
        rows.append(row)
        cells.append(noisy_cells)
    names = [item.name for item in shape.items]
    for name, desc in reversed(shape.order_by):  # stable sorts, last key first
        idx = names.index(name)
        present = [i for i in range(len(rows)) if rows[i][idx] is not None]
        perm = sorted(present, key=lambda i: rows[i][idx], reverse=desc)
        perm += [i for i in range(len(rows)) if rows[i][idx] is None]  # NULLS LAST (DuckDB)
        rows, cells = [rows[i] for i in perm], [cells[i] for i in perm]
    if shape.limit is not None:
        rows, cells = rows[: shape.limit], cells[: shape.limit]
    aggregates = [item for item in shape.items if item.is_aggregate]
    intervals = {item.name: [_public(c[item.name].interval) for c in cells] for item in aggregates}
    noise = _labels(released, aggregates, cells)
    notes = [
        f"{name}: no interval in {missing} row(s): a noisy divisor (or a logarithm's "
        "argument) there may be 0, so no finite range holds the true value"
        for name, column in intervals.items()
        if (missing := sum(1 for c in column if c == [None, None]))
        and any(c[name].value is not None for c in cells)
    ]
    return Answer(rows, intervals, noise, notes)


def _is_literal(node: Any) -> bool:
    return isinstance(node, exp.Literal | exp.Boolean | exp.Null | exp.Neg)


def _labels(
    released: _Released, items: Sequence[Any], cells: Sequence[Mapping[str, iv.Noisy]]
) -> dict[str, float]:
    """Each output's noise in its own units: a plain COUNT / SUM its quantity's scale; an
    AVG or an expression the median over rows of its propagated noise (delta method)."""
    scales = {q.name: released.scale(q.name) for q in released.compiled.quantities}
    out: dict[str, float] = {}
    for item in items:
        node = item.node.unnest() if isinstance(item.node, exp.Paren) else item.node
        parts = quantities_of(node, released.compiled)
        if type(node) in AGG_FUNCS and len(parts) == 1:
            out[item.name] = scales[next(iter(parts))]
            continue
        found = [iv.noise_of(c[item.name], scales) for c in cells]
        present = [n for n in found if n is not None]
        if present:
            out[item.name] = float(statistics.median(present))
    return out
