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
    JSON bodies, ``max_upload`` dataset uploads (bytes); each party may upload at most
    ``upload_quota`` bytes per ``upload_window`` seconds. ``threads`` bounds the worker
    threads running blocking zone calls.

    ``trusted_proxies`` are the addresses (or CIDR networks) of TLS-terminating proxies
    whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` the server believes; a request that
    reached such a proxy over HTTPS gets ``Secure`` cookies. ``secure_cookies`` forces
    them (the server's own TLS sets it).

    Every call checks its party's current standing (disabled, secret rotated), cached for
    ``party_cache_seconds``: the longest a disabled party can still act.

    Slow clients (``collabzone serve`` only): request headers must arrive within
    ``header_timeout`` seconds, a body may pause at most ``body_timeout`` seconds, and
    beyond ``max_connections`` open connections new requests get 503.

    Webhooks go only to public addresses unless ``webhook_allow`` names the network
    (addresses or CIDR, e.g. ``127.0.0.1`` for a receiver on the host); each delivery
    gives up after ``webhook_timeout`` seconds to connect or to read. HTTPS receivers are
    verified against the system CAs, or ``webhook_ca`` (a PEM bundle) when given.

    Brute force: after ``max_failures`` failed authentications within ``failure_window``
    seconds, a client address or client id is locked out for ``lockout_base`` seconds,
    doubled per further failure, up to ``lockout_cap`` seconds. Refusals are audited once, then
    folded into one aggregated ``auth.denied`` event per ``audit_window`` seconds.
    """

    zone_dir: Path
    db_url: str | None = None
    token_ttl: int = 900
    rate: float = 50.0
    burst: int = 200
    max_body: int = 1 << 20
    max_upload: int = 1 << 30
    upload_quota: int = 4 << 30
    upload_window: float = 86400.0
    secure_cookies: bool = False
    trusted_proxies: tuple[str, ...] = ()
    party_cache_seconds: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int | None = 1000
    smtp: SmtpSettings | None = None
    oidc: OidcSettings | None = None
    webhook_timeout: float = 5.0
    webhook_allow: tuple[str, ...] = ()
    webhook_ca: Path | None = None
    threads: int = 40
    max_failures: int = 10
    failure_window: float = 300.0
    lockout_base: float = 1.0
    lockout_cap: float = 900.0
    audit_window: float = 60.0

    @property
    def state_dir(self) -> Path:
        """Server-owned files (revoked token ids, webhook subscriptions, upload spool)."""
        return self.zone_dir / "server"
