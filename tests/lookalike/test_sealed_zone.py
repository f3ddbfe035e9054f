"""Sealed code end to end: the bank uploads credit pre-approval rules, the partner approves
them by hash and declaration without reading them, the partner receives its customers who
qualify and the bank only a count; the partner's views never expose the code."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest

from collabzone.errors import InvalidInputError
from collabzone.model import Approval, RequestStatus
from collabzone.techniques.lookalike._synthetic import PARTNER_COLUMNS, generate
from collabzone.techniques.sealed import Limits, isolation_mode, make_manifest, upload

pytestmark = pytest.mark.skipif(isolation_mode() is None, reason="no network namespace here")

MARKER = "SECRET_SCORECARD_7f3a"
CODE = f"""
# {MARKER}: the bank's proprietary pre-approval rules
def preapprove(inputs):
    return [{{"token": r["link_email"]}} for r in inputs["customers"]
            if r["income"] > 55 and r["age"] < 60]
"""
INPUTS = {"customers": ("partner_customers", ("link_email", "age", "income"))}


def _zone(make_zone: Callable[[str | None], Any], tmp_path: Path, code: str = CODE) -> Any:
    zone = make_zone(None)
    data = generate(600, seed=5)
    pacsv.write_csv(data.partner, tmp_path / "partner.csv")
    zone.partner.add_dataset(
        "partner_customers", tmp_path / "partner.csv", {"columns": PARTNER_COLUMNS}
    )
    manifest = make_manifest(code, "preapprove", INPUTS, {"token": "string"}, Limits(cpu_seconds=5))
    upload(zone.bank, "bank_preapproval", code, manifest, tmp_path)
    zone.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="sealed", purposes=["credit"],
        rules={"allowed_code_sha256": [manifest.code_sha256], "allowed_outputs": ["token"],
               "max_memory_mb": 256, "min_group_size": 10},
        approval=Approval.MANUAL,
    )  # fmt: skip
    return zone


def test_partner_approves_by_hash_and_receives_the_qualifying_list(
    make_zone: Callable[[str | None], Any], tmp_path: Path
) -> None:
    zone = _zone(make_zone, tmp_path)
    request = zone.bank.submit("sealed", {"module": "bank_preapproval"}, "credit")
    seen = zone.partner.request(request.id)
    assert seen.status == RequestStatus.AWAITING_APPROVAL
    zone.partner.approve(request.id, "hash and outputs checked")
    assert zone.bank.request(request.id).status == RequestStatus.RELEASED
    partner_rows = zone.partner.result(request.id).payload["rows"]["rows"]
    bank_view = zone.bank.result(request.id).payload
    assert "rows" not in bank_view and bank_view["count"] == len(partner_rows) > 10
    # the partner never sees the code: not in the request, catalogue, audit or result
    encoded = base64.b64encode(CODE.encode()).decode()[:40]
    plan = zone.partner.request_plan(request.id)["details"]
    assert plan["code_sha256"] == hashlib.sha256(CODE.encode()).hexdigest()  # what it approves
    for text in (
        seen.model_dump_json(),
        json.dumps(plan),
        json.dumps(zone.partner.catalogue(), default=str),
        json.dumps(zone.partner.audit_events(), default=str),
        json.dumps(zone.partner.result(request.id).payload),
    ):
        assert MARKER not in text and encoded not in text


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("import socket\n    socket.socket().connect(('10.0.0.1', 80))", "network"),
        ("open('/etc/passwd').read()", "file access"),
        ("x = bytearray(2_000_000_000)", "memory"),
        ("open('/tmp/cz-sealed-leak.txt', 'w').write('x')", "file access"),
        ("import os\n    os.system('id')", "process"),
    ],
)
def test_hostile_sealed_code_is_stopped_and_reported(
    make_zone: Callable[[str | None], Any], tmp_path: Path, body: str, kind: str
) -> None:
    code = f"def preapprove(inputs):\n    {body}\n    return []\n"
    zone = _zone(make_zone, tmp_path, code)
    request = zone.bank.submit("sealed", {"module": "bank_preapproval"}, "credit")
    zone.partner.approve(request.id, "ok")
    done = zone.bank.request(request.id)
    assert done.status == RequestStatus.FAILED
    assert any(f"stopped: {kind}" in r for r in done.reasons), done.reasons


def test_unapproved_code_is_refused(make_zone: Callable[[str | None], Any], tmp_path: Path) -> None:
    zone = _zone(make_zone, tmp_path)
    changed = CODE.replace("55", "20")  # same name, different rules: a different hash
    upload(
        zone.bank,
        "bank_preapproval",
        changed,
        make_manifest(changed, "preapprove", INPUTS, {"token": "string"}, Limits()),
        tmp_path,
    )
    request = zone.bank.submit("sealed", {"module": "bank_preapproval"}, "credit")
    assert request.status == RequestStatus.REFUSED
    assert any("not approved" in r for r in request.reasons)


def test_sealed_module_cannot_be_shared_by_an_agreement(
    make_zone: Callable[[str | None], Any], tmp_path: Path
) -> None:
    from collabzone.sandbox import MANIFEST_KIND
    from collabzone.zone_agreements import SEALED_MANIFEST_KIND

    assert SEALED_MANIFEST_KIND == MANIFEST_KIND
    zone = _zone(make_zone, tmp_path)
    with pytest.raises(InvalidInputError, match="holds sealed code"):
        zone.bank.add_agreement(
            "bank_preapproval", grantees=["partner"], technique="sql", purposes=["x"],
            rules={"analysis": ["list"]},
        )  # fmt: skip
