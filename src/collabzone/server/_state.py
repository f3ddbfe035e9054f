"""What one running server holds: the open zone, the token service, limits, notifier.

Every authenticated HTTP call goes through :meth:`ServerState.authorise`, which turns a
bearer token into a zone handle acting for its party, after checking revocation, scope and
the party's rate limit. Every refusal on the way is an ``auth.denied`` audit event.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException

from collabzone.errors import AuthenticationError, NotAuthorisedError
from collabzone.model import Party
from collabzone.server import _acting
from collabzone.server._settings import ServerSettings
from collabzone.server.auth import Principal, RateLimiter, RevocationList, TokenService
from collabzone.server.webhooks import Notifier
from collabzone.zone import Zone
from collabzone.zone import connect as connect_zone


class RateLimited(HTTPException):
    """HTTP 429 with Retry-After."""

    def __init__(self, wait: float) -> None:
        super().__init__(
            429,
            "rate limit reached for this party: slow down and retry later",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )


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
        self.csrf_key = _acting.derive_key(self.zone, "csrf")
        self.notifier = Notifier(
            settings.state_dir / "webhooks.json",
            lambda party: _acting.derive_key(self.zone, f"webhook:{party}"),
            smtp=settings.smtp,
            timeout=settings.webhook_timeout,
        )

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

    def deny(self, actor: str, subject: str, reason: str) -> None:
        """Audit a refused call (never with the token itself)."""
        _acting.record_denied(
            self.zone, actor, subject, [] if actor == "anonymous" else [actor], {"reason": reason}
        )

    def authenticate(self, token: str | None, subject: str, client: str = "") -> Principal:
        """The principal of a bearer token; audits and raises AuthenticationError if none.

        Failed attempts also draw on the client address's bucket, so a flood of bad tokens
        gets 429 (unaudited) instead of filling the audit log.
        """
        if not token:
            self._throttle_failures(client)
            self.deny("anonymous", subject, "no access token")
            raise AuthenticationError(
                "no access token: get one at /oauth/token and send 'Authorization: Bearer ...'"
            )
        try:
            return self.tokens.verify(token)
        except AuthenticationError as exc:
            self._throttle_failures(client)
            self.deny("anonymous", subject, exc.message)
            raise

    def _throttle_failures(self, client: str) -> None:
        if client:
            wait = self.limiter.acquire(f"ip:{client}")
            if wait:
                raise RateLimited(wait)

    def authorise(self, token: str | None, scope: str, subject: str, client: str = "") -> Caller:
        """Authenticate, check ``scope`` and the rate limit; the zone acting for the party."""
        principal = self.authenticate(token, subject, client)
        party = principal.party.name
        if scope not in principal.scopes:
            self.deny(party, subject, f"token lacks scope {scope}")
            raise NotAuthorisedError(
                f"this call needs the scope {scope!r}; the token has {sorted(principal.scopes)}"
            )
        wait = self.limiter.acquire(f"party:{party}")
        if wait:
            raise RateLimited(wait)
        return Caller(_acting.acting_as(self.zone, principal.party), principal)

    def close(self) -> None:
        self.notifier.close()
