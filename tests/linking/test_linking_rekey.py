"""OPRF re-key through the zone (the Found: re-key was Python-only, on token lists): the
operator rotates ``oprf:<collaboration>`` and the zone re-keys the stored token columns of
the named datasets; overlaps before and after are identical, fresh tokenisation under the
new key lands on the re-keyed tokens, and the owners see the audited event."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from linking_support import SPEC_DOC
from test_linking_zone import COLUMNS, raw_file

from collabzone.errors import InvalidInputError, NotFoundError
from collabzone.model import Request, RequestStatus
from collabzone.techniques.linking import OprfServer, parse_spec, prepare
from collabzone.techniques.linking._rekey import token_versions

KEY = "oprf:bank-retail"
DATASETS = ["bank_customers", "partner_customers"]


def _oprf_zone(make_zone: Callable[[str | None], Any], tmp_path: Path) -> tuple[Any, OprfServer]:
    zone = make_zone(None)
    zone_id = zone.operator.zone_id
    zone.operator._keys.create(KEY)  # the zone's OPRF key (embedded: one trust domain)
    server = OprfServer(zone.operator._keys, KEY, zone_id)
    spec = parse_spec({**SPEC_DOC, "mode": "oprf", "zone": zone_id})
    for party, people, shout, name in (
        ("bank", range(0, 120), False, DATASETS[0]),
        ("partner", range(70, 200), True, DATASETS[1]),
    ):
        out = tmp_path / f"{party}_upload.csv"
        report = prepare(
            raw_file(tmp_path / f"{party}_raw.csv", people, shout),
            spec,
            out,
            transport=server.evaluate,
        )
        handle = getattr(zone, party)
        handle.add_dataset(name, out, {"columns": report.token_columns() + COLUMNS})
        handle.add_agreement(
            name,
            grantees=["bank"],
            technique="overlap",
            purposes=["marketing"],
            rules={"min_group_size": 10, "allowed_dimensions": ["Region"]},
        )
    return zone, server


def _overlap(zone: Any) -> dict[str, Any]:
    request = zone.bank.submit("overlap", {"datasets": DATASETS, "by": "Region"}, "marketing")
    assert isinstance(request, Request)
    assert zone.bank.request(request.id).status == RequestStatus.RELEASED, request.reasons
    payload: dict[str, Any] = dict(zone.bank.result(request.id).payload)
    return payload


def _versions(zone: Any, dataset: str, column: str = "link_email") -> set[str]:
    return token_versions(zone.operator._data.read(dataset, 1).column(column))


def test_oprf_rotation_rekeys_stored_tokens_and_keeps_overlaps(
    make_zone: Callable[[str | None], Any], tmp_path: Path
) -> None:
    zone, server = _oprf_zone(make_zone, tmp_path)
    before = _overlap(zone)
    assert before["overlap"] == 50
    assert _versions(zone, DATASETS[0]) == {"o1"}
    old_tokens = zone.operator._data.read(DATASETS[0], 1).column("link_email").to_pylist()

    summary = zone.operator.rotate_key(KEY, datasets=DATASETS, spec_zone=zone.operator.zone_id)

    assert summary == {
        "name": KEY,
        "from_version": 1,
        "to_version": 2,
        "resumed": False,
        "datasets": 2,
    }
    for dataset in DATASETS:
        for column in ("link_email", "link_phone", "link_name_dob_postcode"):
            assert _versions(zone, dataset, column) == {"o2"}
    new_tokens = zone.operator._data.read(DATASETS[0], 1).column("link_email").to_pylist()
    assert not set(filter(None, new_tokens)) & set(filter(None, old_tokens))
    assert _overlap(zone) == before  # the same answer, released again
    # a provider tokenising afresh under the new key lands on the re-keyed tokens
    spec = parse_spec({**SPEC_DOC, "mode": "oprf", "zone": zone.operator.zone_id})
    fresh = prepare(
        tmp_path / "bank_raw.csv", spec, tmp_path / "fresh.csv", transport=server.evaluate
    )
    assert fresh.rows == 120
    import pyarrow.csv as pv

    assert pv.read_csv(tmp_path / "fresh.csv").column("link_email").to_pylist() == new_tokens
    # the owners see the event; it names datasets and versions, no key material
    events = [e for e in zone.partner.audit_events() if e["action"] == "key.rotated"]
    assert events and events[0]["subject"] == f"key:{KEY}"
    assert events[0]["details"]["datasets"] == 2
    started = [e for e in zone.bank.audit_events() if e["action"] == "key.rotation_started"]
    assert started[0]["details"]["datasets"] == DATASETS
    assert zone.auditor.verify_audit().ok
    zone.operator.destroy_key(KEY, 1)
    assert _overlap(zone) == before


def test_oprf_rotation_needs_the_datasets_and_refuses_bad_ones(
    make_zone: Callable[[str | None], Any], tmp_path: Path
) -> None:
    zone, _ = _oprf_zone(make_zone, tmp_path)
    with pytest.raises(InvalidInputError, match="name the datasets"):
        zone.operator.rotate_key(KEY)
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        zone.operator.rotate_key(KEY, datasets=["nope"])
    assert zone.operator._keys.versions(KEY) == [1]  # nothing rotated by a refused call
    inventory = {k["name"]: k for k in zone.operator.key_inventory()}
    assert inventory[KEY]["current"] == 1 and not inventory[KEY]["rotation_pending"]


def test_oprf_rekey_from_the_command_line(
    make_zone: Callable[[str | None], Any], tmp_path: Path
) -> None:
    zone, _ = _oprf_zone(make_zone, tmp_path)
    before = _overlap(zone)
    token = zone.operator.add_party("keyops", ["operator"])[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "collabzone",
            "--zone",
            str(zone.root),
            "--token",
            token,
            "keys",
            "rotate",
            KEY,
            "-d",
            DATASETS[0],
            "-d",
            DATASETS[1],
            "--spec-zone",
            zone.operator.zone_id,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert f"{KEY}: version 1 -> 2, 2 dataset(s) re-keyed" in said
    assert _versions(zone, DATASETS[1]) == {"o2"}
    assert _overlap(zone) == before
