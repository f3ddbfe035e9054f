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

from collabzone.techniques.sql import _interval as iv
from collabzone.techniques.sql import _rules
from collabzone.techniques.sql._compile import Compiled, quantity_key
from collabzone.techniques.sql._dp import NoisyTable, accuracy
from collabzone.techniques.sql._postcheck import (
    COMPARISONS,
    DP_AGGREGATES,
    Unsupported,
    aggregate_of,
    constant,
    is_literal,
    output_of,
)
from collabzone.techniques.sql._shape import AGG_FUNCS, Aggregate, literal_value

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
assert set(LEAVES) == DP_AGGREGATES


def quantities_of(node: Any, compiled: Compiled) -> set[str]:
    """The distinct noisy quantities an expression is computed from."""
    out: set[str] = set()
    for agg in node.find_all(*AGG_FUNCS):
        found = aggregate_of(agg, compiled.query)
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
            base = constant(node.this) if node.expression is not None else 10.0
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
        digits = int(constant(decimals)) if decimals is not None else 0

        def rounded(a: iv.Noisy) -> iv.Noisy:
            out = iv.monotone(a, lambda x: iv.round_half_away(x, digits), lambda x: 1.0)
            if isinstance(a.value, int) and digits >= 0:  # an integer stays itself
                return iv.Noisy(a.value, out.interval, out.partials)
            return out

        return rounded
    raise Unsupported(f"{node.sql()} cannot be computed from noisy values")


_OPERATORS: Mapping[type[exp.Expr], Callable[[iv.Noisy, iv.Noisy], iv.Noisy]] = {
    exp.Add: iv.add, exp.Sub: iv.sub, exp.Mul: iv.mul, exp.Div: iv.div,
}  # fmt: skip


def build(node: Any, released: _Released, alpha: float) -> Cell:
    """Compile a SELECT item (or one side of a HAVING test) into its value per row."""
    if isinstance(node, exp.Paren):
        return build(node.this, released, alpha)
    if type(node) in AGG_FUNCS:
        agg = aggregate_of(node, released.compiled.query)
        return LEAVES[agg.func](released, agg, alpha)
    if isinstance(node, exp.Column):  # an output named in HAVING
        return build(output_of(node, released.compiled), released, alpha)
    if isinstance(node, exp.Literal | exp.Null):
        value = literal_value(node)
        fixed = iv.Noisy.constant(value if isinstance(value, int | float) else None)
        return lambda row: fixed
    if isinstance(node, exp.Neg):
        inner = build(node.this, released, alpha)
        return lambda row: iv.neg(inner(row))
    if type(node) in _OPERATORS:
        op = _OPERATORS[type(node)]
        left, right = build(node.left, released, alpha), build(node.right, released, alpha)
        return lambda row: op(left(row), right(row))
    if isinstance(node, exp.Pow):
        base, exponent = build(node.this, released, alpha), constant(node.expression)
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
        this, options = value(node.this), [constant(v) for v in node.expressions]
        return lambda row: None if (x := this(row)) is None else x in options
    assert isinstance(node, exp.Binary)  # a comparison (checked at compile time)
    compare = COMPARISONS[type(node)]
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
                if is_literal(item.node)
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
