"""The KU Leuven mediator flow through a real zone: merge -> enrich / derive -> de-identify,
with a reference table the owners approved (the example of docs/deid.md)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from collabzone.model import Request, RequestStatus
from tests.conftest import Parties

from .independent import check_release, frame_of

EXTRACT_SPEC = {
    "columns": [
        {"name": "company_no", "type": "string", "class": "join_key"},
        {"name": "born", "type": "string", "class": "quasi_identifier"},
        {"name": "sex", "type": "string", "class": "quasi_identifier"},
        {"name": "diagnosis", "type": "string", "class": "sensitive"},
    ]
}
REFERENCE_SPEC = {
    "columns": [
        {"name": "company_no", "type": "string", "class": "join_key"},
        {"name": "sector", "type": "string", "class": "dimension"},
        {"name": "size_band", "type": "string", "class": "dimension"},
    ]
}
SECTORS = ["retail", "health", "finance", "public"]
DIAGNOSES = ["J45", "E11", "I10", "M54", "F32"]


def _extract(path: Path, rows: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = ["company_no,born,sex,diagnosis"]
    for _ in range(rows):
        born = f"{rng.randint(1950, 2000)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        lines.append(
            f"BE{rng.randint(0, 39):04d},{born},{rng.choice('mf')},{rng.choice(DIAGNOSES)}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _reference(path: Path) -> Path:
    lines = ["company_no,sector,size_band"]
    for i in range(40):
        lines.append(f"BE{i:04d},{SECTORS[i % 4]},{['1-9', '10-49', '50-249', '250+'][i % 3]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


MEDIATE_SPEC: dict[str, Any] = {
    "datasets": ["partner_extract", "insurer_extract"],
    "prepare": {
        "enrich": [
            {"column": "company_no", "reference": "companies", "columns": ["sector", "size_band"]}
        ],
        "derive": [
            {"column": "age", "kind": "age", "source": "born", "at": "2025-01-01"},
            {"column": "age", "kind": "band", "source": "age", "width": 10},
        ],
    },
}


@pytest.fixture
def mediated(sqlite_zone: Parties, tmp_path: Path) -> Parties:
    zone = sqlite_zone
    zone.bank.add_dataset("companies", _reference(tmp_path / "companies.csv"), REFERENCE_SPEC)
    for handle, seed in ((zone.partner, 1), (zone.insurer, 2)):
        name = f"{handle.me.name}_extract"
        handle.add_dataset(name, _extract(tmp_path / f"{name}.csv", 400, seed), EXTRACT_SPEC)
        handle.add_agreement(
            name,
            grantees=["bank"],
            technique="mediate",
            purposes=["model training"],
            rules={"k": 5, "l": 2, "suppression_limit": 0.05, "references": ["companies"]},
        )
    return zone


def test_merge_enrich_derive_deidentify_through_the_zone(mediated: Parties) -> None:
    request = mediated.bank.submit("mediate", MEDIATE_SPEC, purpose="model training")
    assert isinstance(request, Request)
    assert request.status is RequestStatus.RELEASED, request.reasons
    payload = mediated.bank.result(request.id).payload
    assert set(payload["columns"]) == {"sex", "diagnosis", "sector", "size_band", "age"}
    report = payload["report"]
    assert report["rows_in"] == 800 and report["extracts"] == 2
    check_release(
        frame_of(payload["columns"], payload["rows"]),
        report,
        sensitive=["diagnosis"],
        keep=[],
        privacy={"k": 5, "l": 2},
    )
    # the key and the birth date never leave; the age is a band of 10 years at most
    assert not {"company_no", "born"} & set(payload["columns"])
    ages = {row[payload["columns"].index("age")] for row in payload["rows"]}
    assert all(a == "*" or a.count("-") == 1 for a in ages)


def test_unapproved_reference_and_unknown_keys_are_refused(
    mediated: Parties, tmp_path: Path
) -> None:
    spec = {**MEDIATE_SPEC, "this_key_does_not_exist": 1}
    request = mediated.bank.submit("mediate", spec, purpose="model training")
    assert isinstance(request, Request) and request.status is RequestStatus.REFUSED
    assert "this_key_does_not_exist" in request.reasons[0]
    assert "allowed:" in request.reasons[0]
    # the insurer signs a new agreement without the reference: its owner's no is named
    mediated.insurer.add_agreement(
        "insurer_extract",
        grantees=["bank"],
        technique="mediate",
        purposes=["model training"],
        rules={"k": 5, "l": 2, "suppression_limit": 0.05},
    )
    request = mediated.bank.submit("mediate", MEDIATE_SPEC, purpose="model training")
    assert isinstance(request, Request) and request.status is RequestStatus.REFUSED
    assert any("DEID_REFERENCE_NOT_APPROVED" in r and "insurer" in r for r in request.reasons), (
        request.reasons
    )


def test_a_third_partys_reference_needs_its_owners_agreement(
    mediated: Parties, tmp_path: Path
) -> None:
    mediated.partner.add_dataset("registry", _reference(tmp_path / "registry.csv"), REFERENCE_SPEC)
    for handle in (mediated.partner, mediated.insurer):
        handle.add_agreement(
            f"{handle.me.name}_extract",
            grantees=["bank"],
            technique="mediate",
            purposes=["model training"],
            rules={"k": 5, "references": ["registry"]},
        )
    spec = {
        **MEDIATE_SPEC,
        "prepare": {"enrich": [{**MEDIATE_SPEC["prepare"]["enrich"][0], "reference": "registry"}]},
    }
    request = mediated.bank.submit("mediate", spec, purpose="model training")
    assert isinstance(request, Request) and request.status is RequestStatus.REFUSED
    # refused; the reason names the reference but not its owner: a dataset the requester has
    # no agreement on answers like an unknown one (issue 12, item 7)
    assert any("registry" in r for r in request.reasons), request.reasons
    assert not any("partner" in r for r in request.reasons), request.reasons
