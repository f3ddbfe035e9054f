"""Encode a table for the search: integer leaf codes per quasi-identifier, level maps.

Each quasi-identifier becomes an integer code per row (its leaf in the hierarchy) and a
``(height + 1, leaves)`` array mapping a leaf to its generalised code at every level, so a
lattice node is evaluated with array indexing only. Values that arrive already generalised
(a provider's extract handed to a mediator) are lifted to the lowest level at which every
value of the column fits, so one column never mixes granularities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._hierarchy import Hierarchy, format_value

IntArray = np.ndarray


class UnknownValueError(InvalidInputError):
    """A quasi-identifier value the hierarchy does not list.

    The message names the column, the row and the value (the data owner needs it to fix
    the hierarchy); :meth:`redacted` drops the value for messages that leave the owner.
    """

    def __init__(self, column: str, row: int, value: str) -> None:
        self.column, self.row, self.value = column, row, value
        super().__init__(
            f"value {value[:60]!r} in column {column!r} (row {row}) is not in the column's "
            "hierarchy: add it to the hierarchy or clean the data"
        )

    def redacted(self) -> InvalidInputError:
        return InvalidInputError(
            f"a value in column {self.column!r} (row {self.row}) is not in the column's "
            "hierarchy: the data owner must add it to the hierarchy or clean the data"
        )


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
    """Encode column ``name`` against ``hierarchy`` (lifting pre-generalised values)."""
    indices, distinct = column_strings(table, name)
    levels: list[int] = []
    for position, value in enumerate(distinct):
        if hierarchy.index_of(value) is not None:
            levels.append(0)
            continue
        level = hierarchy.lowest_level_of(value)
        if level is None:
            row = int(np.flatnonzero(indices == position)[0]) + 1
            raise UnknownValueError(name, row, value)
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

    @property
    def n_rows(self) -> int:
        return int(self.row_group.shape[0])


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
    qis = []
    for name in quasi_identifiers:
        if name not in hierarchies:
            raise InvalidInputError(f"quasi-identifier {name!r} has no hierarchy: give one")
        qis.append(encode_qi(table, name, hierarchies[name]))
    sens = [encode_sensitive(table, name) for name in sensitive]
    matrix = np.column_stack([q.codes for q in qis] + [s.codes for s in sens])
    groups, row_group, weights = np.unique(matrix, axis=0, return_inverse=True, return_counts=True)
    return Encoded(tuple(qis), tuple(sens), groups, weights.astype(np.int64), row_group.ravel())
