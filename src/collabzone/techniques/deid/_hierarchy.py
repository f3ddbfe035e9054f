"""Generalisation hierarchies: read ARX CSVs, build them automatically, check them.

A hierarchy maps every raw value (a *leaf*) of one attribute to a label at each level:
level 0 is the value itself, the last level is the most general one (usually ``*``).
It must be a tree: two leaves that share a label at level ``i`` share every label above.
Labels are the public vocabulary of the hierarchy, so errors may quote them.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collabzone.errors import InvalidInputError

TOP = "*"


def format_value(value: Any) -> str:
    """The string a raw value is looked up under (integral floats lose their ``.0``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Hierarchy:
    """A checked generalisation hierarchy for one attribute.

    ``rows[j]`` is the path of leaf ``j``: ``rows[j][0]`` the leaf, ``rows[j][i]`` its label at
    level ``i``. ``numeric`` marks hierarchies whose leaves are numbers (used by Mondrian and
    by ordered-distance t-closeness to sort leaves).

    Example:
        >>> h = Hierarchy.from_rows("sex", [["Male", "*"], ["Female", "*"]])
        >>> h.height, h.label("Male", 1)
        (1, '*')
    """

    attribute: str
    rows: tuple[tuple[str, ...], ...]
    numeric: bool = False
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_rows(
        cls, attribute: str, rows: Iterable[Sequence[Any]], *, numeric: bool = False
    ) -> Hierarchy:
        """Check ``rows`` (leaf first, then one label per level) and build the hierarchy.

        Raises InvalidInputError if rows have different lengths, a leaf repeats, or the
        rows do not form a tree (one label with two different parents).
        """
        clean = [tuple(format_value(v).strip() for v in row) for row in rows]
        clean = [row for row in clean if any(row)]
        if not clean:
            raise InvalidInputError(
                f"the hierarchy for {attribute!r} has no rows: add one per value"
            )
        width = len(clean[0])
        for number, row in enumerate(clean, start=1):
            if len(row) != width:
                raise InvalidInputError(
                    f"the hierarchy for {attribute!r} has inconsistent levels: row {number} "
                    f"(value {row[0]!r}) has {len(row) - 1} levels, row 1 has {width - 1}; "
                    "give every row the same number of levels"
                )
            if any(label == "" for label in row):
                raise InvalidInputError(
                    f"the hierarchy for {attribute!r} has an empty label in row {number} "
                    f"(value {row[0]!r}): fill every level"
                )
        index: dict[str, int] = {}
        for j, row in enumerate(clean):
            if row[0] in index:
                raise InvalidInputError(
                    f"the hierarchy for {attribute!r} lists the value {row[0]!r} twice: "
                    "keep one row per value"
                )
            index[row[0]] = j
        for level in range(1, width - 1):
            parent: dict[str, str] = {}
            for row in clean:
                seen = parent.setdefault(row[level], row[level + 1])
                if seen != row[level + 1]:
                    raise InvalidInputError(
                        f"the hierarchy for {attribute!r} is not a tree: label {row[level]!r} at "
                        f"level {level} has two parents ({seen!r} and {row[level + 1]!r})"
                    )
        if len({row[-1] for row in clean}) > 1:
            clean = [(*row, TOP) for row in clean]  # a single root keeps the lattice bounded
        return cls(attribute, tuple(clean), numeric, index)

    @property
    def height(self) -> int:
        """The most general level (levels run 0..height)."""
        return len(self.rows[0]) - 1

    @property
    def leaves(self) -> list[str]:
        return [row[0] for row in self.rows]

    def index_of(self, leaf: str) -> int | None:
        return self._index.get(leaf)

    def label(self, leaf: str, level: int) -> str:
        """The label of ``leaf`` at ``level``; InvalidInputError (without the value, which
        may be personal data) if the hierarchy does not list it."""
        j = self._index.get(leaf)
        if j is None:
            raise InvalidInputError(
                f"a value of {self.attribute!r} is not in its hierarchy: add it to the hierarchy"
            )
        return self.rows[j][level]

    def lowest_level_of(self, label: str) -> int | None:
        """The lowest level at which ``label`` appears (None if it appears nowhere)."""
        for level in range(self.height + 1):
            if any(row[level] == label for row in self.rows):
                return level
        return None

    def from_level(self, floor: int) -> Hierarchy:
        """The hierarchy whose leaves are this one's labels at ``floor`` (for extracts that
        arrive already generalised to that level)."""
        if floor == 0:
            return self
        seen: dict[str, tuple[str, ...]] = {}
        for row in self.rows:
            seen.setdefault(row[floor], row[floor:])
        return Hierarchy.from_rows(self.attribute, seen.values(), numeric=False)


def read_arx_csv(path: str | Path, attribute: str | None = None) -> Hierarchy:
    """Read an ARX hierarchy file (``;``-separated; column 0 the value, column i level i)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInputError(f"cannot read hierarchy file {file}: {exc.strerror}") from None
    rows = list(csv.reader(text.splitlines(), delimiter=";"))
    name = attribute or file.stem.split("hierarchy_")[-1]
    return Hierarchy.from_rows(name, rows, numeric=_all_numbers(r[0] for r in rows if r))


def _all_numbers(values: Iterable[str]) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except ValueError:
        return False


def interval_label(lo: float, hi: float) -> str:
    return f"{format_value(lo)}-{format_value(hi)}"


def intervals(
    attribute: str, values: Iterable[Any], widths: Sequence[float], origin: float = 0.0
) -> Hierarchy:
    """Numeric hierarchy: level i puts a value in the interval of width ``widths[i-1]``
    counted from ``origin`` (labels ``lo-hi``, upper bound exclusive); the top is ``*``.

    Labels depend only on the widths, never on the data, so they leak nothing.
    """
    if not widths or any(w <= 0 or math.isnan(w) for w in widths):
        raise InvalidInputError(f"interval widths for {attribute!r} must be positive numbers")
    if any(b % a for a, b in itertools.pairwise(widths)):
        raise InvalidInputError(
            f"interval widths for {attribute!r} must each divide the next (e.g. 5, 10, 20) "
            "so the intervals nest into a tree"
        )
    rows = []
    for raw in sorted({float(v) for v in values}):
        if math.isnan(raw) or math.isinf(raw):
            raise InvalidInputError(f"column {attribute!r} holds NaN or infinity: clean it first")
        row = [format_value(raw)]
        for width in widths:
            lo = origin + math.floor((raw - origin) / width) * width
            row.append(interval_label(lo, lo + width))
        rows.append([*row, TOP])
    return Hierarchy.from_rows(attribute, rows, numeric=True)


def dates(
    attribute: str, values: Iterable[Any], levels: Sequence[str] = ("month", "year", "decade")
) -> Hierarchy:
    """Date hierarchy by truncation: ``month`` (YYYY-MM), ``year`` (YYYY), ``decade`` (199x)."""
    rows = []
    for raw in sorted({format_value(v) for v in values}):
        try:
            day = dt.date.fromisoformat(raw[:10])
        except ValueError:
            raise InvalidInputError(
                f"column {attribute!r} holds a value that is not an ISO date (YYYY-MM-DD)"
            ) from None
        row = [raw]
        for level in levels:
            if level == "month":
                row.append(f"{day:%Y-%m}")
            elif level == "year":
                row.append(f"{day:%Y}")
            elif level == "decade":
                row.append(f"{day.year // 10}x")
            else:
                raise InvalidInputError(f"unknown date level {level!r}: use month, year or decade")
        rows.append([*row, TOP])
    return Hierarchy.from_rows(attribute, rows)


def masking(attribute: str, values: Iterable[Any], mask: str = "*") -> Hierarchy:
    """String hierarchy masking one more trailing character per level (81667 -> 8166* ->
    ... -> *****), then ``*`` so strings of different lengths meet at the top."""
    leaves = sorted({format_value(v) for v in values})
    width = max((len(v) for v in leaves), default=1)
    rows = []
    for leaf in leaves:
        row = [leaf]
        for level in range(1, width + 1):
            keep = max(len(leaf) - level, 0)
            row.append(leaf[:keep] + mask * (len(leaf) - keep))
        rows.append([*row, TOP])
    return Hierarchy.from_rows(attribute, rows)


def tree(attribute: str, nested: Mapping[str, Any]) -> Hierarchy:
    """Category-tree hierarchy from nested groups, e.g. ``{"Europe": {"West": ["FR", "DE"]},
    "Asia": ["JP"]}``; shallow branches repeat their leaf so every path has the same depth."""
    paths: list[list[str]] = []

    def walk(node: Any, trail: list[str]) -> None:
        if isinstance(node, Mapping):
            for key, child in node.items():
                walk(child, [str(key), *trail])
        elif isinstance(node, list | tuple):
            for leaf in node:
                paths.append([format_value(leaf), *trail])
        else:
            paths.append([format_value(node), *trail])

    walk(nested, [])
    if not paths:
        raise InvalidInputError(f"the category tree for {attribute!r} is empty")
    depth = max(len(p) for p in paths)
    rows = [[p[0]] * (depth - len(p) + 1) + p[1:] + [TOP] for p in paths]
    return Hierarchy.from_rows(attribute, rows)


def flat(attribute: str, values: Iterable[Any]) -> Hierarchy:
    """Two-level hierarchy (value, then ``*``): suppression of the attribute only."""
    leaves = sorted({format_value(v) for v in values})
    return Hierarchy.from_rows(attribute, [[leaf, TOP] for leaf in leaves])
