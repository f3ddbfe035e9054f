"""End to end through the real zone: two providers prepare locally, upload tokens, sign
overlap agreements; the bank asks for the overlap by region and gets thresholded counts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collabzone.keys import LocalKeyring
from collabzone.model import Request, RequestStatus
from collabzone.techniques.linking import LinkSpec, prepare

HEADER = "Email,Mobile,FullName,DOB,PostCode,Address,Region\n"


def letters(i: int) -> str:
    return "".join(chr(ord("a") + int(d)) for d in str(i))


def raw_file(path: Path, people: range, shout: bool) -> Path:
    regions = ["north", "south", "east"]
    lines = []
    for i in people:
        email = f"Person.{i}@Example.com"
        lines.append(
            f"{email.upper() if shout else email},07911 {100000 + i},Person {letters(i)},"
            f"1980-01-{1 + i % 28:02d},M1 1AE,{i} Street,{regions[i % 3]}"
        )
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


COLUMNS: list[dict[str, Any]] = [
    {"name": "Region", "type": "string", "class": "dimension", "domain": ["north", "south", "east"]}
]


def test_overlap_request_through_the_zone(
    make_zone: Callable[[str | None], Any], tmp_path: Path, spec: LinkSpec, keyring: LocalKeyring
) -> None:
    zone = make_zone(None)
    uploads = {}
    for party, people, shout in (
        ("bank", range(0, 200), False),
        ("partner", range(120, 300), True),
    ):
        report = prepare(
            raw_file(tmp_path / f"{party}_raw.csv", people, shout),
            spec,
            tmp_path / f"{party}_upload.csv",
            keys=keyring,
        )
        uploads[party] = (tmp_path / f"{party}_upload.csv", report.token_columns() + COLUMNS)
    zone.bank.add_dataset("bank_customers", uploads["bank"][0], {"columns": uploads["bank"][1]})
    zone.partner.add_dataset(
        "partner_customers", uploads["partner"][0], {"columns": uploads["partner"][1]}
    )
    for handle, dataset in ((zone.bank, "bank_customers"), (zone.partner, "partner_customers")):
        handle.add_agreement(
            dataset,
            grantees=["bank"],
            technique="overlap",
            purposes=["marketing"],
            rules={"min_group_size": 10, "allowed_dimensions": ["Region"]},
        )
    request = zone.bank.submit(
        "overlap",
        {"datasets": ["bank_customers", "partner_customers"], "by": "Region"},
        "marketing",
    )
    assert isinstance(request, Request)
    assert zone.bank.request(request.id).status == RequestStatus.RELEASED, request.reasons
    payload = zone.bank.result(request.id).payload
    assert payload["overlap"] == 80
    assert "by_match_key" not in payload  # the partner's side is protected
    shown = [v for v in payload["by_dimension"]["counts"].values() if v is not None]
    assert shown and all(v >= 10 for v in shown)
    assert 80 - sum(shown) == 0 or 80 - sum(shown) >= 10
    # a list release is refused: no agreement allows it
    refused = zone.bank.submit(
        "overlap",
        {"datasets": ["bank_customers", "partner_customers"], "release": "list", "list_to": "bank"},
        "marketing",
    )
    assert isinstance(refused, Request)
    status = zone.bank.request(refused.id)
    assert status.status == RequestStatus.REFUSED
    assert any("LIST_NOT_ALLOWED" in r for r in status.reasons)
    with pytest.raises(Exception, match="refused"):
        zone.bank.result(refused.id)
