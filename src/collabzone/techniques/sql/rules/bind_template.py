"""Rule: bind a pre-approved report's parameters as typed, range-checked literals.

Templates are the owner's "predefined reports": SQL with ``:name`` placeholders and a
declared type (integer, float, string, boolean) and range (``min`` / ``max``) or value
list (``values``) per parameter. Values become literal nodes in the tree, never text
pasted into SQL, so a parameter cannot change the query's shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from collabzone.techniques.sql._frontend import QueryRejected


def _literal(name: str, value: Any, decl: Mapping[str, Any]) -> exp.Expression:
    kind = str(decl.get("type", "string"))
    if kind in ("integer", "float"):
        ok_type = int if kind == "integer" else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_type):
            raise QueryRejected("BAD_PARAMETER", f"parameter {name!r} must be a {kind}")
        if isinstance(value, float) and not math.isfinite(value):
            raise QueryRejected("BAD_PARAMETER", f"parameter {name!r} must be finite")
        low, high = decl.get("min"), decl.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise QueryRejected(
                "BAD_PARAMETER", f"parameter {name!r} must be within [{low}, {high}]"
            )
        node: exp.Expression = exp.Literal.number(abs(value))
        return exp.Neg(this=node) if value < 0 else node
    if kind == "boolean":
        if not isinstance(value, bool):
            raise QueryRejected("BAD_PARAMETER", f"parameter {name!r} must be true or false")
        return exp.Boolean(this=value)
    if not isinstance(value, str) or len(value) > 200:
        raise QueryRejected("BAD_PARAMETER", f"parameter {name!r} must be a short string")
    allowed = decl.get("values")
    if allowed is not None and value not in allowed:
        raise QueryRejected("BAD_PARAMETER", f"parameter {name!r} must be one of the listed values")
    return exp.Literal.string(value)


def bind_template(
    expression: exp.Select, *, declared: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any]
) -> exp.Select:
    """Replace every ``:name`` placeholder with its checked literal (a copy)."""
    unknown = set(values) - set(declared)
    if unknown:
        raise QueryRejected("BAD_PARAMETER", f"unknown parameters: {', '.join(sorted(unknown))}")
    missing = set(declared) - set(values)
    if missing:
        raise QueryRejected("BAD_PARAMETER", f"missing parameters: {', '.join(sorted(missing))}")
    tree = expression.copy()
    for node in list(tree.find_all(exp.Placeholder)):
        name = node.name
        if name not in declared:
            raise QueryRejected(
                "BAD_PARAMETER", f"the template uses an undeclared parameter {name!r}"
            )
        node.replace(_literal(name, values[name], declared[name]))
    return tree
