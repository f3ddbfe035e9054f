"""The zone server: REST API with OAuth2 client credentials, web console, webhooks.

>>> from collabzone.server import ServerSettings, create_app            # doctest: +SKIP
>>> app = create_app(ServerSettings(zone_dir=Path("zone")))             # doctest: +SKIP
"""

from __future__ import annotations

from collabzone.server._settings import OidcSettings, ServerSettings, SmtpSettings
from collabzone.server.app import create_app
from collabzone.server.auth import ROLE_SCOPES, Principal, TokenService, scopes_for
from collabzone.server.webhooks import SIGNATURE_HEADER, sign, verify_signature

__all__ = [
    "ROLE_SCOPES",
    "SIGNATURE_HEADER",
    "OidcSettings",
    "Principal",
    "ServerSettings",
    "SmtpSettings",
    "TokenService",
    "create_app",
    "scopes_for",
    "sign",
    "verify_signature",
]
