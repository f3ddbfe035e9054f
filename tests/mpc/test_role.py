"""The ``compute`` role: a zone registers the independent MPC servers as parties."""

from __future__ import annotations

from pathlib import Path

from collabzone.keys import new_master_key
from collabzone.model import Role
from collabzone.zone import init


def test_zone_registers_compute_parties(tmp_path: Path) -> None:
    zone, _ = init(tmp_path / "zone", master_key=new_master_key())
    try:
        for name in ("server_a", "server_b", "server_c"):
            party, token = zone.add_party(name, ["compute"])
            assert party.has_role(Role.COMPUTE) and not party.has_role(Role.PROVIDER)
            assert token
    finally:
        close = getattr(zone, "close", None)
        if close:
            close()
