"""Re-keying whole token tables when the zone rotates an OPRF key (no PII, no provider).

An OPRF token is ``k * H(x)``; multiplying it by ``k_new / k_old`` gives the token a
provider would get afresh under the new key. :func:`rekey_table` applies
:meth:`OprfServer.rekey` to every OPRF column of a table: ``link_<match key>`` columns
whose tokens start with ``o<version>:``. Columns of other kinds (HMAC ``v<version>:``
tokens, plain values) are left as they are. Pure: the zone reads and re-seals the files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from collabzone.crypto.oprf import OprfServer
from collabzone.errors import InvalidInputError

COLUMN_PREFIX = "link_"
_VERSION = re.compile(r"^([vo])(\d+)$")


def token_versions(column: pa.ChunkedArray | pa.Array) -> set[str]:
    """The key versions a token column carries, as ``v<n>`` (HMAC) or ``o<n>`` (OPRF).

    Reads only the part before the first ``:``; values that are not tokens are ignored.
    """
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return set()
    heads = pc.list_element(pc.split_pattern(column, ":", max_splits=1), 0)
    prefixed = pc.filter(heads, pc.not_equal(pc.utf8_length(heads), pc.utf8_length(column)))
    return {h for h in pc.unique(prefixed).to_pylist() if h and _VERSION.match(h)}


def oprf_columns(table: pa.Table, candidates: Iterable[str]) -> dict[str, str]:
    """Which of ``candidates`` hold OPRF tokens, and the match key of each (column -> key).

    A column with OPRF tokens must be named ``link_<match key>`` (as ``prepare`` writes
    it): the match key is part of the OPRF key derivation, so it cannot be guessed.
    """
    found: dict[str, str] = {}
    for name in candidates:
        versions = token_versions(table.column(name))
        if not any(v.startswith("o") for v in versions):
            continue
        if not name.startswith(COLUMN_PREFIX) or len(name) == len(COLUMN_PREFIX):
            raise InvalidInputError(
                f"column {name!r} holds OPRF tokens but is not named link_<match key>: "
                "rename it as `collabzone link prepare` names its columns"
            )
        if any(v.startswith("v") for v in versions):
            raise InvalidInputError(
                f"column {name!r} mixes HMAC and OPRF tokens: re-prepare the file in one mode"
            )
        found[name] = name[len(COLUMN_PREFIX) :]
    return found


def rekey_table(
    table: pa.Table, server: OprfServer, columns: dict[str, str], to_version: int
) -> pa.Table:
    """``table`` with each OPRF column's tokens moved to key version ``to_version``.

    ``columns`` maps column -> match key (see :func:`oprf_columns`). Tokens already under
    ``to_version`` stay as they are, so rerunning after an interruption is harmless.
    """
    for name, match_key in columns.items():
        index = table.schema.get_field_index(name)
        values = table.column(index).to_pylist()
        moved = server.rekey(match_key, values, to_version)
        field = table.schema.field(index)
        table = table.set_column(index, field, pa.array(moved, field.type))
    return table
