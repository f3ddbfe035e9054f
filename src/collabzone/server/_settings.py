"""Server settings: one frozen value, built by the CLI or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SmtpSettings:
    """Where e-mail notifications go (only when configured)."""

    host: str
    port: int = 587
    sender: str = "collabzone@localhost"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True


@dataclass(frozen=True)
class OidcSettings:
    """An OpenID Connect identity provider for console sign-in (authorization code + PKCE).

    ``party_claim`` names the ID-token claim holding the zone party name (e.g. a custom
    ``collabzone_party`` claim, or ``preferred_username`` when those equal party names).
    """

    issuer: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    party_claim: str = "collabzone_party"
    scope: str = "openid"


@dataclass(frozen=True)
class ServerSettings:
    """How one zone server runs.

    ``token_ttl`` is the access-token lifetime in seconds (short on purpose: revocation
    of a party's secret takes effect at the latest after one TTL). ``rate`` and ``burst``
    are each party's token bucket (requests per second, bucket size). ``max_body`` caps
    JSON bodies, ``max_upload`` dataset uploads (bytes). ``threads`` bounds the worker
    threads running blocking zone calls.
    """

    zone_dir: Path
    db_url: str | None = None
    token_ttl: int = 900
    rate: float = 50.0
    burst: int = 200
    max_body: int = 1 << 20
    max_upload: int = 1 << 30
    secure_cookies: bool = False
    smtp: SmtpSettings | None = None
    oidc: OidcSettings | None = None
    webhook_timeout: float = 5.0
    threads: int = 40

    @property
    def state_dir(self) -> Path:
        """Server-owned files (revoked token ids, webhook subscriptions, upload spool)."""
        return self.zone_dir / "server"
