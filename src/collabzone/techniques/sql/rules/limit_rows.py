"""Rule: cap the number of rows the engine may return (result-size limit).

The cap is one more than the agreement's ``max_result_rows`` so the executor can tell a
result that fits from one that was cut, and refuse the latter instead of silently
truncating it.
"""

from __future__ import annotations

from sqlglot import exp

from collabzone.techniques.sql.rules._context import RewriteContext


def limit_rows(expression: exp.Select, *, ctx: RewriteContext) -> exp.Select:
    """Add (or tighten) LIMIT to ``max_result_rows + 1`` (on a copy)."""
    if ctx.max_result_rows is None:
        return expression
    cap = ctx.max_result_rows + 1
    current = expression.args.get("limit")
    if current is not None:
        value = current.expression
        if isinstance(value, exp.Literal) and str(value.this).isdigit():
            cap = min(cap, int(value.this))
    out = expression.copy()
    out.set("limit", exp.Limit(expression=exp.Literal.number(cap)))
    return out
