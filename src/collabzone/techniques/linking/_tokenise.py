"""From a raw table to one token column per match key (pure: no files, keys passed in).

Normalisation is vectorised (Arrow), HMAC runs in DuckDB on every core. Counts of missing
and invalid values are kept per field: an invalid value gives a null token, never a hash
of garbage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from collabzone.crypto.oprf import Transport, oprf_tokens
from collabzone.errors import InvalidInputError
from collabzone.techniques.linking._hmac import LinkKey, hmac_tokens
from collabzone.techniques.linking._spec import LinkSpec
from collabzone.techniques.linking._vector import normalise_column

SEPARATOR = "\x1f"
"""Joins the fields of a composite key (a control character no normaliser lets through)."""


@dataclass(frozen=True)
class FieldCounts:
    """What normalisation did to one identifier column."""

    column: str
    normaliser: str
    valid: int
    missing: int
    invalid: int


@dataclass(frozen=True)
class Tokenised:
    """Token columns (``link_<key>``) and per-field counts."""

    tokens: dict[str, pa.Array]
    fields: dict[str, FieldCounts]


def normalise_fields(
    table: pa.Table, spec: LinkSpec
) -> tuple[dict[str, pa.Array], dict[str, FieldCounts]]:
    """Normalised values and counts for every field of ``spec``."""
    values: dict[str, pa.Array] = {}
    counts: dict[str, FieldCounts] = {}
    for name, field in spec.fields.items():
        result = normalise_column(table.column(field.column), field.normaliser, field.options)
        values[name] = result.values
        valid = len(result.values) - result.values.null_count
        counts[name] = FieldCounts(
            field.column, field.normaliser, valid, result.missing, result.invalid
        )
    return values, counts


def key_messages(values: Mapping[str, pa.Array], fields: tuple[str, ...]) -> pa.Array:
    """The message of a match key: its fields' normalised values joined (null if any is)."""
    if len(fields) == 1:
        return values[fields[0]]
    joined = pc.binary_join_element_wise(*(values[f] for f in fields), SEPARATOR)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def tokenise_hmac(table: pa.Table, spec: LinkSpec, keys: Mapping[str, LinkKey]) -> Tokenised:
    """HMAC tokens for every match key of ``spec`` (``keys``: match key -> derived key)."""
    missing = [k.name for k in spec.match_keys if k.name not in keys]
    if missing:
        raise InvalidInputError(f"no link key for match keys {missing}")
    values, counts = normalise_fields(table, spec)
    tokens = {
        key.column: hmac_tokens(keys[key.name], key_messages(values, key.fields))
        for key in spec.match_keys
    }
    return Tokenised(tokens, counts)


def tokenise_oprf(table: pa.Table, spec: LinkSpec, transport: Transport) -> Tokenised:
    """OPRF tokens for every match key, one blinded batch per key through ``transport``."""
    values, counts = normalise_fields(table, spec)
    tokens: dict[str, pa.Array] = {}
    for key in spec.match_keys:
        messages = key_messages(values, key.fields)
        present = [m.encode("utf-8") for m in messages.to_pylist() if m is not None]
        evaluated = iter(oprf_tokens(key.name, present, transport))
        tokens[key.column] = pa.array(
            [None if m is None else next(evaluated) for m in messages.to_pylist()], type=pa.string()
        )
    return Tokenised(tokens, counts)
