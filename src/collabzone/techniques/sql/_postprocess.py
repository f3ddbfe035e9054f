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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlglot import exp

from collabzone.techniques.sql import _interval as iv
from collabzone.techniques.sql import _rules
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._dp import NoisyTable, accuracy
from collabzone.techniques.sql._payload import jsonable
from collabzone.techniques.sql._postcheck import (
    COMPARISONS,
    DP_AGGREGATES,
    Unsupported,
    aggregate_of,
    constant,
    is_literal,
    output_of,
)
from collabzone.techniques.sql._quantities import quantity_key
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

    @property
    def size(self) -> int:
        return len(self.noisy.keys)

    def quantity(self, name: str, alpha: float) -> iv.Noisy:
        """A noisy quantity as a column: clamped to where its true value lies (a count is
        never negative, nor a sum of non-negative values), its interval at ``alpha``."""
        unit = self.scale_of[name]
        raw = np.asarray(self.noisy.values[name], dtype=np.float64) / unit
        low, high = self._natural(name)
        width = self.width(name, alpha)
        value = np.clip(raw, low, high)
        return iv.Noisy(
            value, np.maximum(value - width, low), np.minimum(value + width, high),
            {name: np.ones(self.size)}, unit == 1,
        )  # fmt: skip

    def _natural(self, name: str) -> tuple[float, float]:
        quantity = next(q for q in self.compiled.quantities if q.name == name)
        if quantity.bound is None:  # counts
            return 0.0, iv.INF
        bound = quantity.bound
        return (0.0 if bound.low >= 0 else -iv.INF), (0.0 if bound.high <= 0 else iv.INF)


Leaf = Callable[[_Released, Aggregate, float], iv.Noisy]


def _single(released: _Released, agg: Aggregate, alpha: float) -> iv.Noisy:
    (name,) = quantity_key(released.compiled, agg.func, agg.ref)
    return released.quantity(name, alpha)


def _average(released: _Released, agg: Aggregate, alpha: float) -> iv.Noisy:
    """AVG = noisy SUM / noisy COUNT, within the column's bounds; its interval is the ratio
    of the two intervals (the whole bounds where the count's interval reaches 0)."""
    total_name, count_name = quantity_key(released.compiled, agg.func, agg.ref)
    count = released.quantity(count_name, alpha)
    ratio = iv.div(released.quantity(total_name, alpha), count)
    assert agg.ref is not None
    bounds = _rules.bounds_of(agg.ref, released.compiled.effective.of(agg.ref.dataset))
    low, high = bounds if bounds is not None else (-iv.INF, iv.INF)
    known = ~np.isnan(ratio.low)
    value = np.where(count.value > 0, ratio.value, np.nan)
    return iv.clamp(
        iv.Noisy(value, np.where(known, ratio.low, low), np.where(known, ratio.high, high),
                 ratio.partials),
        low, high,
    )  # fmt: skip


def _variance(released: _Released, agg: Aggregate, alpha: float) -> iv.Noisy:
    """VAR / STDDEV as SmartNoise computes them: SUM(x*x)/n - (SUM(x)/n)^2 from the three
    noisy quantities (times n/(n-1) for the sample forms), clamped to [0, ((hi-lo)/2)^2]
    (no variance is negative, none exceeds that of the bounds); STDDEV is its square root.
    Intervals by interval arithmetic on the three quantities' joint intervals."""
    with np.errstate(all="ignore"):  # undefined where a noisy count is <= 1: NULL there
        return _moments(released, agg, alpha)


def _moments(released: _Released, agg: Aggregate, alpha: float) -> iv.Noisy:
    total_name, squares_name, count_name = quantity_key(released.compiled, agg.func, agg.ref)
    count = released.quantity(count_name, alpha)
    mean = iv.div(released.quantity(total_name, alpha), count)
    var = iv.sub(iv.div(released.quantity(squares_name, alpha), count), iv.power(mean, 2))
    if agg.func in ("VAR", "STDDEV"):
        one = iv.Noisy.constant(1, released.size)
        var = iv.mul(var, iv.div(count, iv.sub(count, one)))
    assert agg.ref is not None
    bounds = _rules.bounds_of(agg.ref, released.compiled.effective.of(agg.ref.dataset))
    low, high = bounds if bounds is not None else (-iv.INF, iv.INF)
    top = ((high - low) / 2) ** 2
    known = ~np.isnan(var.low)
    value = np.where(count.value > 1, var.value, np.nan)
    var = iv.clamp(
        iv.Noisy(value, np.where(known, var.low, 0.0), np.where(known, var.high, top),
                 var.partials),
        0.0, top,
    )  # fmt: skip
    if agg.func.startswith("STDDEV"):
        return iv.monotone(var, np.sqrt, lambda x: 0.5 / np.sqrt(x), domain=(0.0, iv.INF))
    return var


def _order_statistic(released: _Released, agg: Aggregate, alpha: float) -> iv.Noisy:
    """MIN / MAX / MEDIAN / QUANTILE_CONT: the private quantile released beside the noisy
    table (``NoisyTable.order_stats``), one per public group when grouped; its interval is the declared bounds, where the true
    value lies whatever the noise."""
    (name,) = quantity_key(released.compiled, agg.func, agg.ref, agg.q)
    values, (low, high) = released.noisy.order_stats[name]
    size = released.size
    value = np.asarray(values, dtype=np.float64)
    if value.size != size:  # one value for an ungrouped query
        value = np.full(size, value[0])
    return iv.Noisy(value, np.full(size, low), np.full(size, high))


LEAVES: dict[str, Leaf] = {
    "COUNT": _single,
    "COUNT_DISTINCT": _single,
    "SUM": _single,
    "AVG": _average,
    "VAR": _variance,
    "VAR_POP": _variance,
    "STDDEV": _variance,
    "STDDEV_POP": _variance,
    "MIN": _order_statistic,
    "MAX": _order_statistic,
    "MEDIAN": _order_statistic,
    "QUANTILE": _order_statistic,
}
"""How each DP aggregate is read from its noisy quantities (``quantity_key`` names them)."""
assert set(LEAVES) == DP_AGGREGATES


def quantities_of(node: Any, compiled: Compiled) -> set[str]:
    """The distinct noisy quantities an expression is computed from."""
    out: set[str] = set()
    for agg in node.find_all(*AGG_FUNCS):
        found = aggregate_of(agg, compiled.query)
        out.update(quantity_key(compiled, found.func, found.ref, found.q))
    return out


def _function(node: Any, a: iv.Noisy) -> iv.Noisy:
    """A one-argument function of the SELECT list, on a whole column."""
    if isinstance(node, exp.Abs):
        return iv.absolute(a)
    if isinstance(node, exp.Sqrt):
        return iv.monotone(a, np.sqrt, lambda x: 0.5 / np.sqrt(x), domain=(0.0, iv.INF))
    if isinstance(node, exp.Ln | exp.Log):
        base = math.e
        if isinstance(node, exp.Log):  # DuckDB's LOG(x) is base 10
            base = constant(node.this) if node.expression is not None else 10.0
        factor = math.log(base)
        return iv.monotone(
            a, lambda x: np.log(x) / factor, lambda x: 1.0 / (x * factor),
            domain=(0.0, iv.INF), open_low=True, increasing=factor > 0,
        )  # fmt: skip
    if isinstance(node, exp.Exp):
        return iv.monotone(a, np.exp, np.exp)
    if isinstance(node, exp.Floor | exp.Ceil):  # the label keeps the noise of the argument
        step = np.floor if isinstance(node, exp.Floor) else np.ceil
        return iv.monotone(a, step, np.ones_like)
    if isinstance(node, exp.Sign):
        return iv.monotone(a, np.sign, np.zeros_like)
    if isinstance(node, exp.Round):
        decimals = node.args.get("decimals")
        digits = int(constant(decimals)) if decimals is not None else 0
        out = iv.monotone(a, lambda x: iv.round_half_away(x, digits), np.ones_like)
        if a.integral and digits >= 0:  # a whole number stays itself
            return iv.Noisy(a.value, out.low, out.high, out.partials, True)
        return out
    raise Unsupported(f"{node.sql()} cannot be computed from noisy values")


_OPERATORS: Mapping[type[exp.Expr], Callable[[iv.Noisy, iv.Noisy], iv.Noisy]] = {
    exp.Add: iv.add, exp.Sub: iv.sub, exp.Mul: iv.mul, exp.Div: iv.div,
}  # fmt: skip


def evaluate(node: Any, released: _Released, alpha: float) -> iv.Noisy:
    """A SELECT item (or one side of a HAVING test) on every released row at once."""
    if isinstance(node, exp.Paren):
        return evaluate(node.this, released, alpha)
    if type(node) in AGG_FUNCS:
        agg = aggregate_of(node, released.compiled.query)
        return LEAVES[agg.func](released, agg, alpha)
    if isinstance(node, exp.Column):  # an output named in HAVING
        return evaluate(output_of(node, released.compiled), released, alpha)
    if isinstance(node, exp.Literal | exp.Null):
        value = literal_value(node)
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        return iv.Noisy.constant(number, released.size)
    if isinstance(node, exp.Neg):
        return iv.neg(evaluate(node.this, released, alpha))
    if type(node) in _OPERATORS:
        left, right = evaluate(node.left, released, alpha), evaluate(node.right, released, alpha)
        return _OPERATORS[type(node)](left, right)
    if isinstance(node, exp.Pow):
        return iv.power(evaluate(node.this, released, alpha), constant(node.expression))
    if isinstance(node, exp.Greatest | exp.Least):
        parts = [evaluate(p, released, alpha) for p in [node.this, *node.expressions]]
        return iv.extreme(parts, greatest=isinstance(node, exp.Greatest))
    argument = node.expression if isinstance(node, exp.Log) and node.expression else node.this
    return _function(node, evaluate(argument, released, alpha))


Truth = npt.NDArray[np.float64]
"""A HAVING condition per row in SQL's three-valued logic: 1 true, 0 false, NaN unknown."""


def _truth(mask: npt.NDArray[np.bool_], unknown: npt.NDArray[np.bool_]) -> Truth:
    return np.where(unknown, np.nan, mask.astype(np.float64))


def holds(node: Any, released: _Released) -> Truth:
    """A HAVING condition on the released values of every row."""

    def value(part: Any) -> iv.Array:
        return evaluate(part, released, released.alpha).value

    if isinstance(node, exp.Paren):
        return holds(node.this, released)
    if isinstance(node, exp.Not):
        return 1.0 - holds(node.this, released)
    if isinstance(node, exp.And | exp.Or):
        left, right = holds(node.left, released), holds(node.right, released)
        decisive = 1.0 if isinstance(node, exp.Or) else 0.0  # True decides OR, False AND
        decided = (left == decisive) | (right == decisive)
        unknown = np.isnan(left) | np.isnan(right)
        return np.where(decided, decisive, np.where(unknown, np.nan, 1.0 - decisive))
    if isinstance(node, exp.Boolean):
        return np.full(released.size, 1.0 if node.this else 0.0)
    if isinstance(node, exp.Is):
        return np.isnan(value(node.this)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        if isinstance(node, exp.Between):
            x, low, high = (value(node.args[k]) for k in ("this", "low", "high"))
            unknown = np.isnan(x) | np.isnan(low) | np.isnan(high)
            return _truth((low <= x) & (x <= high), unknown)
        if isinstance(node, exp.In):
            x = value(node.this)
            return _truth(np.isin(x, [constant(v) for v in node.expressions]), np.isnan(x))
        assert isinstance(node, exp.Binary)  # a comparison (checked at compile time)
        left, right = value(node.left), value(node.right)
        compared = np.asarray(COMPARISONS[type(node)](left, right), dtype=bool)
        return _truth(compared, np.isnan(left) | np.isnan(right))


# ---------------------------------------------------------------- the released table


@dataclass
class Answer:
    """The released rows, their intervals, each output's noise label, and notes. Every
    cell is JSON-safe already (group values through ``_json_column``, noisy values through
    ``_values``, constants through ``jsonable``)."""

    rows: list[list[Any]]
    intervals: dict[str, list[list[float | None]]]
    noise: dict[str, float]
    notes: list[str]


def _sort_key(value: Any) -> tuple[bool, str, Any]:
    kind = "number" if isinstance(value, int | float) else type(value).__name__
    return (value is None, kind, value if value is not None else 0)


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
        keys = noisy.keys
        firsts = list(map(itemgetter(0), keys)) if set(map(len, keys)) == {1} else []
        if firsts and set(map(type, firsts)) == {str}:  # (the same order, faster)
            order.sort(key=firsts.__getitem__)
        else:
            order.sort(key=lambda i: tuple(_sort_key(v) for v in keys[i]))
    item_alpha = {
        item.name: alpha / max(1, len(quantities_of(item.node, compiled)))
        for item in shape.items
        if item.dimension is None
    }
    if having is not None:
        kept = (holds(having.this, released) == 1.0).tolist()
        order = [i for i in order if kept[i]]
    # per output: a group key's position, or a column computed on every row at once
    columns: dict[str, iv.Noisy] = {}
    released_values: dict[str, list[Any]] = {}
    for item in shape.items:
        if item.dimension is not None:
            continue
        if is_literal(item.node):  # a constant output: written in the query, not noisy
            fixed = jsonable(literal_value(item.node))
            released_values[item.name] = [fixed] * released.size
            continue
        column = evaluate(item.node, released, item_alpha.get(item.name, alpha))
        released_values[item.name] = _values(column)
        if item.is_aggregate:
            columns[item.name] = column
    sources = [
        list(map(itemgetter(dims[item.dimension.key]), noisy.keys))
        if item.dimension is not None
        else released_values[item.name]
        for item in shape.items
    ]
    # one row per released group: each column read at the groups' order, then transposed
    picks = [[source[index] for index in order] for source in sources]
    rows = [list(row) for row in zip(*picks, strict=True)] if picks else [[] for _ in order]
    names = [item.name for item in shape.items]
    for name, desc in reversed(shape.order_by):  # stable sorts, last key first
        idx = names.index(name)
        present = [i for i in range(len(rows)) if rows[i][idx] is not None]
        perm = sorted(present, key=lambda i: rows[i][idx], reverse=desc)
        perm += [i for i in range(len(rows)) if rows[i][idx] is None]  # NULLS LAST (DuckDB)
        rows, order = [rows[i] for i in perm], [order[i] for i in perm]
    if shape.limit is not None:
        rows, order = rows[: shape.limit], order[: shape.limit]
    picked = np.asarray(order, dtype=np.intp)
    intervals = {name: _intervals(column, picked) for name, column in columns.items()}
    noise = _labels(released, [i for i in shape.items if i.name in columns], columns, picked)
    notes = [
        f"{name}: no interval in {missing} row(s): a noisy divisor (or a logarithm's "
        "argument) there may be 0, so no finite range holds the true value"
        for name, column in columns.items()
        if (missing := int(np.sum(np.isnan(column.low[picked]) & ~np.isnan(column.value[picked]))))
    ]
    return Answer(rows, intervals, noise, notes)


def _values(column: iv.Noisy) -> list[Any]:
    """Released values as JSON numbers: NULL where undefined or infinite, whole numbers
    as integers."""
    finite = np.isfinite(column.value)
    if finite.all():  # (the common case, converted at once: int64 is exact below 2**53)
        if not column.integral:
            return column.value.tolist()  # type: ignore[no-any-return]
        if not column.value.size or np.abs(column.value).max() < 2**53:
            return column.value.astype(np.int64).tolist()  # type: ignore[no-any-return]
    if column.integral:
        return [int(v) if ok else None for v, ok in zip(column.value.tolist(), finite, strict=True)]
    return [v if ok else None for v, ok in zip(column.value.tolist(), finite, strict=True)]


def _intervals(column: iv.Noisy, rows: npt.NDArray[np.intp]) -> list[list[float | None]]:
    """[low, high] per released row; an infinite end (or no interval) is null."""
    low, high = column.low[rows], column.high[rows]
    if np.isfinite(low).all() and np.isfinite(high).all():  # (the common case, at once)
        return np.column_stack([low, high]).tolist() if low.size else []
    out = []
    for lo, hi in zip(low.tolist(), high.tolist(), strict=True):
        out.append([lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None])
    return out


def _labels(
    released: _Released,
    items: Sequence[Any],
    columns: Mapping[str, iv.Noisy],
    rows: npt.NDArray[np.intp],
) -> dict[str, float]:
    """Each output's noise in its own units: a plain COUNT / SUM its quantity's scale; an
    AVG or an expression the median over released rows of its propagated noise (delta
    method)."""
    scales = {q.name: released.scale(q.name) for q in released.compiled.quantities}
    out: dict[str, float] = {}
    for item in items:
        node = item.node.unnest() if isinstance(item.node, exp.Paren) else item.node
        parts = quantities_of(node, released.compiled)
        if any(part not in scales for part in parts):
            continue  # an order statistic: its noise is no scale (see the notes)
        if type(node) in AGG_FUNCS and len(parts) == 1:
            out[item.name] = scales[next(iter(parts))]
            continue
        noise = iv.noise_of(columns[item.name], scales)[rows]
        present = noise[np.isfinite(noise)]
        if present.size:
            out[item.name] = float(np.median(present))
    return out
