"""HMAC-SHA256 tokens for a whole Arrow string column in compiled code (Numba).

Why: ``prepare`` spends most of its time on the HMAC. A Python loop pays interpreter
overhead per row (~1.5 us even with precomputed pad states), and DuckDB's ``sha256``
computes four SHA-256 blocks per row (the key pads are rehashed for every row). Here the
inner and outer pad states are computed once per key (RFC 2104's precomputation), every
row costs two compressions for a message of up to 55 bytes (one more per further 64 bytes),
and the loop runs over Arrow's own buffers (offsets and bytes, no Python object per row)
on two threads (the kernel releases the GIL). The token (``v<version>:`` and the base64 of
the first 30 bytes) is written straight into the output string buffer.

The result equals :mod:`hmac` (a property test checks it against the standard library).
"""

from __future__ import annotations

import functools
import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

DIGEST_BYTES = 30
TOKEN_CHARS = 40
"""Base64 of 30 bytes: 40 characters, no padding."""
THREADED_FROM = 50_000
"""Rows from which the column is split over two threads (below, a thread costs more)."""

# fmt: off
_K = np.array(
    [
        0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
        0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
        0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
        0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
        0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
        0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
        0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
        0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
        0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
        0xC67178F2,
    ],
    dtype=np.uint32,
)
_IV = np.array(
    [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB,
     0x5BE0CD19],
    dtype=np.uint32,
)
# fmt: on
"""SHA-256's round constants and initial state (FIPS 180-4, 4.2.2 and 5.3.3)."""
_B64 = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8
).copy()


@functools.cache
def _kernels() -> Any:
    """The compiled loops (Numba is imported on first use: it costs a fifth of a second;
    ``cache=True`` keeps the machine code on disk for later processes)."""
    from collabzone.techniques.linking import _hmac_kernels

    return _hmac_kernels


def pad_states(key: bytes) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """SHA-256 states after the ``K ^ ipad`` and ``K ^ opad`` blocks (RFC 2104)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    states = []
    for pad in (0x36, 0x5C):
        state = _IV.copy()
        padded = np.frombuffer(bytes(b ^ pad for b in block), dtype=np.uint8)
        _kernels().compress(state, padded, np.empty(64, dtype=np.uint32), _K)
        states.append(state)
    return states[0], states[1]


def hmac_token_column(key: bytes, version: int, messages: pa.Array) -> pa.Array:
    """``v<version>:`` + base64(HMAC-SHA256(key, m)[:30]) for every message (nulls stay null).

    ``messages`` is a ``string`` or ``large_string`` array (one chunk).
    """
    n = len(messages)
    prefix = np.frombuffer(f"v{version}:".encode(), dtype=np.uint8).copy()
    width = len(prefix) + TOKEN_CHARS
    valid = np.ones(n, dtype=bool) if messages.null_count == 0 else ~_nulls(messages)
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(valid * width, out=out_offsets[1:])
    out = np.empty(int(out_offsets[-1]), dtype=np.uint8)
    rows = np.flatnonzero(valid).astype(np.int64)
    data, offsets = _buffers(messages)
    inner, outer = pad_states(key)
    kernel = _kernels().tokens

    def run(part: npt.NDArray[np.int64]) -> None:
        kernel(data, offsets, part, inner, outer, _K, _B64, prefix, out, out_offsets)

    if len(rows) < THREADED_FROM:
        run(rows)
    else:
        half = len(rows) // 2
        with ThreadPoolExecutor(max_workers=2) as pool:
            for job in [pool.submit(run, rows[:half]), pool.submit(run, rows[half:])]:
                job.result()
    bitmap = None
    if messages.null_count:
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    small = len(out) < 2**31
    arrow_offsets = out_offsets.astype(np.int32) if small else out_offsets
    kind = pa.string() if small else pa.large_string()
    buffers = [bitmap, pa.py_buffer(arrow_offsets), pa.py_buffer(out)]
    return pa.Array.from_buffers(kind, n, buffers, null_count=n - len(rows))


def _nulls(messages: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(messages.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _buffers(messages: pa.Array) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The data bytes and the ``n + 1`` offsets of a string array (its slice offset applied)."""
    wide = pa.types.is_large_string(messages.type)
    _, offset_buffer, data_buffer = messages.buffers()
    kind = np.int64 if wide else np.int32
    offsets = np.frombuffer(offset_buffer, dtype=kind)[
        messages.offset : messages.offset + len(messages) + 1
    ]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return data, offsets.astype(np.int64)
