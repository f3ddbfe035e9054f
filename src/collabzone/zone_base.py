"""The shared base of the Zone: identity (acting as one authenticated party), stores, keys."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self

from sqlalchemy import Engine, select

from collabzone.errors import (
    AuthenticationError,
    InvalidInputError,
    NotAuthorisedError,
)
from collabzone.keys import KeyProvider
from collabzone.model import (
    Party,
    Role,
)
from collabzone.pacing import Pacing
from collabzone.requests import RequestEngine
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.store.data import DataStore

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DB_URL_ENV = "COLLABZONE_DB_URL"
NODE_PREFIX = "node:"
SERVICES_KEY = "zone-services"
HOST_METHODS = frozenset(
    {
        "authenticate", "acting_as", "record_denied", "derive_key", "party", "party_status",
        # the aggregator of fan-out (federated) jobs runs in the host process
        "fanout_job", "complete_fanout", "job_event", "job_evaluation_table", "job_signing_key",
        "approved_fanout", "start_fanout", "fail_fanout",
    }
)  # fmt: skip
"""Methods for the process hosting the zone (the server), not for a party's client."""


def _check_name(kind: str, name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInputError(
            f"{kind} name {name!r} must start with a lowercase letter and use only a-z, 0-9 and _ (max 63)"
        )
    return name


def _pacing(root: Path) -> Pacing:
    """The response-time ladder of zone.toml's ``[timing]`` table (see pacing.py)."""
    config = root / "zone.toml"
    if not config.exists():
        return Pacing()
    try:
        doc = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise InvalidInputError(f"{config} is not valid TOML") from None
    return Pacing.parse(doc.get("timing"))


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> str:
    return "czt_" + secrets.token_urlsafe(32)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ZoneBase:
    """What every part of the Zone shares: the stores, the keys and the acting party."""

    def __init__(
        self, root: Path, engine: Engine, keys: KeyProvider, zone_id: str, token: str | None
    ) -> None:
        self.root = root
        self.zone_id = zone_id
        self._engine = engine
        self._keys = keys
        self._data = DataStore(root / "data", keys)
        self._requests = RequestEngine(engine, self._data, keys, zone_id, _pacing(root))
        self._party = self._authenticate(token) if token else None
        self._clean_orphans()

    def _clean_orphans(self) -> None:
        """Housekeeping when the zone opens (the dataset part removes crash leftovers)."""

    def __repr__(self) -> str:
        who = self._party.name if self._party else "nobody"
        return f"<Zone {self.zone_id} as {who}>"

    # -- identity -------------------------------------------------------------------------

    def _authenticate(self, token: str, *, audit: bool = True) -> Party:
        with self._engine.connect() as conn:
            row = (
                conn.execute(select(t.parties).where(t.parties.c.token_hash == _hash_token(token)))
                .mappings()
                .first()
            )
        if row is None:
            if audit:
                self._requests.audit_denied(
                    "anonymous", "authentication", set(), {"reason": "unknown token"}
                )
            raise AuthenticationError(
                "the token matches no party (check --token / COLLABZONE_TOKEN)"
            )
        party = repo.party_from_row(row)
        if party.disabled_at is not None:
            if audit:
                self._requests.audit_denied(
                    party.name, "authentication", {party.name}, {"reason": "party disabled"}
                )
            raise AuthenticationError(
                f"party {party.name!r} is disabled: ask the zone's operator to enable it"
            )
        return party

    def as_party(self, token: str) -> Self:
        """The same zone, acting as the party that owns ``token``."""
        return type(self)(self.root, self._engine, self._keys, self.zone_id, token)

    def _require_host(self, action: str) -> None:
        """Host methods serve the process that opened the zone without a party (the server);
        a handle acting for a party must not impersonate others or read service keys."""
        if self._party is not None:
            self._requests.audit_denied(
                self._party.name, action, {self._party.name}, {"attempt": action}
            )
            raise NotAuthorisedError(
                f"{action} is for the zone's host process, not for a party's handle"
            )

    def authenticate(self, secret: str, *, audit: bool = True) -> Party:
        """The party whose token is ``secret`` (a wrong one is refused, and audited unless
        ``audit`` is off: a front door that aggregates its own denials turns it off)."""
        return self._authenticate(secret, audit=audit)

    def acting_as(self, party: Party) -> Self:
        """A handle on the same open zone acting for ``party``, sharing its stores and keys.

        For front doors that verified the party themselves (the server checks a signed
        access token); everything the handle does is authorised and audited as ``party``.
        """
        self._require_host("acting_as")
        handle = copy.copy(self)
        handle._party = party
        return handle

    def record_denied(
        self, actor: str, subject: str, parties: Iterable[str], details: Mapping[str, Any]
    ) -> None:
        """Write an ``auth.denied`` audit event for an attempt refused before reaching the zone."""
        self._require_host("record_denied")
        self._requests.audit_denied(actor, subject, set(parties), details)

    def derive_key(self, purpose: str) -> bytes:
        """Key material for one zone service (JWT signing, CSRF, webhooks), derived with HKDF
        from the keyring: stable across restarts, never on disk, never in a log."""
        self._require_host("derive_key")
        self._keys.create(SERVICES_KEY)
        return self._keys.derive(SERVICES_KEY, f"{self.zone_id}/{purpose}")

    def party(self, name: str) -> Party:
        """The registered party called ``name``."""
        with self._engine.connect() as conn:
            return repo.get_party(conn, name)

    @property
    def me(self) -> Party:
        """The party this handle acts for."""
        if self._party is None:
            raise AuthenticationError("no token given: pass --token or set COLLABZONE_TOKEN")
        return self._party

    def _require_role(self, action: str, *roles: Role) -> Party:
        me = self.me
        if not any(me.has_role(r) for r in roles):
            self._requests.audit_denied(
                me.name, action, {me.name}, {"needs_role": [r.value for r in roles]}
            )
            raise NotAuthorisedError(
                f"{action} needs the role {' or '.join(r.value for r in roles)}; "
                f"{me.name!r} has {', '.join(me.roles)}"
            )
        return me

    def _mac_key(self) -> bytes:
        return self._keys.derive("audit-head", self.zone_id)
