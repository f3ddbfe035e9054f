"""Whole-column normalisation: the scalar rules of :mod:`._normalise`, fast.

E-mail (the column that is nearly always distinct per row) is normalised with Arrow compute
kernels, slices of a large column in parallel threads; every other kind calls the scalar
normaliser once per *distinct* value and maps the results back (names, dates and postcodes
repeat a lot). Both give exactly the scalar result; the tests check the equivalence.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from collabzone.techniques.linking._normalise import (
    EMAIL_PATTERN,
    make_normaliser,
)

PARALLEL_MIN_ROWS = 100_000


@dataclass(frozen=True)
class ColumnResult:
    """A normalised column: nulls where the raw value was missing or invalid."""

    values: pa.Array
    missing: int
    """Raw nulls or blank strings."""
    invalid: int
    """Present but rejected by the normaliser (never hashed)."""


def _as_string(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_large_string(column.type) or not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return column


def _normalise_email(column: pa.Array, rules: str) -> pa.Array:
    text = pc.utf8_lower(pc.utf8_trim_whitespace(column))
    valid = pc.match_substring_regex(text, EMAIL_PATTERN)
    text = pc.if_else(valid, text, pa.scalar(None, pa.string()))
    if rules == "plain":
        return text
    local = pc.replace_substring_regex(text, r"@.*$", "")
    domain = pc.replace_substring_regex(text, r"^.*@", "")
    is_gmail = pc.is_in(domain, value_set=pa.array(["gmail.com", "googlemail.com"]))
    untagged = pc.replace_substring_regex(local, r"\+.*$", "")
    if rules == "plus_tags":
        local = untagged
    else:
        local = pc.if_else(is_gmail, pc.replace_substring(untagged, ".", ""), local)
        domain = pc.if_else(is_gmail, pa.scalar("gmail.com"), domain)
    local = pc.if_else(pc.equal(pc.utf8_length(local), 0), pa.scalar(None, pa.string()), local)
    return pc.binary_join_element_wise(local, domain, "@")


def _parallel_email(column: pa.Array, rules: str) -> pa.Array:
    """Arrow kernels release the GIL: slices of a big column run on every core."""
    workers = os.cpu_count() or 1
    if workers == 1 or len(column) < PARALLEL_MIN_ROWS:
        return _normalise_email(column, rules)
    size = -(-len(column) // workers)
    slices = [column.slice(i, size) for i in range(0, len(column), size)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda part: _normalise_email(part, rules), slices))
    return pa.concat_arrays(parts)


def _normalise_by_distinct(column: pa.Array, kind: str, options: Mapping[str, Any]) -> pa.Array:
    normalise = make_normaliser(kind, options)
    encoded = column.dictionary_encode()
    distinct = encoded.dictionary.to_pylist()
    mapped = pa.array([normalise(v) for v in distinct], type=pa.string())
    return pc.take(mapped, encoded.indices)


def normalise_column(
    column: pa.Array | pa.ChunkedArray, kind: str, options: Mapping[str, Any] | None = None
) -> ColumnResult:
    """Normalise one raw column with normaliser ``kind`` and count what was rejected.

    >>> r = normalise_column(pa.array([" A@B.com", "nope", None]), "email")
    >>> r.values.to_pylist(), r.missing, r.invalid
    (['a@b.com', None, None], 1, 1)
    """
    opts = dict(options or {})
    make_normaliser(kind, opts)  # validates kind and options before any work
    text = _as_string(column)
    blank = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), True)
    missing = int(pc.sum(blank).as_py() or 0)
    text = pc.if_else(blank, pa.scalar(None, pa.string()), text)
    if kind == "email":
        values = _parallel_email(text, str(opts.get("rules", "plain")))
    else:
        values = _normalise_by_distinct(text, kind, opts)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    invalid = values.null_count - missing
    return ColumnResult(values=values, missing=missing, invalid=invalid)
