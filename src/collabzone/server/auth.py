"""OAuth2 client-credentials tokens: short-lived signed JWTs with scopes per role.

A party authenticates with ``client_id`` = its name and ``client_secret`` = the token
``Zone.add_party`` returned (only its hash is stored). It gets an HS256 JWT whose signing
key is derived from the zone's keyring, so tokens survive a restart and no key is on disk
in clear. Revoked token ids are kept (until they expire) in ``server/revoked.json``.

Scopes narrow what a token may do; the zone still checks roles and ownership itself::

    zone:read         read parties, datasets, agreements, requests, results, budget
    audit:read        read the audit log this party may see, verify the chain
    requests:submit   submit and price requests (also the catalogue)
    requests:decide   approve / deny requests on one's datasets (providers)
    datasets:write    upload, register, remove datasets; sign and revoke agreements
    jobs:run          pull and complete jobs at the owner's node (providers, mediators)
    parties:write     register parties (operator)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from collabzone.errors import AuthenticationError, InvalidInputError, NotAuthorisedError
from collabzone.model import Party, Role

ALGORITHM = "HS256"

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.PROVIDER: frozenset(
        {
            "zone:read",
            "audit:read",
            "requests:submit",
            "requests:decide",
            "datasets:write",
            "jobs:run",
        }
    ),
    Role.ANALYST: frozenset({"zone:read", "audit:read", "requests:submit"}),
    Role.MEDIATOR: frozenset({"zone:read", "audit:read", "requests:submit", "jobs:run"}),
    Role.COMPUTE: frozenset({"zone:read", "audit:read", "jobs:run"}),
    Role.AUDITOR: frozenset({"zone:read", "audit:read"}),
    Role.OPERATOR: frozenset({"zone:read", "audit:read", "requests:submit", "parties:write"}),
}
ALL_SCOPES = frozenset().union(*ROLE_SCOPES.values())


def scopes_for(party: Party, requested: str | None = None) -> frozenset[str]:
    """The scopes a token for ``party`` carries: its roles' scopes, narrowed to
    ``requested`` (space-separated) when given. Asking beyond the roles is an error."""
    granted = frozenset().union(*(ROLE_SCOPES[Role(r)] for r in party.roles))
    if not requested:
        return granted
    wanted = frozenset(requested.split())
    unknown = wanted - ALL_SCOPES
    if unknown:
        raise InvalidInputError(
            f"unknown scope(s) {sorted(unknown)}; scopes: {', '.join(sorted(ALL_SCOPES))}"
        )
    beyond = wanted - granted
    if beyond:
        raise NotAuthorisedError(f"{party.name!r} cannot be granted {sorted(beyond)}")
    return wanted


@dataclass(frozen=True)
class Principal:
    """Who a verified access token speaks for."""

    party: Party
    scopes: frozenset[str]
    token_id: str
    expires_at: int


class RevocationList:
    """Revoked token ids until their expiry, in memory and persisted atomically."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._revoked: dict[str, int] = {}
        if path.exists():
            try:
                self._revoked = {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, AttributeError):
                raise InvalidInputError(
                    f"{path} is not a revocation list: restore it from a backup"
                ) from None

    def revoke(self, token_id: str, expires_at: int) -> None:
        """Deny ``token_id`` from now on (kept until it would have expired anyway)."""
        with self._lock:
            now = int(time.time())
            self._revoked = {k: v for k, v in self._revoked.items() if v >= now}
            self._revoked[token_id] = expires_at
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._revoked), encoding="utf-8")
            os.replace(tmp, self._path)

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._revoked


class TokenService:
    """Issues and verifies the zone's access tokens."""

    def __init__(self, key: bytes, issuer: str, ttl: int, revoked: RevocationList) -> None:
        self._key = key
        self._issuer = issuer
        self._ttl = ttl
        self.revoked = revoked

    def issue(self, party: Party, scopes: Iterable[str], ttl: int | None = None) -> dict[str, Any]:
        """An OAuth2 token response (RFC 6749 section 5.1) for ``party``."""
        now = int(time.time())
        lifetime = ttl if ttl is not None else self._ttl
        claims = {
            "iss": self._issuer,
            "aud": self._issuer,
            "sub": party.name,
            "roles": [str(r) for r in party.roles],
            "since": party.created_at.isoformat(),
            "ver": party.secret_version,
            "scope": " ".join(sorted(scopes)),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": claims["scope"],
        }

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; AuthenticationError says why one is not."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self._issuer,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "jti", "scope"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("the access token has expired: request a new one") from None
        except jwt.InvalidTokenError:
            raise AuthenticationError(
                "the access token is invalid: request one at /oauth/token"
            ) from None
        if claims["jti"] in self.revoked:
            raise AuthenticationError("the access token was revoked: request a new one")
        try:
            party = Party(
                name=claims["sub"],
                roles=tuple(Role(r) for r in claims["roles"]),
                created_at=dt.datetime.fromisoformat(claims["since"]),
                secret_version=int(claims.get("ver", 1)),
            )
        except (KeyError, ValueError, TypeError):
            raise AuthenticationError("the access token is malformed: request a new one") from None
        return Principal(party, frozenset(claims["scope"].split()), claims["jti"], claims["exp"])


class RateLimiter:
    """A token bucket per key (party name or client address): ``rate`` per second, up to
    ``burst`` at once. Returns the seconds to wait, or 0 when the call may proceed."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, now: float | None = None) -> float:
        """Take one token for ``key``; 0.0 if granted, else how long until one is free."""
        at = time.monotonic() if now is None else now
        with self._lock:
            level, last = self._buckets.get(key, (self._burst, at))
            level = min(self._burst, level + (at - last) * self._rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, at)
                return 0.0
            self._buckets[key] = (level, at)
            return (1.0 - level) / self._rate
