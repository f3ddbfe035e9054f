"""Issue 17's acceptance over a real HTTP server: the partner approves the bank's sealed code
through the console by its declaration, and nothing the partner can read (REST result,
receipt, request, plan, datasets; console pending, request, history, audit; the audit
export) holds the code or any distinctive line of it. The bank, in turn, never reads the
partner's audience (console or REST), while each sees its own part on the request page."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import httpx
import pyarrow.csv as pacsv
import pytest

from collabzone.model import RequestStatus
from collabzone.techniques.lookalike._synthetic import PARTNER_COLUMNS, SEED_COLUMNS, generate
from collabzone.techniques.sealed import Limits, isolation_mode, make_manifest, upload
from collabzone.techniques.view import MAX_TABLE_ROWS
from tests.server.conftest import Handles, console_sign_in

CODE = '''"""Northbank credit pre-approval scorecard v7 (confidential)."""
INCOME_FLOOR_K = 57.25
AGE_CEILING = 61
def scorecard_weight(row):
    return row["income"] * 0.0137 - row["age"] * 0.0091 + 0.442
def preapprove(inputs):
    return [{"token": r["link_email"]} for r in inputs["customers"]
            if r["income"] > INCOME_FLOOR_K and r["age"] < AGE_CEILING
            and scorecard_weight(r) > 0.9]
'''
INPUTS = {"customers": ("partner_customers", ("link_email", "age", "income"))}
LIMITS = Limits(cpu_seconds=7, memory_mb=192, wall_seconds=25.0)


def _distinctive(code: str) -> list[str]:
    """Every line of the code that could identify it (not bare keywords or brackets), and
    its encodings as stored (base64 of the whole, in slices)."""
    lines = [line.strip() for line in code.splitlines() if len(line.strip()) >= 12]
    encoded = base64.b64encode(code.encode()).decode()
    slices = [encoded[i : i + 24] for i in range(0, len(encoded) - 24, 24)]
    return [code, *lines, *slices, "scorecard_weight", "INCOME_FLOOR_K", "57.25", "0.0137"]


def _section(html: str) -> str:
    found = re.search(r'<section id="result">(.*?)</section>', html, re.S)
    return found.group(1) if found else ""


def _console_pages(browser: httpx.Client, request_id: str) -> list[str]:
    return [
        browser.get(path).text
        for path in (
            "/console/",
            f"/console/requests/{request_id}",
            "/console/history",
            "/console/audit",
            "/console/budget",
        )
    ]


def _setup(served: Handles, tmp_path: Path) -> None:
    data = generate(900, seed=8)
    pacsv.write_csv(data.partner, tmp_path / "p.csv")
    pacsv.write_csv(data.seed, tmp_path / "s.csv")
    served.partner.add_dataset(
        "partner_customers", tmp_path / "p.csv", {"columns": PARTNER_COLUMNS}
    )
    served.bank.add_dataset("bank_seed", tmp_path / "s.csv", {"columns": SEED_COLUMNS})


@pytest.mark.skipif(isolation_mode() is None, reason="no network namespace here")
def test_partner_approves_sealed_code_in_the_console_without_ever_reading_it(
    served: Handles, tmp_path: Path
) -> None:
    assert served.server is not None
    _setup(served, tmp_path)
    manifest = make_manifest(CODE, "preapprove", INPUTS, {"token": "string"}, LIMITS)
    upload(served.bank, "bank_scorecard", CODE, manifest, tmp_path)
    served.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="sealed", purposes=["credit"],
        rules={"allowed_code_sha256": [manifest.code_sha256], "allowed_outputs": ["token"],
               "min_group_size": 5}, approval="manual",
    )  # fmt: skip
    pending = served.bank.submit("sealed", {"module": "bank_scorecard"}, "credit")
    assert pending.status is RequestStatus.AWAITING_APPROVAL, pending.reasons
    seen: list[str] = []
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        console_sign_in(browser, served.tokens["partner"])
        listing = browser.get("/console/").text
        assert pending.id in listing
        page = browser.get(f"/console/requests/{pending.id}").text
        # what the partner decides on: outputs, inputs, entry point, code hash, limits
        sentence = re.search(r'<p class="sentence" id="receives">(.*?)</p>', page, re.S)
        assert sentence is not None
        said = sentence.group(1)
        for fact in (manifest.code_sha256, "token: string", "preapprove",
                     "customers = partner_customers (link_email, age, income)",
                     "7 CPU s", "192 MB memory", "25 s wall", "no network"):  # fmt: skip
            assert fact in said, fact
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None, "the request page offers the decision form"
        decided = browser.post(
            f"/console/requests/{pending.id}/approve",
            data={"reason": "hash and limits approved", "csrf": csrf.group(1)},
        )
        assert decided.status_code == 303, decided.text[-500:]
        assert decided.headers["location"] == f"/console/requests/{pending.id}"
        assert served.partner.request(pending.id).status is RequestStatus.RELEASED
        pages = _console_pages(browser, pending.id)
        seen += [listing, page, *pages]
        shown = _section(pages[1])
        assert "Outputs delivered to you" in shown and manifest.code_sha256 in shown
        seen.append(browser.get("/console/audit", params={"actor": "bank"}).text)
    partner = served.partner
    seen += [
        json.dumps(partner.request_plan(pending.id)),
        partner.request(pending.id).model_dump_json(),
        json.dumps(partner.result(pending.id).payload),
        partner.receipt(pending.id).model_dump_json(),
        json.dumps([d.model_dump(mode="json") for d in partner.datasets()]),
        json.dumps([r.model_dump(mode="json") for r in partner.requests()]),
        json.dumps(partner.audit_events(), default=str),
        json.dumps(partner.audit_export(), default=str),
        json.dumps(partner.budget(), default=str),
    ]
    plan = partner.request_plan(pending.id)
    assert plan["details"]["code_sha256"] == manifest.code_sha256
    assert plan["details"]["limits"]["cpu_seconds"] == 7
    assert plan["details"]["inputs"]["customers"]["columns"] == ["link_email", "age", "income"]
    for text in seen:
        for secret in _distinctive(CODE):
            assert secret not in text, secret
    delivered = partner.result(pending.id).payload["rows"]["rows"]
    assert delivered and served.bank.result(pending.id).payload["count"] == len(delivered)


def test_the_bank_never_reads_the_partners_audience(served: Handles, tmp_path: Path) -> None:
    assert served.server is not None
    _setup(served, tmp_path)
    served.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="lookalike", purposes=["m"],
        rules={"min_audience": 20, "allowed_models": ["logistic_regression"]},
    )  # fmt: skip
    spec = {"seed": "bank_seed", "label": "bought", "features": "partner_customers",
            "audience_size": MAX_TABLE_ROWS + 10}  # fmt: skip
    released = served.bank.submit("lookalike", spec, "m")
    assert released.status is RequestStatus.RELEASED, released.reasons
    audience = [r[0] for r in served.partner.result(released.id).payload["audience"]["rows"]]
    assert len(audience) == MAX_TABLE_ROWS + 10
    bank = served.bank
    seen = [
        json.dumps(bank.result(released.id).payload),
        bank.receipt(released.id).model_dump_json(),
        bank.request(released.id).model_dump_json(),
        json.dumps(bank.request_plan(released.id)),
        json.dumps(bank.audit_events(), default=str),
        json.dumps(bank.audit_export(), default=str),
    ]
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        console_sign_in(browser, served.tokens["bank"])
        pages = _console_pages(browser, released.id)
        seen += pages
        mine = _section(pages[1])
        assert "Audience size" in mine and "AUC" in mine and "Lift" in mine
        assert "Your audience" not in mine
    for text in seen:
        assert not [t for t in audience if t in text]
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        console_sign_in(browser, served.tokens["partner"])
        theirs = _section(browser.get(f"/console/requests/{released.id}").text)
    assert "Your audience" in theirs and "10 more rows" in theirs
    assert sum(t in theirs for t in audience) == MAX_TABLE_ROWS  # cut to the page's limit
    assert "AUC" not in theirs  # the bank's quality is the bank's part
