"""Oblivious PRF tokens (2HashDH over edwards25519): the zone keys, but never sees PII.

Trust model (``oprf`` mode): the zone holds a secret scalar ``k`` (derived from its
KeyProvider key ``oprf:<collaboration>``); providers hold no key at all. For each
normalised value ``x`` a provider sends ``B = r * H(x)`` for a fresh random ``r``; the zone
answers ``k * B``; the provider removes ``r`` and keeps ``T = k * H(x)``. The zone sees only
uniformly random points (it learns nothing about ``x``); a provider learns ``T`` only for
values it asks about. Because ``T`` is a group element, the zone can rotate its key by
multiplying stored tokens by ``k2 / k1``: no provider and no PII is needed.

The protocol is a state machine (:class:`OprfClient`: ``blind`` -> ``finalize``) with the
transport injected (:func:`oprf_tokens` takes a callable that carries a request to the
server and returns its response), as the house style asks: no I/O in here.

Threshold variant: the key is Shamir-shared over ``Z_L`` among ``n`` servers; any ``t``
answer with ``k_i * B`` and the client combines them with Lagrange coefficients in the
exponent (:func:`split_key`, :class:`OprfShareServer`, :meth:`OprfClient.finalize_threshold`).
No single server holds ``k``.

Tokens are ``o<version>:<base64url point>`` (43 characters after the prefix).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import nacl.bindings as sodium

from collabzone.crypto.group import (
    L,
    RandomBytes,
    hash_to_group,
    mul,
    mul_cleared,
    random_scalar,
    scalar_from_key,
)
from collabzone.errors import InvalidInputError
from collabzone.keys import KeyProvider

OPRF_DST = b"collabzone-oprf-v1"


def oprf_purpose(zone: str, match_key: str) -> str:
    """HKDF purpose of one zone's OPRF key for one match key."""
    return f"link-oprf/zone={zone}/key={match_key}"


@dataclass(frozen=True)
class BlindRequest:
    """Provider -> zone: blinded points for one match key."""

    match_key: str
    elements: tuple[bytes, ...]


@dataclass(frozen=True)
class EvaluateResponse:
    """Zone -> provider: the evaluated points and the key version used."""

    version: int
    elements: tuple[bytes, ...]
    share_index: int | None = None


def encode_token(point: bytes, version: int) -> str:
    return f"o{version}:" + base64.urlsafe_b64encode(point).decode("ascii").rstrip("=")


def decode_token(token: str) -> tuple[int, bytes]:
    """(version, point) of an OPRF token; malformed tokens raise InvalidInputError."""
    head, sep, body = token.partition(":")
    if not sep or not head.startswith("o") or not head[1:].isdigit():
        raise InvalidInputError("not an OPRF token (expected o<version>:<base64>)")
    try:
        point = base64.urlsafe_b64decode(body + "=")
    except ValueError:
        raise InvalidInputError("OPRF token body is not base64url") from None
    if len(point) != 32:
        raise InvalidInputError("OPRF token body has the wrong length")
    return int(head[1:]), point


@dataclass
class OprfClient:
    """The provider's side: blind, then finalise with the zone's answer (one batch)."""

    random_bytes: RandomBytes = secrets.token_bytes
    _blinds: list[int] = field(default_factory=list, repr=False)
    _state: str = "new"

    def blind(self, match_key: str, values: Sequence[bytes]) -> BlindRequest:
        """Blind normalised ``values`` (bytes) for ``match_key``; call once per client."""
        if self._state != "new":
            raise InvalidInputError("this OPRF client already blinded a batch; use a new one")
        points = []
        for value in values:
            r = random_scalar(self.random_bytes)
            self._blinds.append(r)
            points.append(mul(hash_to_group(value, OPRF_DST + match_key.encode()), r))
        self._state = "blinded"
        return BlindRequest(match_key, tuple(points))

    def finalize(self, response: EvaluateResponse) -> list[str]:
        """Unblind the zone's answer into tokens."""
        self._expect(len(response.elements))
        tokens = [
            encode_token(mul(point, pow(r, -1, L)), response.version)
            for point, r in zip(response.elements, self._blinds, strict=True)
        ]
        self._done()
        return tokens

    def finalize_threshold(
        self, responses: Sequence[EvaluateResponse], threshold: int
    ) -> list[str]:
        """Combine ``threshold`` share servers' answers (Lagrange in the exponent), unblind."""
        chosen = list(responses)[:threshold]
        if len(chosen) < threshold:
            raise InvalidInputError(f"need answers from {threshold} key servers, got {len(chosen)}")
        indices = [r.share_index for r in chosen]
        if any(i is None for i in indices) or len(set(indices)) != len(indices):
            raise InvalidInputError("threshold answers need distinct share indices")
        if len({r.version for r in chosen}) != 1:
            raise InvalidInputError("key servers answered with different key versions")
        for response in chosen:
            self._expect(len(response.elements))
        xs = [int(i) for i in indices if i is not None]
        lambdas = [lagrange_at_zero(xs, j) for j in range(len(xs))]
        tokens = []
        for n, r in enumerate(self._blinds):
            r_inv = pow(r, -1, L)
            # sum_j lambda_j * (k_j * B) = k * B; fold r^-1 into each coefficient
            acc: bytes | None = None
            for lam, response in zip(lambdas, chosen, strict=True):
                part = mul(response.elements[n], lam * r_inv % L)
                acc = part if acc is None else _add(acc, part)
            assert acc is not None
            tokens.append(encode_token(acc, chosen[0].version))
        self._done()
        return tokens

    def _expect(self, count: int) -> None:
        if self._state != "blinded":
            raise InvalidInputError("finalise only after blinding one batch")
        if count != len(self._blinds):
            raise InvalidInputError("the zone answered a different number of elements")

    def _done(self) -> None:
        self._blinds.clear()
        self._state = "done"


def _add(a: bytes, b: bytes) -> bytes:
    return bytes(sodium.crypto_core_ed25519_add(a, b))


def lagrange_at_zero(xs: Sequence[int], j: int) -> int:
    """The Lagrange coefficient at 0 of share index ``xs[j]`` among ``xs``, modulo L."""
    num, den = 1, 1
    for m, x in enumerate(xs):
        if m != j:
            num = num * x % L
            den = den * (x - xs[j]) % L
    return num * pow(den, -1, L) % L


class OprfServer:
    """The zone's side: evaluates blinded points under its KeyProvider key; rotates tokens."""

    def __init__(self, keys: KeyProvider, key_name: str, zone: str) -> None:
        self._keys = keys
        self._key_name = key_name
        self._zone = zone

    def __repr__(self) -> str:
        return f"<OprfServer {self._key_name} zone={self._zone}>"

    def _scalar(self, match_key: str, version: int | None) -> tuple[int, int]:
        current, _ = self._keys.get(self._key_name, version)
        material = self._keys.derive(
            self._key_name, oprf_purpose(self._zone, match_key), 64, current
        )
        return current, scalar_from_key(material)

    def evaluate(self, request: BlindRequest) -> EvaluateResponse:
        """``k * B`` for every blinded point (torsion cleared; invalid points refused)."""
        version, k = self._scalar(request.match_key, None)
        return EvaluateResponse(version, tuple(mul_cleared(p, k) for p in request.elements))

    def rekey(
        self, match_key: str, tokens: Sequence[str | None], to_version: int
    ) -> list[str | None]:
        """Move stored tokens to key ``to_version`` by multiplying with ``k_new / k_old``.

        Needs no PII and no provider: overlaps computed before and after are identical.
        """
        _, k_new = self._scalar(match_key, to_version)
        factors: dict[int, int] = {}
        out: list[str | None] = []
        for token in tokens:
            if token is None:
                out.append(None)
                continue
            version, point = decode_token(token)
            if version not in factors:
                _, k_old = self._scalar(match_key, version)
                factors[version] = k_new * pow(k_old, -1, L) % L
            out.append(encode_token(mul(point, factors[version]), to_version))
        return out


def split_key(
    secret: int, threshold: int, shares: int, random_bytes: RandomBytes = secrets.token_bytes
) -> list[tuple[int, int]]:
    """Shamir-share ``secret`` mod L: ``shares`` pairs (index, share), any ``threshold`` suffice."""
    if not 1 <= threshold <= shares:
        raise InvalidInputError("threshold must be between 1 and the number of shares")
    coefficients = [secret % L] + [random_scalar(random_bytes) for _ in range(threshold - 1)]
    out = []
    for x in range(1, shares + 1):
        y = 0
        for c in reversed(coefficients):
            y = (y * x + c) % L
        out.append((x, y))
    return out


class OprfShareServer:
    """One of ``n`` independent key servers of the threshold OPRF (holds one share)."""

    def __init__(self, index: int, share: int, version: int = 1) -> None:
        self._index = index
        self._share = share
        self._version = version

    def __repr__(self) -> str:
        return f"<OprfShareServer {self._index}>"

    def evaluate(self, request: BlindRequest) -> EvaluateResponse:
        points = tuple(mul_cleared(p, self._share) for p in request.elements)
        return EvaluateResponse(self._version, points, self._index)


Transport = Callable[[BlindRequest], EvaluateResponse]


def oprf_tokens(
    match_key: str,
    values: Sequence[bytes],
    transport: Transport,
    random_bytes: RandomBytes = secrets.token_bytes,
) -> list[str]:
    """Run one OPRF batch through ``transport`` (e.g. ``server.evaluate`` in process)."""
    client = OprfClient(random_bytes)
    return client.finalize(transport(client.blind(match_key, values)))
