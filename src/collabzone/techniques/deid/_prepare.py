"""Pre-steps before generalisation: enrich, (derive: ``_derive.py``), scrub, pseudonymise,
add noise.

* **enrich**: replace a key (a company number, a postcode) by attributes from a reference
  table (sector, size band, region), so the data keeps its meaning without the key; the
  new columns are quasi-identifiers unless declared otherwise (``_declare.py``).
* **scrub**: drop direct identifiers.
* **pseudonymise**: replace values by keyed tokens (HMAC-SHA256 under an owner-held key,
  in the linking module's token format) so records stay linkable by whoever holds the
  key and by no one else. Techniques do not import each other, so the construction is
  repeated here (stdlib :mod:`hmac`); values are only trimmed and case-folded, not
  normalised per kind (e-mail, phone) as the linking module does.
* **noise**: Laplace noise from OpenDP's sampler on clipped numeric columns.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._config import EnrichSpec, NoiseSpec

TOKEN_BYTES = 30


def _require(table: pa.Table, columns: Sequence[str], step: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"{step}: column(s) {missing} are not in the table; columns are: "
            f"{', '.join(table.column_names)}"
        )


def scrub(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """Drop direct identifiers."""
    _require(table, columns, "scrub")
    return table.drop_columns(list(columns))


def token(key: bytes, value: str, version: int = 1) -> str:
    """The keyed token of one value, in the linking module's format: ``v<version>:`` and
    the base64 of the first 30 bytes of HMAC-SHA256 over the trimmed, case-folded text."""
    message = value.strip().casefold().encode("utf-8")
    digest = hmac.new(key, message, hashlib.sha256).digest()[:TOKEN_BYTES]
    return f"v{version}:" + base64.b64encode(digest).decode("ascii")


def pseudonymise(table: pa.Table, columns: Sequence[str], key: bytes | None) -> pa.Table:
    """Replace each value of ``columns`` by its keyed token (nulls stay null)."""
    if not columns:
        return table
    if not key or len(key) < 16:
        raise InvalidInputError(
            "pseudonymise needs a secret key of at least 16 bytes: set COLLABZONE_DEID_KEY "
            "(CLI) or pass pseudonym_key"
        )
    _require(table, columns, "pseudonymise")
    for name in columns:
        values = table.column(name).to_pylist()
        tokens = [None if v is None else token(key, str(v)) for v in values]
        index = table.column_names.index(name)
        table = table.set_column(index, name, pa.array(tokens, type=pa.string()))
    return table


def add_noise(table: pa.Table, specs: Mapping[str, NoiseSpec]) -> pa.Table:
    """Clip each column to its bounds and add Laplace noise of scale (upper-lower)/epsilon.

    The noise comes from OpenDP's vetted sampler; the result is a float column (rounded
    to whole numbers when ``round`` is set).
    """
    if not specs:
        return table
    import opendp.prelude as dp

    dp.enable_features("contrib")
    _require(table, list(specs), "noise")
    for name, spec in specs.items():
        column = table.column(name)
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise InvalidInputError(f"noise: column {name!r} is not numeric")
        if column.null_count:
            raise InvalidInputError(f"noise: column {name!r} has missing values: impute them first")
        values = np.clip(column.to_numpy().astype(float), spec.lower, spec.upper)
        if np.isnan(values).any():
            raise InvalidInputError(f"noise: column {name!r} holds NaN: impute it first")
        scale = (spec.upper - spec.lower) / spec.epsilon
        laplace = dp.m.make_laplace(
            dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float), scale
        )
        noisy = np.asarray(laplace(values.tolist()), dtype=float)
        if spec.round:
            noisy = np.round(noisy)
        index = table.column_names.index(name)
        table = table.set_column(index, name, pa.array(noisy, type=pa.float64()))
    return table


def enrich(table: pa.Table, spec: EnrichSpec, reference: pa.Table) -> pa.Table:
    """Replace ``spec.column`` by ``spec.columns`` looked up in ``reference`` by key.

    Every row must find its key in the reference table (the error counts the rows that
    do not, without showing their keys).
    """
    key = spec.key or spec.column
    outputs = spec.outputs()
    _require(table, [spec.column], "enrich")
    _require(reference, [key, *outputs], f"enrich reference {spec.reference}")
    clash = [
        out
        for out in outputs.values()
        if out in table.column_names and not (out == spec.column and not spec.keep_key)
    ]
    if clash:
        raise InvalidInputError(
            f"enrich from {spec.reference}: the table already has column(s) {clash}: name the "
            "new columns with a mapping, e.g. columns: {reference_column: new_name}"
        )
    ref_keys = pc.cast(reference.column(key), pa.string())
    if len(pc.unique(ref_keys)) != len(ref_keys):
        raise InvalidInputError(f"enrich reference {spec.reference}: key {key!r} is not unique")
    ours = pc.cast(table.column(spec.column), pa.string())
    position = pc.index_in(ours, value_set=ref_keys)
    missing = int(pc.sum(pc.is_null(position)).as_py() or 0)
    if missing:
        raise InvalidInputError(
            f"enrich: {missing} row(s) of column {spec.column!r} have no match in "
            f"{spec.reference}: complete the reference table"
        )
    if not spec.keep_key:
        table = table.drop_columns([spec.column])
    for name, out in outputs.items():
        table = table.append_column(out, reference.column(name).take(position))
    return table
