"""The compiled loops of :mod:`._hmac_batch` (this module imports Numba: import it lazily).

SHA-256 (FIPS 180-4) on ``uint32`` words. Numba widens integer arithmetic to 64 bits, so
every result is cast back with ``U32(...)``: that truncation is the mod-2^32 sum SHA-256
wants, and LLVM then emits 32-bit adds and rotates.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

I64 = npt.NDArray[np.int64]
W32 = npt.NDArray[np.uint32]
U8 = npt.NDArray[np.uint8]
U32 = np.uint32


@njit(inline="always")
def _rotr(x: np.uint32, n: int) -> np.uint32:  # pragma: no cover - compiled
    return U32((x >> n) | (x << (32 - n)))


@njit(nogil=True, cache=True)
def compress(state: W32, block: U8, w: W32, k: W32) -> None:  # pragma: no cover - compiled
    """One SHA-256 compression of the 64-byte ``block`` into ``state`` (8 words)."""
    for t in range(16):
        w[t] = (
            (U32(block[4 * t]) << 24)
            | (U32(block[4 * t + 1]) << 16)
            | (U32(block[4 * t + 2]) << 8)
            | U32(block[4 * t + 3])
        )
    for t in range(16, 64):
        x = w[t - 15]
        y = w[t - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ U32(x >> 3)
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ U32(y >> 10)
        w[t] = U32(w[t - 16] + s0 + w[t - 7] + s1)
    a, b, c, d = state[0], state[1], state[2], state[3]
    e, f, g, h = state[4], state[5], state[6], state[7]
    for t in range(64):
        s1 = _rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)
        ch = U32((e & f) ^ (~e & g))
        t1 = U32(h + s1 + ch + k[t] + w[t])
        s0 = _rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)
        maj = U32((a & b) ^ (a & c) ^ (b & c))
        t2 = U32(s0 + maj)
        h = g
        g = f
        f = e
        e = U32(d + t1)
        d = c
        c = b
        b = a
        a = U32(t1 + t2)
    state[0] = U32(state[0] + a)
    state[1] = U32(state[1] + b)
    state[2] = U32(state[2] + c)
    state[3] = U32(state[3] + d)
    state[4] = U32(state[4] + e)
    state[5] = U32(state[5] + f)
    state[6] = U32(state[6] + g)
    state[7] = U32(state[7] + h)


@njit(nogil=True, cache=True)
def _digest(state: W32, out: U8) -> None:  # pragma: no cover - compiled
    for i in range(8):
        out[4 * i] = (state[i] >> 24) & 0xFF
        out[4 * i + 1] = (state[i] >> 16) & 0xFF
        out[4 * i + 2] = (state[i] >> 8) & 0xFF
        out[4 * i + 3] = state[i] & 0xFF


@njit(nogil=True, cache=True)
def tokens(
    data: U8,
    offsets: I64,
    rows: I64,
    inner: W32,
    outer: W32,
    k: W32,
    b64: U8,
    prefix: U8,
    out: U8,
    out_offsets: I64,
) -> None:  # pragma: no cover - compiled
    """Write the token of every row in ``rows`` (indices of non-null messages) into ``out``
    at ``out_offsets[row]``: HMAC from the precomputed pad states, first 30 bytes, base64."""
    state = np.empty(8, dtype=np.uint32)
    block = np.empty(64, dtype=np.uint8)
    w = np.empty(64, dtype=np.uint32)
    digest = np.empty(32, dtype=np.uint8)
    for j in range(rows.shape[0]):
        row = rows[j]
        lo = offsets[row]
        length = offsets[row + 1] - lo
        state[:] = inner
        # inner hash: the ipad block is already in ``inner``; then message || padding
        bits = (64 + length) * 8
        blocks = (length + 9 + 63) // 64
        for bl in range(blocks):
            start = bl * 64
            take = min(max(length - start, 0), 64)
            block[:take] = data[lo + start : lo + start + take]
            if take < 64:
                block[take:] = 0
                if start + take == length:
                    block[take] = 0x80
            if bl == blocks - 1:
                for i in range(8):
                    block[63 - i] = (bits >> (8 * i)) & 0xFF
            compress(state, block, w, k)
        _digest(state, digest)
        # outer hash: the opad state, then the 32-byte inner digest and padding (one block)
        state[:] = outer
        block[:32] = digest
        block[32] = 0x80
        block[33:62] = 0
        block[62] = 0x03  # (64 + 32) * 8 = 768 bits = 0x0300
        block[63] = 0
        compress(state, block, w, k)
        _digest(state, digest)
        at = out_offsets[row]
        for i in range(prefix.shape[0]):
            out[at + i] = prefix[i]
        at += prefix.shape[0]
        for g in range(10):  # 30 bytes: 10 groups of 3 bytes, 40 characters
            v = (
                (np.int64(digest[3 * g]) << 16)
                | (np.int64(digest[3 * g + 1]) << 8)
                | np.int64(digest[3 * g + 2])
            )
            out[at + 4 * g] = b64[(v >> 18) & 63]
            out[at + 4 * g + 1] = b64[(v >> 12) & 63]
            out[at + 4 * g + 2] = b64[(v >> 6) & 63]
            out[at + 4 * g + 3] = b64[v & 63]
