"""How the server acts for a party: thin calls onto the Zone's public front-door methods.

The server opens the zone once and, per HTTP request, acts as the party named by a
verified access token (``Zone.acting_as``), records refused attempts
(``Zone.record_denied``) and derives its own keys (``Zone.derive_key``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from collabzone.model import Party
from collabzone.zone import Zone


def authenticate(zone: Zone, secret: str) -> Party:
    """The party whose token is ``secret``; a wrong one raises AuthenticationError (the
    core's own check, so the stored hash is the only truth). The caller audits refusals
    (aggregated, see ``_guard.DenialAudit``), so the core does not write one per guess."""
    return zone.authenticate(secret, audit=False)


def acting_as(zone: Zone, party: Party) -> Zone:
    """A handle on the same open zone acting for ``party`` (shares engine, keys, stores)."""
    return zone.acting_as(party)


def record_denied(
    zone: Zone, actor: str, subject: str, parties: Iterable[str], details: Mapping[str, Any]
) -> None:
    """Write an ``auth.denied`` audit event (no token, bad token, wrong scope...)."""
    zone.record_denied(actor, subject, parties, details)


def derive_key(zone: Zone, purpose: str) -> bytes:
    """Key material for one server purpose (JWT signing, CSRF, webhook secrets)."""
    return zone.derive_key(f"server/{purpose}")


def party_named(zone: Zone, name: str) -> Party:
    """The registered party called ``name`` (for sign-in by an identity provider, which
    vouches for a name, not a secret)."""
    return zone.party(name)


def party_status(zone: Zone, name: str) -> Party:
    """The party's current standing (disabled? secret version?), read for each call's
    check; a party that no longer exists raises NotAuthorisedError."""
    return zone.party_status(name)
