"""What one running server holds: the open zone, the token service, limits, notifier.

Every authenticated HTTP call (REST and console alike) goes through
:meth:`ServerState.authorise`, which turns a bearer token into a zone handle acting for its
party, after checking revocation, scope and the party's rate limit. Secrets are exchanged
only through :meth:`ServerState.sign_in`, behind the failure limits of ``_guard``. Every
refusal on the way is an ``auth.denied`` audit event, repeats folded into one per window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException

from collabzone.errors import AuthenticationError, NotAuthorisedError
from collabzone.model import Party
from collabzone.server import _acting
from collabzone.server._guard import DenialAudit, FailureGuard
from collabzone.server._settings import ServerSettings
from collabzone.server.auth import Principal, RateLimiter, RevocationList, TokenService
from collabzone.server.webhook_targets import parse_allow
from collabzone.server.webhooks import Notifier
from collabzone.techniques import registry
from collabzone.zone import Zone
from collabzone.zone import connect as connect_zone

WRONG_SECRET = "unknown client or wrong secret"


class RateLimited(HTTPException):
    """HTTP 429 with Retry-After."""

    def __init__(self, wait: float, message: str = "rate limit reached for this party") -> None:
        super().__init__(
            429,
            f"{message}: slow down and retry later",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )


class PartyStanding:
    """Each party's current standing (disabled? secret version?), cached for ``ttl`` s.

    Tokens are self-contained, so without this a disabled party, or one whose secret was
    rotated, would keep acting until its tokens expired. The cache keeps that lag to a few
    seconds without a database read per call; changes made through this server forget
    the entry at once.
    """

    def __init__(self, lookup: Callable[[str], Party], ttl: float) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Party]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Party:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        party = self._lookup(name)
        with self._lock:
            self._cache[name] = (now, party)
        return party

    def forget(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name, None)


@dataclass(frozen=True)
class Caller:
    """An authorised call: the zone acting for the token's party, and the token."""

    zone: Zone
    principal: Principal

    @property
    def party(self) -> Party:
        return self.principal.party


class ServerState:
    """Everything the routes share."""

    def __init__(self, settings: ServerSettings, zone: Zone | None = None) -> None:
        self.settings = settings
        self.zone = zone or connect_zone(settings.zone_dir, db_url=settings.db_url, host=True)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        (settings.state_dir / "uploads").mkdir(exist_ok=True)
        self.tokens = TokenService(
            _acting.derive_key(self.zone, "jwt"),
            f"collabzone:{self.zone.zone_id}",
            settings.token_ttl,
            RevocationList(settings.state_dir / "revoked.json"),
        )
        self.limiter = RateLimiter(settings.rate, settings.burst)
        self.guard = FailureGuard(
            threshold=settings.max_failures,
            window=settings.failure_window,
            base=settings.lockout_base,
            cap=settings.lockout_cap,
        )
        self.denials = DenialAudit(
            lambda actor, subject, parties, details: _acting.record_denied(
                self.zone, actor, subject, parties, details
            ),
            window=settings.audit_window,
        )
        self.csrf_key = _acting.derive_key(self.zone, "csrf")
        self.standing = PartyStanding(
            lambda name: _acting.party_status(self.zone, name), settings.party_cache_seconds
        )
        self.notifier = Notifier(
            settings.state_dir / "webhooks.json",
            lambda party: _acting.derive_key(self.zone, f"webhook:{party}"),
            smtp=settings.smtp,
            timeout=settings.webhook_timeout,
            allow=parse_allow(settings.webhook_allow),
            ca=settings.webhook_ca,
        )
        self.workers = registry.start_workers(self.zone)
        """Techniques' background work (the federated aggregator when zone.toml asks)."""

    def reload_service_keys(self) -> None:
        """Derive the JWT and CSRF keys again after ``zone-services`` rotated: every access
        token and console session signed with the old key stops verifying."""
        self.tokens = TokenService(
            _acting.derive_key(self.zone, "jwt"),
            f"collabzone:{self.zone.zone_id}",
            self.settings.token_ttl,
            self.tokens.revoked,
        )
        self.csrf_key = _acting.derive_key(self.zone, "csrf")

    def deny(
        self, actor: str, subject: str, reason: str, client: str = "", *, locked: bool = False
    ) -> None:
        """Audit a refused call (never with the token itself); repeats are aggregated."""
        parties = [] if actor == "anonymous" else [actor]
        self.denials.deny(actor, subject, parties, reason, client, locked=locked)

    def sign_in(
        self, secret: str, subject: str, client: str, client_id: str | None = None
    ) -> Party:
        """The party whose secret this is, behind the brute-force limits.

        A client address (or client id) that failed too often is answered 429 before the
        secret is even looked at; every failure extends its back-off.
        """
        keys = [f"ip:{client}"] + ([f"client:{client_id}"] if client_id else [])
        wait = self.guard.locked(keys)
        if wait:
            self.deny("anonymous", subject, WRONG_SECRET, client, locked=True)
            raise RateLimited(wait, "too many failed sign-ins from here")
        try:
            party = _acting.authenticate(self.zone, secret)
            if client_id is not None and client_id != party.name:
                raise AuthenticationError("client_id does not match the secret")
        except AuthenticationError:
            for key in keys:
                self.guard.fail(key)
            self.deny("anonymous", subject, WRONG_SECRET, client)
            raise AuthenticationError(WRONG_SECRET) from None
        self.guard.succeed(f"client:{party.name}")
        return party

    def authenticate(self, token: str | None, subject: str, client: str = "") -> Principal:
        """The principal of a bearer token; audits and raises AuthenticationError if none.

        Failed attempts also count against the client address (bucket and failure
        limits), so a flood of bad tokens gets 429 instead of filling the audit log.
        """
        wait = self.guard.locked([f"ip:{client}"]) if client else 0.0
        if wait:
            self.deny("anonymous", subject, "invalid access tokens", client, locked=True)
            raise RateLimited(wait, "too many failed attempts from here")
        if not token:
            self._throttle_failures(client, guessed=False)
            self.deny("anonymous", subject, "no access token", client)
            raise AuthenticationError(
                "no access token: get one at /oauth/token and send 'Authorization: Bearer ...'"
            )
        try:
            principal = self.tokens.verify(token)
        except AuthenticationError as exc:
            self._throttle_failures(client)
            self.deny("anonymous", subject, exc.message, client)
            raise
        self._check_standing(principal, subject, client)
        return principal

    def _check_standing(self, principal: Principal, subject: str, client: str) -> None:
        """Refuse a valid token whose party was disabled, removed or re-keyed since."""
        name = principal.party.name
        try:
            current = self.standing.get(name)
        except NotAuthorisedError:
            self.deny(name, subject, "party no longer exists", client)
            raise AuthenticationError(f"party {name!r} no longer exists") from None
        if current.disabled_at is not None:
            self.deny(name, subject, "party disabled", client)
            raise AuthenticationError(
                f"party {name!r} is disabled: ask the zone's operator to enable it"
            )
        if current.secret_version != principal.party.secret_version:
            self.deny(name, subject, "token issued before a secret rotation", client)
            raise AuthenticationError(
                f"the secret of {name!r} was rotated after this token was issued: "
                "sign in again with the new secret"
            )

    def _throttle_failures(self, client: str, *, guessed: bool = True) -> None:
        """Draw on the address's bucket; a token that was wrong (not merely absent) also
        counts towards its failure limit."""
        if client:
            if guessed:
                self.guard.fail(f"ip:{client}")
            wait = self.limiter.acquire(f"ip:{client}")
            if wait:
                raise RateLimited(wait)

    def authorise(self, token: str | None, scope: str, subject: str, client: str = "") -> Caller:
        """Authenticate, check ``scope`` and the rate limit; the zone acting for the party."""
        principal = self.authenticate(token, subject, client)
        party = principal.party.name
        if scope not in principal.scopes:
            self.deny(party, subject, f"token lacks scope {scope}", client)
            raise NotAuthorisedError(
                f"this call needs the scope {scope!r}; the token has {sorted(principal.scopes)}"
            )
        wait = self.limiter.acquire(f"party:{party}")
        if wait:
            raise RateLimited(wait)
        return Caller(_acting.acting_as(self.zone, principal.party), principal)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.denials.flush()
        self.notifier.close()
