"""Unit tests of the pure parts of auth: scopes per role, JWTs, revocation, rate limits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.errors import AuthenticationError, InvalidInputError, NotAuthorisedError
from collabzone.model import Party, Role
from collabzone.server.auth import (
    ALL_SCOPES,
    ROLE_SCOPES,
    RateLimiter,
    RevocationList,
    TokenService,
    scopes_for,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
roles = st.sets(st.sampled_from(list(Role)), min_size=1).map(lambda s: tuple(sorted(s)))


def _party(party_roles: tuple[Role, ...]) -> Party:
    return Party(name="bank", roles=party_roles, created_at=NOW)


@given(roles, st.sets(st.sampled_from(sorted(ALL_SCOPES))))
def test_a_token_never_carries_a_scope_beyond_its_roles(
    party_roles: tuple[Role, ...], asked: set[str]
) -> None:
    party = _party(party_roles)
    allowed = frozenset().union(*(ROLE_SCOPES[r] for r in party_roles))
    if asked <= allowed:
        granted = scopes_for(party, " ".join(sorted(asked)))
        assert granted == (asked or allowed)
    else:
        with pytest.raises(NotAuthorisedError):
            scopes_for(party, " ".join(sorted(asked)))


def test_only_providers_decide_and_only_operators_add_parties() -> None:
    assert "requests:decide" not in scopes_for(_party((Role.ANALYST, Role.AUDITOR)))
    assert "parties:write" not in scopes_for(_party((Role.PROVIDER, Role.ANALYST)))
    with pytest.raises(InvalidInputError):
        scopes_for(_party((Role.ANALYST,)), "zone:read admin:all")


def _service(tmp_path: Path, key: bytes = b"k" * 32) -> TokenService:
    return TokenService(key, "collabzone:z1", 60, RevocationList(tmp_path / "revoked.json"))


def test_token_round_trip_and_revocation_survives_a_restart(tmp_path: Path) -> None:
    service = _service(tmp_path)
    issued = service.issue(_party((Role.PROVIDER,)), {"zone:read"})
    principal = service.verify(issued["access_token"])
    assert principal.party.name == "bank" and principal.scopes == {"zone:read"}
    service.revoked.revoke(principal.token_id, principal.expires_at)
    restarted = _service(tmp_path)
    with pytest.raises(AuthenticationError, match="revoked"):
        restarted.verify(issued["access_token"])


def test_tokens_of_another_zone_or_key_are_refused(tmp_path: Path) -> None:
    token = _service(tmp_path).issue(_party((Role.ANALYST,)), {"zone:read"})["access_token"]
    with pytest.raises(AuthenticationError):
        _service(tmp_path, key=b"j" * 32).verify(token)
    other_zone = TokenService(b"k" * 32, "collabzone:z2", 60, RevocationList(tmp_path / "r2.json"))
    with pytest.raises(AuthenticationError):
        other_zone.verify(token)


@settings(max_examples=60)
@given(
    st.floats(min_value=0.5, max_value=50),
    st.integers(min_value=1, max_value=20),
    st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=80),
)
def test_rate_limiter_never_grants_more_than_burst_plus_refill(
    rate: float, burst: int, gaps: list[float]
) -> None:
    limiter = RateLimiter(rate, burst)
    now, granted = 0.0, 0
    for gap in gaps:
        now += gap
        if limiter.acquire("bank", now=now) == 0.0:
            granted += 1
    assert granted <= burst + rate * now + 1e-6
    assert limiter.acquire("partner", now=now) == 0.0  # buckets are per party
