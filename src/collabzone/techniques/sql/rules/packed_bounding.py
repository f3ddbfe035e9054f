"""Rule helper: each person's kept row as one packed BIGINT when the groups are public.

With limits of one row and one group per person, the DP rewrite keeps, per person, the
row whose group and values have the smallest salted hash (``ARG_MIN`` grouped by the
entity). The shipped form carries that row as a struct of the group's values (often
text) and the per-row contributions through an aggregate with one group per person (500k
in a 1M x 1M join): moving those structs is most of the DP join's cost.

When every GROUP BY column has a public domain (declared values or a public bin, the same
domains that spare partition selection), a group is a position in that domain. Then the
row is one integer in mixed radix: one digit per GROUP BY column (its value's index, or
the domain's size for a value outside it or NULL: such rows count in no released group,
as in the shipped form, where the release drops groups outside the domain), one digit per
contribution that varies (a clamped, integer-scaled value ``v`` in ``[low, high]`` as
``v - low + 1``, NULL as 0; a non-NULL test as 0 / 1). Each person keeps the packed row
with the smallest salted hash key of the shipped form: ``MIN`` over one UBIGINT with the
key's top bits above the packed value (``ARG_MIN(packed, key)`` when the packed value needs
more than 40 bits). That is the shipped form's row (up to ties in the key's top bits, where
the smaller packed value wins), so the contribution bounds, and the choice depending only
on that person's own rows, are unchanged. The next query sums the decoded digits per group
index; the last, over the few cells, turns each index back into the declared value.

Measured on a 1M x 1M join (docs/benchmarks.md, fifth pass): the engine's bounded query
about 0.6x the shipped form's CPU, its peak memory about 0.65x.

The packed form is DuckDB-only (like the shipped ``ARG_MIN``). It falls back to the shipped
form (returns None) when a domain is not public, holds NULL, a value of another type than
the column's, more than ``MAX_DOMAIN`` values, a COUNT(DISTINCT col) is asked (no bounded
digit), or the digits would not fit in 63 bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sqlglot import exp

from collabzone.techniques.sql.rules._context import (
    Quantity,
    RewriteContext,
    derived,
    named,
    quoted,
    select,
)

PACKING = True
"""Whether the rewrite packs when it can (benchmarks switch it off to compare forms)."""
MAX_DOMAIN = 64
"""Most values of one GROUP BY column packed: the index is a CASE over them, per row."""
MIN_KEY_BITS = 24
"""Fewest bits of the salted key kept above the packed value in the one-MIN form."""
LIMIT = 2**63
"""The packed digits' product must stay at most this: the largest value is 2^63 - 1."""

_KEPT = "_cz_k"
_INDEX = "_cz_g"
_INNER = "_cz_b"
_CELLS = "_cz_c"


def packable_domains(
    kinds: Sequence[str | None], public_keys: Sequence[tuple[Any, ...]] | None
) -> tuple[tuple[Any, ...], ...] | None:
    """Each GROUP BY column's public values when all can be packed, else None.

    ``kinds`` is each GROUP BY column's type (``string``, ``integer``, ``float``) or None
    for a public bin; ``public_keys`` is the product of the domains (``public_keys`` of
    ``_dp_params``), in order, so each column's domain is read back from it.
    """
    if not public_keys or not kinds or len(public_keys) > MAX_DOMAIN ** len(kinds):
        return None
    domains: list[tuple[Any, ...]] = []
    for i, kind in enumerate(kinds):
        values = tuple(dict.fromkeys(key[i] for key in public_keys))
        if not values or len(values) > MAX_DOMAIN:
            return None
        if all(isinstance(v, str) for v in values):
            if kind not in ("string", None):
                return None
        elif all(_whole(v) for v in values):
            if kind not in ("integer", "float", None):
                return None
        else:  # NULL, booleans, fractions, dates, mixed types: compared as the engine would
            return None
        domains.append(values)
    return tuple(domains)


def _whole(value: Any) -> bool:
    """A number equal to a 64-bit integer (compared exactly with any numeric column)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and float(value).is_integer() and abs(value) < 2**53


def _literal(value: Any, *, encode: bool) -> exp.Expression:
    if isinstance(value, str):
        return exp.Literal.string(value)
    number = int(value) if encode else value  # (decoded as declared: 10.0 stays a float)
    if number < 0:
        return exp.Neg(this=exp.Literal.number(-number))
    return exp.Literal.number(number)


def _num(value: int) -> exp.Expression:
    return exp.Literal.number(value) if value >= 0 else exp.Neg(this=exp.Literal.number(-value))


def _digit(slot: exp.Expression, weight: int, radix: int) -> exp.Expression:
    """``(packed // weight) % radix``: one digit read back from the packed value."""
    shifted = slot if weight == 1 else exp.IntDiv(this=slot, expression=_num(weight))
    return exp.Mod(this=exp.Paren(this=shifted), expression=_num(radix))


def _smallest(packed: exp.Expression, key: exp.Expression, width: int) -> exp.Expression:
    """Per person, the packed row with the smallest key: ``MIN`` of one UBIGINT holding the
    key's top bits above the packed value, when the packed value leaves at least
    ``MIN_KEY_BITS`` of the key (a plain MIN's state is cheaper than ARG_MIN's pair), else
    ``ARG_MIN(packed, key)``. Rows whose top key bits tie (chance about 2^-(64 - width) per
    pair) keep the smaller packed value: still a function of the person's own rows."""
    if 64 - width < MIN_KEY_BITS:
        return exp.ArgMin(this=packed, expression=key)
    bits = _num(width)
    top = exp.BitwiseLeftShift(this=exp.BitwiseRightShift(this=key, expression=bits),
                               expression=bits.copy())  # fmt: skip
    both = exp.BitwiseOr(
        this=top,
        expression=exp.Cast(this=packed, to=exp.DataType.build("UBIGINT", dialect="duckdb")),
    )
    low = exp.BitwiseAnd(this=exp.Min(this=both), expression=_num(2**width - 1))
    return exp.Cast(this=low, to=exp.DataType.build("BIGINT"))


def one_packed_row_per_entity(
    source: exp.Select,
    dims: list[Any],
    ctx: RewriteContext,
    per_row: Callable[[Quantity, str], exp.Expression],
) -> exp.Select | None:
    """The packed form of the one-row-per-entity bounding, or None to use the shipped one.

    ``per_row(quantity, engine)`` is the shipped form's per-row contribution (the clamped,
    scaled value for a sum), so both forms bound the same values.
    """
    domains = ctx.group_domains
    if not PACKING or ctx.engine != "duckdb" or domains is None or len(domains) != len(dims):
        return None
    digits: list[tuple[exp.Expression, int]] = []  # (code per row, radix), most significant first
    code: exp.Expression
    for dim, values in zip(dims, domains, strict=True):
        code = exp.Case(
            this=dim.copy(),
            ifs=[exp.If(this=_literal(v, encode=True), true=_num(i)) for i, v in enumerate(values)],
            default=_num(len(values)),
        )
        digits.append((code, len(values) + 1))
    decoders: list[tuple[Quantity, int]] = []  # (quantity, index of its digit or -1)
    for q in ctx.quantities:
        if q.kind in ("rows", "entities"):
            decoders.append((q, -1))
        elif q.kind == "nonnull" and q.column is not None:
            test = exp.Is(this=q.column.copy(), expression=exp.Null())
            digits.append((exp.If(this=test, true=_num(0), false=_num(1)), 2))
            decoders.append((q, len(digits) - 1))
        elif q.kind == "sum" and q.bound is not None:
            shifted = exp.Add(this=per_row(q, ctx.engine), expression=_num(1 - q.bound.low))
            code = exp.Coalesce(this=shifted, expressions=[_num(0)])
            digits.append((code, q.bound.high - q.bound.low + 2))
            decoders.append((q, len(digits) - 1))
        else:  # COUNT(DISTINCT col): the value itself, no bounded digit
            return None
    if not digits or math.prod(r for _, r in digits) > LIMIT:
        return None
    weights = [math.prod(r for _, r in digits[i + 1 :]) for i in range(len(digits))]
    width = (math.prod(r for _, r in digits) - 1).bit_length()  # bits of the packed value
    packed: exp.Expression = exp.Cast(this=digits[0][0], to=exp.DataType.build("BIGINT"))
    for code, radix in digits[1:]:  # Horner: ((d0 * r1 + d1) * r2 + d2)...; BIGINT all along
        packed = exp.Add(this=exp.Mul(this=exp.Paren(this=packed), expression=_num(radix)),
                         expression=code)  # fmt: skip
    # the shipped form's key, so both forms keep the same row of each person
    salt = exp.Literal.number(ctx.salt)
    row_cols = [q.column.copy() for q in ctx.quantities if q.column is not None]
    key = exp.Anonymous(this="hash", expressions=[*[d.copy() for d in dims], *row_cols, salt])
    inner = exp.Select(expressions=[named(_smallest(packed, key, width), _KEPT)])
    inner.set("from_", source.args["from_"])
    inner.set("joins", source.args.get("joins"))
    inner.set("where", source.args.get("where"))
    inner.set("group", exp.Group(expressions=[ctx.entity.copy()]))

    def kept() -> exp.Column:
        return exp.Column(this=quoted(_KEPT), table=quoted(_INNER))

    n_dims = len(dims)
    cell_weight = weights[n_dims - 1] if n_dims else 0
    totals: list[exp.Expression] = []
    for q, at in decoders:
        if at < 0:
            totals.append(named(exp.Count(this=exp.Star()), q.name))
            continue
        value = _digit(kept(), weights[at], digits[at][1])
        if q.kind == "sum":
            assert q.bound is not None
            value = exp.Add(this=exp.Nullif(this=value, expression=_num(0)),
                            expression=_num(q.bound.low - 1))  # fmt: skip
        total = exp.Cast(this=exp.Sum(this=value), to=exp.DataType.build("BIGINT"))
        totals.append(named(total, q.name))
    if not n_dims:  # (no GROUP BY: one cell; not reached with public domains, kept whole)
        return select(totals, derived(inner, _INNER))
    cell = exp.IntDiv(this=kept(), expression=_num(cell_weight))
    cells = select([named(cell.copy(), _INDEX), *totals], derived(inner, _INNER), group=[cell])

    def index() -> exp.Column:
        return exp.Column(this=quoted(_INDEX), table=quoted(_CELLS))

    items: list[exp.Expression] = []
    inside: list[exp.Expression] = []
    for i, values in enumerate(domains):
        position = _digit(index(), weights[i] // cell_weight, len(values) + 1)
        decoded = exp.Case(
            this=position.copy(),
            ifs=[
                exp.If(this=_num(j), true=_literal(v, encode=False)) for j, v in enumerate(values)
            ],
        )
        items.append(named(decoded, f"_cz_d{i}"))
        inside.append(exp.LT(this=position, expression=_num(len(values))))
    items += [named(exp.Column(this=quoted(q.name), table=quoted(_CELLS)), q.name)
              for q, _ in decoders]  # fmt: skip
    where = inside[0]
    for condition in inside[1:]:
        where = exp.And(this=where, expression=condition)
    return select(items, derived(cells, _CELLS), where=where)
