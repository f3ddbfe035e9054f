"""Encode a table for the search: integer leaf codes per quasi-identifier, level maps.

Each quasi-identifier becomes an integer code per row (its leaf in the hierarchy) and a
``(height + 1, leaves)`` array mapping a leaf to its generalised code at every level, so a
lattice node is evaluated with array indexing only. Values that arrive already generalised
(a provider's extract handed to a mediator) are lifted to the lowest level at which every
value of the column fits, so one column never mixes granularities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._hierarchy import Hierarchy, format_value

IntArray = np.ndarray


SHOWN_VALUES = 20
"""How many unknown values an error lists (with their rows); the count covers them all."""
SHOWN_ROWS = 5
"""How many rows are listed per unknown value."""


@dataclass(frozen=True)
class UnknownValue:
    """One value of a quasi-identifier column that its hierarchy does not list."""

    column: str
    value: str
    count: int
    """Rows holding the value."""
    rows: tuple[int, ...]
    """The first rows (1-based) holding it."""

    def where(self) -> str:
        rows = ", ".join(str(r) for r in self.rows)
        more = f" and {self.count - len(self.rows)} more" if self.count > len(self.rows) else ""
        return f"row{'s' if self.count > 1 else ''} {rows}{more}"


class UnknownValueError(InvalidInputError):
    """Quasi-identifier values their hierarchies do not list: every one is counted, the
    first :data:`SHOWN_VALUES` are named with their first rows.

    The message names the columns, rows and values (the data owner needs them to fix the
    hierarchy); :meth:`redacted` drops the values for messages that leave the owner.
    """

    def __init__(
        self, problems: Sequence[UnknownValue], total_values: int, total_rows: int
    ) -> None:
        self.problems = tuple(problems)
        self.total_values, self.total_rows = total_values, total_rows
        first = self.problems[0]
        self.column, self.row, self.value = first.column, first.rows[0], first.value
        fix = "add them to the hierarchy or clean the data"
        if total_values == 1:
            message = (
                f"value {first.value[:60]!r} in column {first.column!r} ({first.where()}) is not "
                "in the column's hierarchy: add it to the hierarchy or clean the data"
            )
        else:
            listed = "; ".join(
                f"{p.value[:60]!r} in column {p.column!r} ({p.where()})" for p in self.problems
            )
            rest = total_values - len(self.problems)
            more = f"; and {rest} more value{'s' if rest > 1 else ''}" if rest else ""
            message = (
                f"{total_values} values ({total_rows} occurrences) are not in their column's "
                f"hierarchy: {listed}{more}: {fix}"
            )
        super().__init__(message)

    def redacted(self) -> InvalidInputError:
        """The same facts without the values (column, count and rows only)."""
        columns = sorted({p.column for p in self.problems})
        rows = "; ".join(f"column {p.column!r} {p.where()}" for p in self.problems)
        return InvalidInputError(
            f"{self.total_values} value{'s' if self.total_values > 1 else ''} in column"
            f"{'s' if len(columns) > 1 else ''} {', '.join(repr(c) for c in columns)} "
            f"({self.total_rows} occurrences: {rows}) are not in the column's hierarchy: the data "
            "owner must add them to the hierarchy or clean the data"
        )


def _unknown(
    name: str, indices: IntArray, distinct: list[str], bad: list[int]
) -> tuple[list[UnknownValue], int]:
    """The unknown values of one column (positions ``bad`` in ``distinct``), in order of
    first appearance, with their row counts and first rows; and the rows affected."""
    is_bad = np.zeros(len(distinct), dtype=bool)
    is_bad[bad] = True
    rows = np.flatnonzero(is_bad[indices])
    values = indices[rows]
    _, first, counts = np.unique(values, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")[:SHOWN_VALUES]
    uniq = np.unique(values)
    out = []
    for o in order:
        where = rows[values == uniq[o]][:SHOWN_ROWS] + 1
        out.append(
            UnknownValue(name, distinct[int(uniq[o])], int(counts[o]), tuple(where.tolist()))
        )
    return out, int(rows.shape[0])


def column_strings(table: pa.Table, name: str) -> tuple[IntArray, list[str]]:
    """Row indices into the column's distinct values (as lookup strings), checking for
    missing values. Raises InvalidInputError naming the column and the first bad row."""
    if name not in table.column_names:
        raise InvalidInputError(
            f"column {name!r} is not in the table; columns are: {', '.join(table.column_names)}"
        )
    column = table.column(name).combine_chunks()
    bad = (
        pc.is_null(column, nan_is_null=True)
        if pa.types.is_floating(column.type)
        else pc.is_null(column)
    )
    if column.null_count or pc.any(bad).as_py():
        row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0]) + 1
        raise InvalidInputError(
            f"column {name!r} has a missing value (null or NaN) in row {row}: a quasi-identifier "
            "or sensitive attribute must be filled in (drop or impute those rows first)"
        )
    encoded = pc.dictionary_encode(column)
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    distinct = [format_value(v) for v in encoded.dictionary.to_pylist()]
    return indices, distinct


@dataclass(frozen=True)
class EncodedQI:
    """One quasi-identifier: leaf codes per row, level maps, labels per level."""

    hierarchy: Hierarchy
    floor: int
    """How many levels the input was already generalised (0 for raw data)."""
    codes: IntArray
    maps: IntArray
    """``maps[level, leaf]`` = generalised code of ``leaf`` at ``level``."""
    labels: tuple[tuple[str, ...], ...]
    """``labels[level][code]`` = the label a code stands for."""

    @property
    def height(self) -> int:
        return int(self.maps.shape[0]) - 1

    def sizes(self) -> list[int]:
        return [len(level) for level in self.labels]


def _level_maps(h: Hierarchy) -> tuple[IntArray, tuple[tuple[str, ...], ...]]:
    maps = np.zeros((h.height + 1, len(h.rows)), dtype=np.int64)
    labels = []
    for level in range(h.height + 1):
        seen: dict[str, int] = {}
        for j, row in enumerate(h.rows):
            maps[level, j] = seen.setdefault(row[level], len(seen))
        labels.append(tuple(seen))
    return maps, tuple(labels)


def encode_qi(table: pa.Table, name: str, hierarchy: Hierarchy) -> EncodedQI:
    """Encode column ``name`` against ``hierarchy`` (lifting pre-generalised values).

    Raises UnknownValueError listing every value the hierarchy does not hold."""
    problems, n_values, n_rows = check_qi(table, name, hierarchy)
    if problems:
        raise UnknownValueError(problems, n_values, n_rows)
    return _encode_qi(table, name, hierarchy)


def check_qi(
    table: pa.Table, name: str, hierarchy: Hierarchy
) -> tuple[list[UnknownValue], int, int]:
    """The values of column ``name`` its hierarchy does not hold (neither as a leaf nor as a
    label): the first :data:`SHOWN_VALUES` with rows, their number and the rows affected."""
    indices, distinct = column_strings(table, name)
    labels: set[str] | None = None
    bad = []
    for position, value in enumerate(distinct):
        if hierarchy.index_of(value) is not None:
            continue
        if labels is None:
            labels = {label for row in hierarchy.rows for label in row}
        if value not in labels:
            bad.append(position)
    if not bad:
        return [], 0, 0
    problems, rows = _unknown(name, indices, distinct, bad)
    return problems, len(bad), rows


def _encode_qi(table: pa.Table, name: str, hierarchy: Hierarchy) -> EncodedQI:
    indices, distinct = column_strings(table, name)
    levels: list[int] = []
    for value in distinct:
        if hierarchy.index_of(value) is not None:
            levels.append(0)
            continue
        level = hierarchy.lowest_level_of(value)
        assert level is not None  # check_qi ran first
        levels.append(level)
    floor = max(levels, default=0)
    h = hierarchy.from_level(floor)
    if floor:
        lifted = []
        for value, level in zip(distinct, levels, strict=True):
            path = next(r for r in hierarchy.rows if r[level] == value)
            lifted.append(path[floor])
        distinct = lifted
    leaf_codes = np.array([h.index_of(v) for v in distinct], dtype=np.int64)
    maps, labels = _level_maps(h)
    return EncodedQI(h, floor, leaf_codes[indices], maps, labels)


@dataclass(frozen=True)
class EncodedSensitive:
    """One sensitive attribute: value codes per row; values sorted (numerically if numeric)."""

    name: str
    codes: IntArray
    values: tuple[str, ...]
    numeric: bool


def encode_sensitive(table: pa.Table, name: str) -> EncodedSensitive:
    """Encode a sensitive column; codes follow the value order (for ordered distance)."""
    indices, distinct = column_strings(table, name)
    numeric = pa.types.is_integer(table.schema.field(name).type) or pa.types.is_floating(
        table.schema.field(name).type
    )
    order = sorted(
        range(len(distinct)), key=lambda i: float(distinct[i]) if numeric else distinct[i]
    )
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[order] = np.arange(len(distinct))
    return EncodedSensitive(name, rank[indices], tuple(distinct[i] for i in order), numeric)


@dataclass(frozen=True)
class Encoded:
    """A table ready for the lattice search: distinct rows with their weights."""

    qis: tuple[EncodedQI, ...]
    sensitive: tuple[EncodedSensitive, ...]
    groups: IntArray
    """``(g, d + s)`` distinct rows of (leaf codes..., sensitive codes...)."""
    weights: IntArray
    """How many input rows each distinct row stands for."""
    row_group: IntArray
    """For each input row, its distinct row."""
    population_groups: IntArray | None = None
    """``(p, d)`` distinct rows of the population table (leaf codes), if one is given."""
    population_weights: IntArray | None = None

    @property
    def n_rows(self) -> int:
        return int(self.row_group.shape[0])


def with_population(encoded: Encoded, population: pa.Table) -> Encoded:
    """``encoded`` plus the population table's quasi-identifiers, coded on the same leaves
    (for k-map and delta-presence, which compare each class with its population matches).
    Every population value must be a leaf of the (possibly lifted) hierarchy."""
    columns, radices = [], []
    for q in encoded.qis:
        name = q.hierarchy.attribute
        pq = encode_qi(population, name, q.hierarchy)
        if pq.floor:
            raise InvalidInputError(
                f"the population's column {name!r} is coarser than the table's: give the "
                "population at the table's granularity"
            )
        columns.append(pq.codes)  # leaf indices of the same hierarchy as the table's
        radices.append(q.maps.shape[1])
    ids = row_groups(columns, radices)
    n_groups = int(ids.max()) + 1
    first = np.empty(n_groups, dtype=np.int64)
    first[ids[::-1]] = np.arange(ids.shape[0] - 1, -1, -1)
    groups = np.column_stack([c[first] for c in columns])
    weights = np.bincount(ids, minlength=n_groups).astype(np.int64)
    return dataclasses.replace(encoded, population_groups=groups, population_weights=weights)


def encode(
    table: pa.Table,
    quasi_identifiers: Sequence[str],
    hierarchies: Mapping[str, Hierarchy],
    sensitive: Sequence[str] = (),
) -> Encoded:
    """Encode ``table`` for the search; errors name the column, row and problem."""
    if table.num_rows == 0:
        raise InvalidInputError("the table is empty: there is nothing to de-identify")
    if not quasi_identifiers:
        raise InvalidInputError("name at least one quasi-identifier")
    overlap = set(quasi_identifiers) & set(sensitive)
    if overlap:
        raise InvalidInputError(
            f"column(s) {sorted(overlap)} are both quasi-identifier and sensitive: choose one"
        )
    problems: list[UnknownValue] = []
    n_values = n_rows = 0
    for name in quasi_identifiers:
        if name not in hierarchies:
            raise InvalidInputError(f"quasi-identifier {name!r} has no hierarchy: give one")
        found, values, rows = check_qi(table, name, hierarchies[name])
        problems += found
        n_values += values
        n_rows += rows
    if problems:  # every column checked first, so one error lists all of them
        raise UnknownValueError(problems[:SHOWN_VALUES], n_values, n_rows)
    qis = [_encode_qi(table, name, hierarchies[name]) for name in quasi_identifiers]
    sens = [encode_sensitive(table, name) for name in sensitive]
    columns = [q.codes for q in qis] + [s.codes for s in sens]
    radices = [q.maps.shape[1] for q in qis] + [len(s.values) for s in sens]
    row_group = row_groups(columns, radices)
    n_groups = int(row_group.max()) + 1
    first = np.empty(n_groups, dtype=np.int64)
    first[row_group[::-1]] = np.arange(row_group.shape[0] - 1, -1, -1)  # first row of each
    groups = np.column_stack([c[first] for c in columns])
    weights = np.bincount(row_group, minlength=n_groups)
    return Encoded(tuple(qis), tuple(sens), groups, weights.astype(np.int64), row_group)


def row_groups(columns: Sequence[IntArray], radices: Sequence[int]) -> IntArray:
    """Dense id of each row's combination of codes, in order of first appearance: the
    codes are combined into one integer key (re-densified by hashing whenever it would
    overflow), so a million rows need no sort of a rows x columns matrix."""
    key = np.zeros(columns[0].shape[0], dtype=np.int64)
    span = 1
    for column, radix in zip(columns, radices, strict=True):
        if span * max(radix, 1) >= 2**62:
            ids, uniques = pd.factorize(key)
            key, span = np.asarray(ids, dtype=np.int64), len(uniques)
        key = key * max(radix, 1) + column
        span *= max(radix, 1)
    ids, _ = pd.factorize(key)
    return np.asarray(ids, dtype=np.int64)
