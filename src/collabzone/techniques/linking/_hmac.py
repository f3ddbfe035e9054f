"""Keyed pseudonyms: HMAC-SHA256 under a collaboration key, derived per zone and match key.

Trust model (``hmac`` mode): the providers of a collaboration share the key
``link:<collaboration>`` (held in each provider's own KeyProvider; the zone operator never
has it). From it HKDF derives one HMAC key per (zone, match key, key version), so tokens of
one zone do not link to another zone's, an e-mail token never equals a phone token, and a
rotated key gives unrelated tokens.

A token is ``v<version>:<base64 of the first 30 bytes of the HMAC>`` (240 bits: NIST
SP 800-107 allows truncating HMAC output; 30 bytes encode to 40 characters without
padding). The key version in the token lets the zone refuse to compare tokens made under
different versions.

Throughput: a Python HMAC loop, even one reusing the precomputed pad states, runs on one
core; DuckDB's vectorised ``sha256`` composes the same RFC 2104 construction on every core.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from collabzone.errors import InternalError, InvalidInputError
from collabzone.keys import KeyProvider

DIGEST_BYTES = 30


def hmac_purpose(zone: str, match_key: str) -> str:
    """The HKDF purpose string of one zone's match key (part of the derivation)."""
    return f"link-hmac/zone={zone}/key={match_key}"


@dataclass(frozen=True, repr=False)
class LinkKey:
    """One derived HMAC key and its version; ``repr`` never shows the material."""

    version: int
    material: bytes

    def __repr__(self) -> str:
        return f"<LinkKey v{self.version}>"


def link_key(
    keys: KeyProvider, collaboration_key: str, zone: str, match_key: str, version: int | None = None
) -> LinkKey:
    """Derive the HMAC key for ``match_key`` in ``zone`` from the collaboration key."""
    current, _ = keys.get(collaboration_key, version)
    material = keys.derive(collaboration_key, hmac_purpose(zone, match_key), 32, current)
    return LinkKey(current, material)


_HMAC_SQL = """
SELECT ? || to_base64(unhex(left(
    sha256(?::BLOB || unhex(sha256(?::BLOB || encode(m)))), 2 * ?)))
FROM messages
"""


def hmac_tokens(key: LinkKey, messages: pa.Array) -> pa.Array:
    """Tokens for a string column; null messages give null tokens (nothing is hashed).

    HMAC-SHA256 is computed by DuckDB's vectorised, multi-threaded ``sha256`` as RFC 2104
    defines it, ``H((K ^ opad) || H((K ^ ipad) || m))`` (checked against :mod:`hmac` in the
    tests): a Python loop cannot use more than one core.

    >>> k = LinkKey(1, bytes(32))
    >>> hmac_tokens(k, pa.array(["a@b.com", None])).to_pylist()[1] is None
    True
    """
    if not pa.types.is_string(messages.type) and not pa.types.is_large_string(messages.type):
        raise InvalidInputError("HMAC tokens are computed over normalised text columns")
    if len(key.material) < 16:
        raise InvalidInputError("link key is too short (need at least 16 bytes)")
    inner, outer = _pad_bytes(key.material)
    con = duckdb.connect()
    try:
        con.register("messages", pa.table({"m": messages}))
        params = [f"v{key.version}:", outer, inner, DIGEST_BYTES]
        result = con.sql(_HMAC_SQL, params=params).to_arrow_table().column(0)
    except duckdb.Error:
        # never chain the driver's message: it could quote a parameter (key material)
        raise InternalError("computing HMAC tokens failed inside DuckDB") from None
    finally:
        con.close()
    return result.combine_chunks().cast(pa.string())


def _pad_bytes(key: bytes) -> tuple[bytes, bytes]:
    block = (
        key.ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(key).digest().ljust(64, b"\0")
    )
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)
