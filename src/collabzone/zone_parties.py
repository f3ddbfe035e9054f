"""Zone operations on a party's standing: disable, enable, rotate its secret.

A party that leaves, or whose secret leaked, must stop acting at once: a disabled party's
secret is refused, and the server refuses every access token it holds (it checks the
party's current state on each call, cached for seconds). Rotating a secret bumps the
party's ``secret_version``, which the server's tokens carry, so every session opened
with the old secret ends too. What the party decided, asked and released stays in the
zone and in the audit log.
"""

from __future__ import annotations

from sqlalchemy import select, update

from collabzone import audit
from collabzone.errors import ConflictError, InvalidInputError, NotAuthorisedError
from collabzone.model import Party, Role
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.zone_base import ZoneBase, _hash_token, _new_token, _now


class PartyOps(ZoneBase):
    """The operator's hold on each party's credentials."""

    def disable_party(self, name: str, reason: str) -> Party:
        """Stop ``name`` from acting (operator only): its secret and tokens are refused."""
        me = self._require_role("disabling a party", Role.OPERATOR)
        if not reason.strip():
            raise InvalidInputError("give a reason for disabling the party")
        if name == me.name:
            raise ConflictError("an operator cannot disable itself: ask another operator")
        return self._set_disabled(me, name, disabled=True, reason=reason)

    def enable_party(self, name: str) -> Party:
        """Let a disabled party act again (operator only; its secret is unchanged)."""
        me = self._require_role("enabling a party", Role.OPERATOR)
        return self._set_disabled(me, name, disabled=False, reason="")

    def rotate_party_secret(self, name: str) -> tuple[Party, str]:
        """A new secret for ``name`` (the operator, or the party itself); the old secret and
        every token issued with it stop working. Returns the party and the secret, shown
        once."""
        me = self.me
        if me.name != name and not me.has_role(Role.OPERATOR):
            self._require_role("rotating another party's secret", Role.OPERATOR)
        secret = _new_token()
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            party = repo.get_party(conn, name)
            conn.execute(
                update(t.parties)
                .where(t.parties.c.name == name)
                .values(
                    token_hash=_hash_token(secret),
                    secret_version=party.secret_version + 1,
                )
            )
            audit.append(
                conn,
                self._mac_key(),
                actor=me.name,
                action="party.secret_rotated",
                subject=name,
                parties=sorted({me.name, name}),
                details={"secret_version": party.secret_version + 1},
            )
            party = repo.get_party(conn, name)
        return party, secret

    def party_status(self, name: str) -> Party:
        """The party's current standing, for the server's per-call check (host only)."""
        self._require_host("party_status")
        with self._engine.connect() as conn:
            row = conn.execute(select(t.parties).where(t.parties.c.name == name)).mappings().first()
        if row is None:
            raise NotAuthorisedError(f"party {name!r} no longer exists")
        return repo.party_from_row(row)

    def _set_disabled(self, me: Party, name: str, *, disabled: bool, reason: str) -> Party:
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            party = repo.get_party(conn, name)
            if (party.disabled_at is not None) == disabled:
                raise ConflictError(
                    f"party {name!r} is already {'disabled' if disabled else 'enabled'}"
                )
            at = _now()
            conn.execute(
                update(t.parties)
                .where(t.parties.c.name == name)
                .values(disabled_at=repo.iso(at) if disabled else None)
            )
            audit.append(
                conn,
                self._mac_key(),
                actor=me.name,
                action="party.disabled" if disabled else "party.enabled",
                subject=name,
                parties=sorted({me.name, name}),
                details={"reason": reason} if disabled else {},
            )
            return repo.get_party(conn, name)
