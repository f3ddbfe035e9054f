"""Derived attributes: coarser columns computed from one column, as declared steps.

A derivation replaces a precise value by a coarser one before the search: an age from a
date of birth (on a stated date, so the result is reproducible), a year / month / decade
from a date, a numeric band, or a named bin (``life_stage``). The source column is
dropped unless ``keep_source`` is set; the derived column, like an enriched one, is a
quasi-identifier unless the config declares it otherwise.

Example:
    >>> import pyarrow as pa
    >>> from collabzone.techniques.deid._config import BandDerive
    >>> t = pa.table({"age": [31, 47]})
    >>> spec = BandDerive(kind="band", column="age_band", source="age", width=10)
    >>> derive(t, spec).column("age_band").to_pylist()
    ['30-40', '40-50']
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._config import (
    AgeDerive,
    BandDerive,
    BinsDerive,
    DatePartDerive,
    DeriveSpec,
)
from collabzone.techniques.deid._hierarchy import TOP, Hierarchy, format_value, interval_label


def _column(table: pa.Table, spec: DeriveSpec) -> pa.Array:
    if spec.source not in table.column_names:
        raise InvalidInputError(
            f"derive {spec.column!r}: source column {spec.source!r} is not in the table; "
            f"columns are: {', '.join(table.column_names)}"
        )
    column = table.column(spec.source).combine_chunks()
    missing = column.null_count
    if pa.types.is_floating(column.type):
        missing = int(pc.sum(pc.is_nan(column)).as_py() or 0) + column.null_count
    if missing:
        raise InvalidInputError(
            f"derive {spec.column!r}: source column {spec.source!r} has {missing} missing "
            "value(s): drop or impute those rows first"
        )
    return column


def _date_parts(spec: DeriveSpec, column: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day of a date, timestamp or ISO-text column."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            column = pc.strptime(
                pc.utf8_slice_codeunits(column, 0, 10), format="%Y-%m-%d", unit="s"
            )
        except pa.ArrowInvalid:
            raise InvalidInputError(
                f"derive {spec.column!r}: column {spec.source!r} holds a value that is not an "
                "ISO date (YYYY-MM-DD)"
            ) from None
    elif not (pa.types.is_date(column.type) or pa.types.is_timestamp(column.type)):
        raise InvalidInputError(
            f"derive {spec.column!r}: column {spec.source!r} is not a date ({column.type})"
        )
    return tuple(  # type: ignore[return-value]
        np.asarray(f(column).to_numpy(zero_copy_only=False), dtype=np.int64)
        for f in (pc.year, pc.month, pc.day)
    )


def _numbers(spec: DeriveSpec, column: pa.Array) -> np.ndarray:
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise InvalidInputError(
            f"derive {spec.column!r}: column {spec.source!r} is not numeric ({column.type})"
        )
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=float)
    if not np.isfinite(values).all():
        raise InvalidInputError(
            f"derive {spec.column!r}: column {spec.source!r} holds infinity: clean it first"
        )
    return values


def _by_value(values: np.ndarray, label: Callable[[float], str]) -> list[str]:
    """Apply a scalar labeller once per distinct value."""
    distinct, inverse = np.unique(values, return_inverse=True)
    labels = [label(float(v)) for v in distinct]
    return [labels[i] for i in inverse.tolist()]


def band_of(value: float, width: float, origin: float) -> str:
    """The ``lo-hi`` label of the band of ``width`` (from ``origin``) holding ``value``:
    the same label an ``intervals`` hierarchy gives at that width."""
    lo = origin + math.floor((value - origin) / width) * width
    return interval_label(lo, lo + width)


def _values(table: pa.Table, spec: DeriveSpec) -> pa.Array:
    column = _column(table, spec)
    if isinstance(spec, AgeDerive):
        year, month, day = _date_parts(spec, column)
        before = (month > spec.at.month) | ((month == spec.at.month) & (day > spec.at.day))
        age = spec.at.year - year - before.astype(np.int64)
        if (age < 0).any():
            raise InvalidInputError(
                f"derive {spec.column!r}: {int((age < 0).sum())} value(s) of {spec.source!r} "
                f"are after at={spec.at.isoformat()}: choose a later date or clean the data"
            )
        return pa.array(age, type=pa.int64())
    if isinstance(spec, DatePartDerive):
        year, month, _ = _date_parts(spec, column)
        if spec.part == "year":
            return pa.array(year, type=pa.int64())
        if spec.part == "month":
            return pa.array([f"{y:04d}-{m:02d}" for y, m in zip(year, month, strict=True)])
        return pa.array([f"{y // 10}x" for y in year])
    values = _numbers(spec, column)
    if isinstance(spec, BandDerive):
        width, origin = spec.width, spec.origin
        return pa.array(_by_value(values, lambda v: band_of(v, width, origin)))
    assert isinstance(spec, BinsDerive)
    index = np.searchsorted(np.asarray(spec.edges), values, side="right")
    return pa.array(np.asarray(spec.labels, dtype=object)[index].tolist(), type=pa.string())


def derive(table: pa.Table, spec: DeriveSpec) -> pa.Table:
    """Add (or, when ``column`` equals ``source``, replace) the derived column; drop the
    source unless ``keep_source``. Errors name the step, the column and what to change."""
    if spec.column != spec.source and spec.column in table.column_names:
        raise InvalidInputError(
            f"derive {spec.column!r}: the table already has a column {spec.column!r}: "
            "choose another name"
        )
    values = _values(table, spec)
    index = table.column_names.index(spec.source)
    if spec.column == spec.source:
        return table.set_column(index, spec.column, values)
    table = table.append_column(spec.column, values)
    return table if spec.keep_source else table.remove_column(index)


def _band_bounds(label: str, width: float) -> float | None:
    """The lower bound of a ``lo-hi`` band label (labels of negative numbers hold more
    than one dash, so every split is tried)."""
    for i, char in enumerate(label):
        if char == "-" and i > 0:
            try:
                lo, hi = float(label[:i]), float(label[i + 1 :])
            except ValueError:
                continue
            if math.isclose(hi - lo, width):
                return lo
    return None


def derived_hierarchy(spec: DeriveSpec, values: list[str]) -> Hierarchy | None:
    """The natural hierarchy of a derived column, or None for the default one (numbers:
    intervals; text: value or ``*``). Bands nest into bands of 2 and 4 widths; months
    into years and decades."""
    name = spec.column
    if isinstance(spec, BandDerive):
        rows = []
        for label in sorted(set(values)):
            lo = _band_bounds(label, spec.width)
            if lo is None:
                return None  # not this step's labels (a provider sent its own): the default
            row = [label]
            for factor in (2, 4):
                row.append(band_of(lo, spec.width * factor, spec.origin))
            rows.append([*row, TOP])
        return Hierarchy.from_rows(name, rows) if rows else None
    if isinstance(spec, DatePartDerive) and spec.part == "month":
        rows = []
        for label in sorted(set(values)):
            year = label[:4]
            if not year.isdigit():
                return None
            rows.append([label, year, f"{int(year) // 10}x", TOP])
        return Hierarchy.from_rows(name, rows) if rows else None
    return None


def derived_labels(column: pa.ChunkedArray) -> list[str]:
    """The distinct lookup strings of a derived column (for :func:`derived_hierarchy`)."""
    return [format_value(v) for v in pc.unique(column).to_pylist() if v is not None]
