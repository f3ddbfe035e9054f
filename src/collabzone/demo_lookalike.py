"""Demo steps for issue 17 (for the lead to wire into :mod:`collabzone.demo`'s step list).

* :func:`step_lookalike`: the bank's converted customers are the seed; a model trained on
  the overlap scores the partner's other customers; the partner receives its audience, the
  bank only its size and quality.
* :func:`step_sealed`: the bank's sealed credit pre-approval rules run on the partner's
  customers; the partner approves by hash without reading them, receives the customers
  who qualify; the bank only a count.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from collabzone.model import Approval, Request

if TYPE_CHECKING:
    from collabzone.demo import DemoZone

PREAPPROVAL_CODE = '''
def preapprove(inputs):
    """The bank's pre-approval rules (sealed: the partner never reads this)."""
    qualified = []
    for row in inputs["customers"]:
        spend, visits = row["annual_spend"] or 0, row["store_visits"] or 0
        if spend > 1500 and visits >= 4:
            qualified.append({"token": row["link_email"]})
    return qualified
'''


def step_lookalike(demo: DemoZone) -> None:
    """Seed audience -> model -> audience delivered to the partner only."""
    demo.console.rule("[bold cyan]Look-alike audience: bank seed, partner customers")
    demo.partner.add_agreement(
        "partner_customers",
        grantees=["bank"],
        technique="lookalike",
        purposes=["look-alike marketing"],
        rules={
            "min_audience": 50,
            "allowed_models": ["logistic_regression", "gradient_boosting"],
            "delivery_rate": 0.25,
            "max_label_epsilon": 2.0,
        },
    )
    spec = {
        "seed": "bank_customers",
        "label": "converted",
        "features": "partner_customers",
        "model": "gradient_boosting",
        "audience_size": 50,
        "label_epsilon": 1.0,
    }
    request = demo.bank.submit("lookalike", spec, "look-alike marketing")
    assert isinstance(request, Request)
    _report(demo, "bank", request)
    if request.status.value != "released":
        return
    bank_view = demo.bank.result(request.id).payload
    partner_view = demo.partner.result(request.id).payload
    demo.console.print(
        f"  bank sees: audience size {bank_view['audience_size']}, quality "
        f"{bank_view['quality']} (no tokens)"
    )
    rows = partner_view["audience"]["rows"]
    demo.console.print(
        f"  partner sees: {len(rows)} of its own customer tokens to contact, e.g. {rows[0][0]}"
    )


def step_sealed(demo: DemoZone) -> None:
    """The bank's sealed pre-approval code on the partner's customers."""
    from collabzone.techniques.sealed import Limits, isolation_mode, make_manifest, upload

    demo.console.rule("[bold cyan]Sealed code: the bank's pre-approval rules, unseen")
    if isolation_mode() is None:
        demo.console.print("  this platform has no network namespace: sealed jobs are refused")
        return
    inputs = {"customers": ("partner_customers", ("link_email", "annual_spend", "store_visits"))}
    manifest = make_manifest(
        PREAPPROVAL_CODE, "preapprove", inputs, {"token": "string"}, Limits(cpu_seconds=10)
    )
    with tempfile.TemporaryDirectory() as tmp:
        upload(demo.bank, "bank_preapproval", PREAPPROVAL_CODE, manifest, Path(tmp))
    demo.console.print(f"  bank uploads sealed code, sha256 {manifest.code_sha256[:16]}...")
    demo.partner.add_agreement(
        "partner_customers",
        grantees=["bank"],
        technique="sealed",
        purposes=["credit pre-approval"],
        rules={
            "allowed_code_sha256": [manifest.code_sha256],
            "allowed_outputs": ["token"],
            "max_memory_mb": 512,
            "min_group_size": 10,
        },
        approval=Approval.MANUAL,
    )
    request = demo.bank.submit("sealed", {"module": "bank_preapproval"}, "credit pre-approval")
    assert isinstance(request, Request)
    details = demo.partner.request_plan(request.id)["details"]
    demo.console.print(
        f"  partner reviews hash {str(details.get('code_sha256', ''))[:16]}..., inputs "
        f"{details.get('inputs')}, outputs {details.get('outputs')}, limits "
        f"{details.get('limits')} (not the code) and approves"
    )
    demo.partner.approve(request.id, "approved hash, declared inputs and outputs")
    done = demo.bank.request(request.id)
    _report(demo, "bank", done)
    if done.status.value == "released":
        count = demo.bank.result(request.id).payload.get("count")
        rows = demo.partner.result(request.id).payload["rows"]["rows"]
        demo.console.print(f"  bank sees: {count} customers qualify (a count only)")
        demo.console.print(f"  partner sees: the {len(rows)} tokens of its qualifying customers")


def _report(demo: DemoZone, who: str, request: Request) -> None:
    demo.console.print(f"[bold]{who}[/] -> {request.technique} {request.status.value}")
    for reason in request.reasons:
        demo.console.print(f"   refused because: {reason}")
