"""Issue 17 over HTTP (real uvicorn): each party's REST result holds only its own part, and
the partner's REST views and console pages never show the bank's sealed code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pyarrow.csv as pacsv
import pytest

from collabzone.model import RequestStatus
from collabzone.techniques.lookalike._synthetic import PARTNER_COLUMNS, SEED_COLUMNS, generate
from collabzone.techniques.sealed import Limits, isolation_mode, make_manifest, upload
from tests.server.conftest import Handles, console_sign_in

MARKER = "PROPRIETARY_RULES_91c2"
CODE = (
    f"# {MARKER}\ndef f(inputs):\n    return [{{'token': r['link_email']}} for r in inputs['c']]\n"
)


@pytest.mark.skipif(isolation_mode() is None, reason="no network namespace here")
def test_parts_and_sealed_code_over_rest_and_console(served: Handles, tmp_path: Path) -> None:
    assert served.server is not None
    data = generate(900, seed=8)
    pacsv.write_csv(data.partner, tmp_path / "p.csv")
    pacsv.write_csv(data.seed, tmp_path / "s.csv")
    served.partner.add_dataset(
        "partner_customers", tmp_path / "p.csv", {"columns": PARTNER_COLUMNS}
    )
    served.bank.add_dataset("bank_seed", tmp_path / "s.csv", {"columns": SEED_COLUMNS})
    served.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="lookalike", purposes=["m"],
        rules={"min_audience": 20, "allowed_models": ["logistic_regression"]},
    )  # fmt: skip
    spec = {"seed": "bank_seed", "label": "bought", "features": "partner_customers",
            "audience_size": 25}  # fmt: skip
    released = served.bank.submit("lookalike", spec, "m")
    assert released.status == RequestStatus.RELEASED, released.reasons
    assert "audience" in served.partner.result(released.id).payload
    bank_view = served.bank.result(released.id).payload
    assert "audience" not in bank_view and "quality" in bank_view

    inputs = {"c": ("partner_customers", ("link_email",))}
    manifest = make_manifest(CODE, "f", inputs, {"token": "string"}, Limits())
    upload(served.bank, "bank_rules", CODE, manifest, tmp_path)
    served.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="sealed", purposes=["credit"],
        rules={"allowed_code_sha256": [manifest.code_sha256], "allowed_outputs": ["token"],
               "min_group_size": 10}, approval="manual",
    )  # fmt: skip
    pending = served.bank.submit("sealed", {"module": "bank_rules"}, "credit")
    plan = served.partner.request_plan(pending.id)
    assert plan["details"]["code_sha256"] == manifest.code_sha256
    encoded = base64.b64encode(CODE.encode()).decode()[:40]
    seen = [json.dumps(plan), served.partner.request(pending.id).model_dump_json()]
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        console_sign_in(browser, served.tokens["partner"])
        seen.append(browser.get(f"/console/requests/{pending.id}").text)
        seen.append(browser.get("/console").text)
    served.partner.approve(pending.id, "hash approved")
    seen.append(json.dumps(served.partner.result(pending.id).payload))
    seen.append(json.dumps(served.partner.audit_events(), default=str))
    for text in seen:
        assert MARKER not in text and encoded not in text
    assert served.bank.result(pending.id).payload["count"] == 900
