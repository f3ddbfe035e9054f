"""The phantom grid: every region the released conditions tell apart, one point each.

A dimension is one column of a protected dataset that a released condition or grouping
used. An :class:`AttributeDim` cuts the column's declared domain at every literal the
released conditions compared it with (and every released group value): for numbers and
dates the points and the open intervals between them (empty integer intervals dropped),
for text and booleans each value and "any other value" (when the domain leaves room for
one), plus NULL when the column may be empty. A :class:`TokenDim` splits a join key's
values by the token sets the joins matched against: each class is the tokens in exactly
the same sets, and class 0 is "in none of them".

The regions are cut only where a condition can change its truth, so each condition is
constant on each cell, every cell holds at least one possible value (its representative),
and every point of the product grid is a region some record could occupy.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collabzone.disclosure._atoms import (
    Hashes,
    Labels,
    membership_codes,
    membership_codes_sparse,
    refine,
)
from collabzone.disclosure._lookup import positions as lookup_positions
from collabzone.disclosure._merge import refine_tokens
from collabzone.model import Column, ColumnType

_EPOCH = dt.date(1970, 1, 1)
_OTHER_TEXT = "\x00collabzone-other"
INTEGRAL = (ColumnType.INTEGER, ColumnType.DATE, ColumnType.TIMESTAMP)


def to_ordinal(kind: ColumnType, value: Any) -> Any:
    """A literal in the comparable form of its column (dates as days, timestamps as µs)."""
    if value is None:
        return None
    if kind == ColumnType.DATE:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        return (day - _EPOCH).days
    if kind == ColumnType.TIMESTAMP:
        stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
        return round((stamp - dt.datetime(1970, 1, 1)) / dt.timedelta(microseconds=1))
    if kind == ColumnType.INTEGER:
        return int(value) if float(value).is_integer() else float(value)
    if kind == ColumnType.FLOAT:
        return float(value)
    if kind == ColumnType.BOOLEAN:
        return bool(value)
    return str(value)


def from_ordinal(kind: ColumnType, value: Any) -> Any:
    """The column value a cell's representative stands for (inverse of :func:`to_ordinal`)."""
    if value is None:
        return None
    if kind == ColumnType.DATE:
        return _EPOCH + dt.timedelta(days=int(value))
    if kind == ColumnType.TIMESTAMP:
        return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(value))
    return value


@dataclass(frozen=True)
class Cell:
    """One cell of a dimension: a point, an interval, the other values, or NULL."""

    kind: str
    representative: Any
    low: Any = None
    high: Any = None


@dataclass
class AttributeDim:
    """A column of the protected dataset, cut at every literal that was compared with it."""

    column: str
    type: ColumnType
    literals: list[Any] = field(default_factory=list)
    nullable: bool = True
    domain: list[Any] | dict[str, Any] | None = None

    @classmethod
    def of(cls, column: Column) -> AttributeDim:
        return cls(column.name, column.type, [], column.nullable, column.domain)

    def with_literals(self, values: Sequence[Any]) -> AttributeDim:
        found = {to_ordinal(self.type, v) for v in values if v is not None}
        if self.type == ColumnType.INTEGER:  # a fractional literal cuts between integers
            found = {v if isinstance(v, int) else math.floor(v) + 0.5 for v in found}
        merged = sorted(set(self.literals) | found, key=_sort_key)
        return AttributeDim(self.column, self.type, merged, self.nullable, self.domain)

    def _bounds(self) -> tuple[Any, Any]:
        if isinstance(self.domain, dict):
            return (
                to_ordinal(self.type, self.domain.get("min")),
                to_ordinal(self.type, self.domain.get("max")),
            )
        return None, None

    def cells(self) -> list[Cell]:
        """The satisfiable cells, in a fixed order (NULL last)."""
        if self.type in (ColumnType.STRING, ColumnType.BOOLEAN):
            out = self._discrete_cells()
        else:
            out = self._ordered_cells()
        if self.nullable:
            out.append(Cell("null", None))
        return out

    def _discrete_cells(self) -> list[Cell]:
        if self.type == ColumnType.BOOLEAN:
            return [Cell("point", False, False, False), Cell("point", True, True, True)]
        allowed = [str(v) for v in self.domain] if isinstance(self.domain, list) else None
        points = [v for v in self.literals if allowed is None or v in allowed]
        out = [Cell("point", v, v, v) for v in points]
        if allowed is None:
            out.append(Cell("other", _OTHER_TEXT))
        else:
            rest = [v for v in allowed if v not in points]
            if rest:
                out.append(Cell("other", rest[0]))
        return out

    def _ordered_cells(self) -> list[Cell]:
        """Points at each literal and the non-empty open intervals between them."""
        low, high = self._bounds()
        integral = self.type in INTEGRAL
        out: list[Cell] = []
        bounds = [None, *self.literals, None]
        for i in range(len(bounds) - 1):
            a, b = bounds[i], bounds[i + 1]
            if i > 0:
                point = a
                inside = (low is None or point >= low) and (high is None or point <= high)
                if inside and (not integral or float(point).is_integer()):
                    out.append(Cell("point", point, point, point))
            rep = _interior(a, b, low, high, integral)
            if rep is not None:
                out.append(Cell("interval", rep, a, b))
        return out

    def classify(self, values: Sequence[Any]) -> np.ndarray:
        """The index of the cell holding each value (in comparable form), -1 if none."""
        cells = self.cells()
        out = np.full(len(values), -1, dtype=np.int64)
        if self.type in (ColumnType.STRING, ColumnType.BOOLEAN):
            index = {c.representative: i for i, c in enumerate(cells) if c.kind == "point"}
            other = next((i for i, c in enumerate(cells) if c.kind == "other"), -1)
            null = next((i for i, c in enumerate(cells) if c.kind == "null"), -1)
            for n, value in enumerate(values):
                out[n] = null if value is None else index.get(value, other)
            return out
        for n, value in enumerate(values):
            for i, cell in enumerate(cells):
                if _holds(cell, value):
                    out[n] = i
                    break
        return out

    def representatives(self) -> list[Any]:
        return [from_ordinal(self.type, c.representative) for c in self.cells()]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "attribute",
            "column": self.column,
            "type": self.type.value,
            "literals": self.literals,
            "nullable": self.nullable,
            "domain": self.domain,
        }


def _sorted_unique(values: Hashes) -> Hashes:
    """``values`` sorted without repeats (cheap when they arrive sorted, as sets do)."""
    if values.size > 1 and not bool(np.all(values[1:] > values[:-1])):
        values = np.sort(values)
        values = values[np.concatenate(([True], values[1:] != values[:-1]))]
    return values


def _sorted_union(a: Hashes, b: Hashes) -> Hashes:
    """The union of two sorted, repeat-free arrays (a merge, not a hash table)."""
    if a.size == 0:
        return b
    if b.size == 0:
        return a
    merged = np.concatenate((a, b))
    merged.sort(kind="stable")
    return merged[np.concatenate(([True], merged[1:] != merged[:-1]))]


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _interior(a: Any, b: Any, low: Any, high: Any, integral: bool) -> Any:
    """A value strictly between ``a`` and ``b`` (None: unbounded) inside [low, high], or
    None if there is none (an empty integer gap, an interval outside the domain)."""
    if integral:
        first = math.floor(a) + 1 if a is not None else None
        if low is not None and (first is None or first < low):
            first = math.ceil(low)
        last = math.ceil(b) - 1 if b is not None else None
        if high is not None and (last is None or last > high):
            last = math.floor(high)
        if first is not None and last is not None:
            return (first + last) // 2 if first <= last else None
        if first is not None:
            return first
        return last if last is not None else 0
    lower, lower_open = (a, True) if a is not None else (None, True)
    if low is not None and (lower is None or low > lower):
        lower, lower_open = low, False
    upper, upper_open = (b, True) if b is not None else (None, True)
    if high is not None and (upper is None or high < upper):
        upper, upper_open = high, False
    if lower is not None and upper is not None:
        if lower < upper:
            return (lower + upper) / 2
        return lower if lower == upper and not lower_open and not upper_open else None
    if lower is not None:
        return lower + 1.0 if lower_open else lower
    if upper is not None:
        return upper - 1.0 if upper_open else upper
    return 0.0


def _holds(cell: Cell, value: Any) -> bool:
    if cell.kind == "null":
        return value is None
    if value is None:
        return False
    if cell.kind == "point":
        return bool(value == cell.representative)
    if cell.kind == "other":
        return True  # reached only after every point cell said no
    low, high = cell.low, cell.high
    return (low is None or value > low) and (high is None or value < high)


@dataclass
class TokenDim:
    """A join key of the protected dataset, split by the token sets it was matched with.

    ``universe`` holds every token (64-bit hash) that any set named, sorted; ``labels``
    its class. Class 0 is "in none of the sets" and always exists (there are always
    people outside every list).
    """

    column: str
    universe: Hashes = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    labels: Labels = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    classes: int = 1

    def with_set(self, members: Hashes) -> tuple[TokenDim, np.ndarray]:
        """Refined by one more set; returns the new dimension and each new class's parent."""
        return self.with_sets([members])

    def with_sets(self, sets: Sequence[Hashes]) -> tuple[TokenDim, np.ndarray]:
        """Refined by several sets at once (the same classes as one set after another, in
        one pass); returns the new dimension and each new class's parent."""
        listed = [_sorted_unique(np.asarray(m).astype(np.uint64)) for m in sets]
        if not listed:
            return self, np.arange(self.classes, dtype=np.int64)
        fast = refine_tokens(self.universe, self.labels, self.classes, listed)
        if fast is not None:
            return TokenDim(self.column, fast.universe, fast.labels, fast.classes), fast.parents
        return self._with_sets_general(listed)

    def refined_by(
        self, sets: Sequence[Hashes], *, one_pass: bool = True
    ) -> tuple[TokenDim, np.ndarray, list[np.ndarray]]:
        """:meth:`with_sets`, and per set the classes of its tokens (:meth:`classes_in` of
        the new dimension). A few sets are merged in one compiled pass
        (:func:`collabzone.disclosure._merge.refine_tokens`: the same classes, numbered
        alike, and each set's classes on the way); ``one_pass=False`` forces the general
        path (tests compare the two)."""
        listed = [_sorted_unique(np.asarray(m).astype(np.uint64)) for m in sets]
        if not listed:
            return self, np.arange(self.classes, dtype=np.int64), []
        fast = refine_tokens(self.universe, self.labels, self.classes, listed) if one_pass else None
        if fast is not None:
            dim = TokenDim(self.column, fast.universe, fast.labels, fast.classes)
            return dim, fast.parents, fast.classes_of_set
        dim, parent = self._with_sets_general(listed)
        return dim, parent, [dim.classes_in(m) for m in listed]

    def _with_sets_general(self, listed: list[Hashes]) -> tuple[TokenDim, np.ndarray]:
        """Every case: sort the union, search each set in it, code, refine."""
        joined = np.concatenate(listed)
        joined.sort(kind="stable")  # sorted runs: a merge
        universe = _sorted_union(self.universe, _sorted_unique(joined))
        old = np.zeros(universe.size, dtype=np.int64)
        if self.universe.size:
            old[lookup_positions(universe, self.universe)] = self.labels
        # each set is a sorted run: a galloping search walks the universe once per set
        positions = lookup_positions(universe, np.concatenate(listed))
        which = np.repeat(np.arange(len(listed), dtype=np.int64), [m.size for m in listed])
        coded = membership_codes_sparse(positions.astype(np.int64), which)
        codes = np.full(universe.size, -1, dtype=np.int64)
        codes[coded.units] = coded.codes
        # class 0 (in no set) must stay class 0: prepend a virtual token of it
        labels_in = np.concatenate(([0], old))
        codes_in = np.concatenate(([-1], codes))
        covered = np.zeros(self.classes, dtype=np.bool_)
        step = refine(labels_in, covered, codes_in)
        parent = np.zeros(step.covered.size, dtype=np.int64)
        parent[step.labels] = labels_in
        return TokenDim(self.column, universe, step.labels[1:], int(step.covered.size)), parent

    def classes_in(self, members: Hashes) -> np.ndarray:
        """The classes whose tokens are in ``members`` (classes never straddle a known set)."""
        if members.size == 0 or self.universe.size == 0:
            return np.zeros(0, dtype=np.int64)
        at = lookup_positions(self.universe, members)
        inside = at < self.universe.size
        inside[inside] = self.universe[at[inside]] == members[inside]
        seen = np.bincount(self.labels[at[inside]], minlength=self.classes)
        return np.flatnonzero(seen).astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "token", "column": self.column, "classes": self.classes}


__all__ = [
    "AttributeDim",
    "Cell",
    "TokenDim",
    "from_ordinal",
    "membership_codes",
    "to_ordinal",
]
