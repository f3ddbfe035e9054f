"""Canonical form of a query's meaning, so trivial rewrites map to one cache key.

Used to recognise a repeated DP query (which must not average its noise away): table
aliases become dataset names, comparisons put the column first (``5 < age`` is
``age > 5``), BETWEEN becomes two comparisons, IN lists are sorted and de-duplicated,
AND / OR operands are flattened, de-duplicated and sorted, output names are dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from sqlglot import exp

_FLIP: dict[type[exp.Expression], type[exp.Expression]] = {
    exp.GT: exp.LT,
    exp.LT: exp.GT,
    exp.GTE: exp.LTE,
    exp.LTE: exp.GTE,
    exp.EQ: exp.EQ,
    exp.NEQ: exp.NEQ,
}


_NEGATE: dict[type[exp.Expression], Any] = {
    exp.GT: exp.LTE,
    exp.LTE: exp.GT,
    exp.GTE: exp.LT,
    exp.LT: exp.GTE,
    exp.EQ: exp.NEQ,
    exp.NEQ: exp.EQ,
}


def _flatten(node: Any, kind: type[exp.Expression]) -> list[Any]:
    if isinstance(node, exp.Paren):
        return _flatten(node.this, kind)
    if isinstance(node, kind):
        binary: Any = node
        return _flatten(binary.left, kind) + _flatten(binary.right, kind)
    return [node]


def _expand_between(node: Any) -> Any:
    if isinstance(node, exp.Between):
        low = exp.GTE(this=node.this.copy(), expression=node.args["low"].copy())
        high = exp.LTE(this=node.this.copy(), expression=node.args["high"].copy())
        return exp.And(this=low, expression=high)
    return node


def canonical_predicate(node: Any) -> str:
    """A text form of a WHERE tree that is equal for trivially equivalent rewrites."""
    return _canonical(node.copy().transform(_expand_between))


def _canonical(node: Any) -> str:
    if isinstance(node, exp.Paren):
        return _canonical(node.this)
    for junction, word in ((exp.And, "AND"), (exp.Or, "OR")):
        if isinstance(node, junction):
            parts = sorted({_canonical(p) for p in _flatten(node, junction)})
            return parts[0] if len(parts) == 1 else f"{word}({', '.join(parts)})"
    if isinstance(node, exp.Not):
        inner: Any = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
        if type(inner) in _NEGATE:  # NOT a >= b is a < b (both drop NULLs in WHERE)
            return _canonical(_NEGATE[type(inner)](this=inner.left, expression=inner.right))
        return f"NOT({_canonical(node.this)})"
    if type(node) in _FLIP:
        left, right = node.left, node.right
        kind: type[exp.Expression] = type(node)
        if not isinstance(left, exp.Column) and isinstance(right, exp.Column):
            left, right, kind = right, left, _FLIP[kind]
        return f"{kind.__name__}({left.sql()}, {right.sql()})"
    if isinstance(node, exp.Between):
        low = exp.GTE(this=node.this.copy(), expression=node.args["low"].copy())
        high = exp.LTE(this=node.this.copy(), expression=node.args["high"].copy())
        return _canonical(exp.And(this=low, expression=high))
    if isinstance(node, exp.In):
        values = sorted({v.sql() for v in node.expressions})
        if len(values) == 1:
            return f"EQ({node.this.sql()}, {values[0]})"
        return f"IN({node.this.sql()}, {', '.join(values)})"
    return str(node.sql())


def canonical_key(tree: exp.Select, tables: dict[str, str], extra: Iterable[Any] = ()) -> str:
    """SHA-256 of the query's canonical meaning (plus ``extra`` such as the budget)."""
    tree = tree.copy()
    renamed: dict[str, str] = {}
    counts: dict[str, int] = {}
    for alias, dataset in tables.items():
        counts[dataset] = counts.get(dataset, 0) + 1
        renamed[alias] = f"{dataset}#{counts[dataset]}"
    for column in tree.find_all(exp.Column):
        if column.table in renamed:
            column.set("table", exp.to_identifier(renamed[column.table], quoted=True))
    where = tree.args.get("where")
    group = tree.args.get("group")
    joins = sorted(
        _canonical(j.args["on"]) for j in tree.args.get("joins") or [] if j.args.get("on")
    )
    doc = {
        "tables": sorted(renamed.values()),
        "joins": joins,
        "where": _canonical(where.this) if where is not None else None,
        "group": sorted(g.sql() for g in group.expressions) if group is not None else [],
        "extra": list(extra),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
