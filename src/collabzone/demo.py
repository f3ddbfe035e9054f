"""`collabzone demo`: a bank and a retail partner collaborate through a zone.

Every step is a real API call on a real zone directory; the console shows what each party
sees. Later techniques add their steps here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from collabzone import demo_data
from collabzone.demo_lookalike import step_lookalike, step_sealed
from collabzone.demo_prepare import prepare_and_ingest
from collabzone.keys import MASTER_KEY_ENV, new_master_key
from collabzone.model import Request
from collabzone.zone import Zone, init


@dataclass
class DemoZone:
    """The demo's zone handles, one per party, and where its files are."""

    root: Path
    operator: Zone
    bank: Zone
    partner: Zone
    auditor: Zone
    files: demo_data.DemoFiles
    console: Console


Step = Callable[[DemoZone], None]


def _title(demo: DemoZone, text: str) -> None:
    demo.console.rule(f"[bold cyan]{text}")


def _show(demo: DemoZone, who: str, request: Request | dict[str, Any]) -> None:
    assert isinstance(request, Request)
    colour = (
        "green"
        if request.status.value == "released"
        else "yellow"
        if request.status.value.startswith("await")
        else "red"
    )
    demo.console.print(f"[bold]{who}[/] -> {request.technique} [{colour}]{request.status.value}[/]")
    for reason in request.reasons:
        demo.console.print(f"   refused because: {escape(reason)}")


def _table(demo: DemoZone, payload: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    for column in payload["columns"]:
        table.add_column(str(column))
    for row in payload["rows"][:12]:
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    demo.console.print(table)


def step_parties(demo: DemoZone) -> None:
    _title(demo, "1. The operator registers the parties")
    for party in demo.operator.parties():
        demo.console.print(f"  {party.name}: {', '.join(party.roles)}")


def step_catalogue(demo: DemoZone) -> None:
    _title(demo, "3. The bank discovers what the partner shares (catalogue, mock rows only)")
    for entry in demo.bank.catalogue(mock_rows=3)["datasets"]:
        if entry["owner"] == "bank":
            continue
        demo.console.print(
            f"  {entry['dataset']} by {entry['owner']}: {entry['rows_shown_as']} rows; "
            f"may ask: {', '.join(t['technique'] for t in entry['techniques'])}"
        )
        _table(
            demo,
            entry["mock_sample"],
            f"mock sample of {entry['dataset']} (generated from the schema)",
        )


def step_overlap(demo: DemoZone) -> None:
    _title(demo, "3b. How many customers do we share? Overlap on the email key, by region")
    # One match key, the one the SQL step joins on: answers on the same key nest, so the
    # zone's audit of every answer against the others leaves them releasable.
    spec = {
        "datasets": ["bank_customers", "partner_customers"],
        "match_keys": ["email"],
        "by": "region",
    }
    for who, handle in (("bank", demo.bank), ("partner", demo.partner)):
        request = handle.submit("overlap", spec, purpose="overlap measurement")
        _show(demo, who, request)
        assert isinstance(request, Request)
        payload = dict(handle.result(request.id).payload)
        by_key = {
            k: ("suppressed" if v is None else v)
            for k, v in payload.get("by_match_key", {}).items()
        }
        by_region = payload.get("by_dimension", {}).get("counts", {})
        demo.console.print(
            f"  {who} sees: {payload.get('overlap')} shared customers; "
            f"linked by match key {by_key}; by region {by_region}"
        )
    demo.console.print(f"  (generated overlap: {demo.files.overlap} people)")


JOIN = "FROM bank_customers b JOIN partner_customers p ON b.link_email = p.link_email"
DIFFERENCING_BASE = "customers by region, age over 40"


def step_sql(demo: DemoZone) -> None:
    _title(demo, "3c. Governed SQL over the joined data: thresholds, query monitoring, DP")
    # The zone audits every answer against all earlier ones (the overlap's region counts
    # included): dimensions that nest inside regions stay releasable, a crossing that leaves
    # a few people on their own is suppressed, and one birthday of difference is refused.
    queries: list[tuple[str, dict[str, Any]]] = [
        (
            "conversion by region",
            {
                "sql": f"SELECT b.region, COUNT(*) AS customers, "
                f"AVG(b.converted) AS conversion {JOIN} GROUP BY b.region"
            },
        ),
        (
            "a breakdown too fine for the agreement (small cells suppressed)",
            {
                "sql": f"SELECT p.loyalty_tier, b.region, COUNT(*) AS customers {JOIN} "
                f"WHERE b.segment = 'private' GROUP BY p.loyalty_tier, b.region"
            },
        ),
        (
            DIFFERENCING_BASE,
            {
                "sql": f"SELECT b.region, COUNT(*) AS customers {JOIN} "
                f"WHERE b.age > 40 GROUP BY b.region"
            },
        ),
        (
            "the same with age 40 or over (differencing one birthday)",
            {
                "sql": f"SELECT b.region, COUNT(*) AS customers {JOIN} "
                f"WHERE b.age >= 40 GROUP BY b.region"
            },
        ),
        (
            "DP conversions by tier (epsilon 1.0)",
            {
                "sql": f"SELECT p.loyalty_tier, COUNT(*) AS customers, "
                f"SUM(b.converted) AS converted {JOIN} GROUP BY p.loyalty_tier",
                "epsilon": 1.0,
            },
        ),
    ]
    shown: dict[str, set[Any]] = {}
    for label, spec in queries:
        request = demo.bank.submit("sql", spec, purpose="campaign analysis")
        demo.console.print(f"  [bold]{label}[/]")
        _show(demo, "bank", request)
        assert isinstance(request, Request)
        if request.status.value == "released":
            release = demo.bank.result(request.id)
            payload = dict(release.payload)
            shown[label] = {row[0] for row in payload.get("rows", [])}
            if payload.get("rows"):
                _table(demo, payload, label)
            if "differencing" in label:
                earlier = shown.get(DIFFERENCING_BASE, set())
                left_out = sorted(earlier - shown[label])
                demo.console.print(
                    f"   left out (each would differ from the earlier answer by the few "
                    f"customers aged exactly 40): {', '.join(map(str, left_out)) or 'none'}"
                )
            receipt = release.receipt
            demo.console.print(
                f"   suppressed rows: {'not disclosed' if receipt.rows_suppressed is None else receipt.rows_suppressed}; mechanism: {receipt.mechanism or '-'}; "
                f"spent: {receipt.budget_spent or '-'}"
            )
    price = demo.bank.price(
        "sql",
        {
            "sql": f"SELECT p.loyalty_tier, COUNT(*) AS n {JOIN} GROUP BY p.loyalty_tier",
            "epsilon": 1.5,
        },
        "campaign analysis",
    )
    demo.console.print(
        f"  dry run of another DP query at epsilon 1.5: {escape('; '.join(price['would_be_refused']) or 'would run')}"
    )


def step_dp_count(demo: DemoZone) -> None:
    _title(demo, "4. The bank asks for DP counts of partner customers by region")
    request = demo.bank.submit(
        "dp_count",
        {"dataset": "partner_customers", "by": "region", "epsilon": 0.5},
        purpose="campaign sizing",
    )
    _show(demo, "bank", request)
    assert isinstance(request, Request)
    release = demo.bank.result(request.id)
    _table(
        demo, dict(release.payload), "partner customers by region (discrete Laplace, epsilon 0.5)"
    )
    receipt = release.receipt
    demo.console.print(
        f"  receipt: {receipt.mechanism}, scale {receipt.noise_scale}, spent "
        f"{receipt.budget_spent['partner_customers']['epsilon']}, remaining "
        f"{receipt.budget_remaining['partner_customers']['epsilon']}, audit event {receipt.audit_event_id}"
    )
    again = demo.bank.submit(
        "dp_count", {"dataset": "partner_customers", "epsilon": 0.8}, purpose="campaign sizing"
    )
    left = receipt.budget_remaining["partner_customers"]["epsilon"]
    demo.console.print(
        f"  asking again with epsilon 0.8 (the bank has {left:g} left on partner_customers, "
        "shared by every technique):"
    )
    _show(demo, "bank", again)


def step_manual_approval(demo: DemoZone) -> None:
    _title(demo, "5. A request the partner must approve by hand, and one it denies")
    first = demo.bank.submit(
        "dp_count",
        {"dataset": "partner_customers", "by": "loyalty_tier", "rho": 0.05},
        purpose="loyalty analysis",
    )
    _show(demo, "bank", first)
    assert isinstance(first, Request)
    demo.console.print(
        f"  partner sees pending: {[r.id for r in demo.partner.requests('awaiting_approval')]}"
    )
    approved = demo.partner.approve(first.id, reason="aggregate only, agreed in the contract")
    _show(demo, "partner approves", approved)
    _table(
        demo,
        dict(demo.bank.result(first.id).payload),
        "partner customers by loyalty tier (discrete Gaussian, zCDP)",
    )
    second = demo.bank.submit(
        "dp_count",
        {"dataset": "partner_customers", "by": "loyalty_tier", "rho": 0.05},
        purpose="loyalty analysis",
    )
    assert isinstance(second, Request)
    denied = demo.partner.deny(second.id, reason="one loyalty breakdown per quarter")
    _show(demo, "partner denies", denied)


def step_refusals(demo: DemoZone) -> None:
    _title(demo, "6. Requests outside the agreements are refused, naming the rule")
    _show(
        demo,
        "bank (wrong purpose)",
        demo.bank.submit(
            "dp_count", {"dataset": "partner_customers", "epsilon": 0.1}, purpose="resale"
        ),
    )
    _show(
        demo,
        "partner (no agreement on the bank's data)",
        demo.partner.submit(
            "dp_count", {"dataset": "bank_customers", "epsilon": 0.1}, purpose="campaign sizing"
        ),
    )


EXTRACT_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "age",
        "type": "integer",
        "class": "quasi_identifier",
        "domain": {"min": 18, "max": 100},
    },
    {"name": "region", "type": "string", "class": "quasi_identifier", "domain": demo_data.REGIONS},
    {"name": "spend_band", "type": "string", "class": "sensitive", "domain": demo_data.SPEND_BANDS},
]


def step_mediator(demo: DemoZone) -> None:
    _title(
        demo, "7. Architecture 1: extracts mixed by a mediator, released 10-anonymous and 3-diverse"
    )
    analytics = demo.operator.as_party(demo.operator.add_party("analytics", ["analyst"])[1])
    rules = {
        "k": 10,
        "l": 3,
        "suppression_limit": 0.05,
        "quasi_identifiers": ["age", "region"],
        "sensitive": ["spend_band"],
        "hierarchies": {"age": {"intervals": [5, 10, 20, 40], "origin": 0}},
    }
    for zone, raw in ((demo.partner, demo.files.partner_raw), (demo.bank, demo.files.bank_raw)):
        name = f"{zone.me.name}_extract"
        zone.add_dataset(
            name,
            demo_data.write_extract(raw, raw.with_name(f"{name}.csv")),
            {"columns": EXTRACT_COLUMNS},
        )
        zone.add_agreement(
            name,
            grantees=["analytics"],
            technique="mediate",
            purposes=["model training"],
            rules=rules,
        )
    request = analytics.submit(
        "mediate",
        {
            "datasets": ["partner_extract", "bank_extract"],
            "quasi_identifiers": ["age", "region"],
            "sensitive": ["spend_band"],
        },
        purpose="model training",
    )
    _show(demo, "analytics (the ML party)", request)
    assert isinstance(request, Request)
    release = analytics.result(request.id)
    payload = dict(release.payload)
    report = payload.get("report", {})
    demo.console.print(
        f"  released {len(payload['rows'])} rows with columns {payload['columns']} "
        f"(no provider column); transformation {report.get('transformation')}, "
        f"smallest class {report.get('min_class_size')}, suppressed {report.get('suppressed_rows')}"
    )
    classes: dict[tuple[str, str], list[str]] = {}
    for age, region, band in payload["rows"]:
        classes.setdefault((str(age), str(region)), []).append(str(band))
    summary = {
        "columns": ["age", "region", "rows", "spend bands (sensitive)"],
        "rows": [
            [age, region, len(bands), ", ".join(sorted(set(bands)))]
            for (age, region), bands in sorted(classes.items(), key=lambda c: -len(c[1]))
        ],
    }
    _table(demo, summary, f"the {len(classes)} equivalence classes (largest first)")


def step_validator(demo: DemoZone) -> None:
    _title(demo, "8. Architecture 2: the bank validates its model on the partner's private labels")
    from collabzone.techniques.validator import demo_round

    outcome = demo_round(demo.partner, demo.bank, demo.root)
    overall = outcome["feedback"].get("overall", {})
    shown = {
        k: overall[k] for k in ("accuracy", "precision", "recall", "f1", "roc_auc") if k in overall
    }
    demo.console.print(f"  feedback ({outcome['status']}): {shown}")
    demo.console.print(f"  95% intervals: {overall.get('ci95', {})}")
    demo.console.print(
        f"  the same submission plus one record -> {outcome['attack_status']}: "
        f"{escape('; '.join(outcome['attack_reasons']))}"
    )


def step_federated(demo: DemoZone) -> None:
    _title(demo, "Federated learning: a model trained at three owners' nodes, data never moves")
    from collabzone.techniques.federated import demo_job

    out = demo_job(demo.operator, {"bank": demo.bank, "partner": demo.partner}, demo.root)
    request, payload = out["request"], out["payload"]
    _show(demo, "lab (analyst)", request)
    demo.console.print(
        f"  {', '.join(out['owners'])} approved at their nodes; "
        f"{len(payload.get('rounds', []))} rounds, clients {payload.get('clients')}, "
        f"client-level epsilon {payload.get('epsilon', 0):.3g}"
    )
    curve = ", ".join(f"{m['accuracy']:.3f}" for m in payload.get("metrics", []))
    demo.console.print(f"  accuracy per round on the lab's own evaluation table: {curve}")
    demo.console.print(f"  model sealed in the zone as {payload.get('model_dataset')}")


def step_audit(demo: DemoZone) -> None:
    _title(demo, "Audit: the auditor verifies the hash chain against the bank's checkpoint")
    checkpoint = demo.bank.audit_checkpoint()  # owners keep these outside the zone
    demo.console.print(f"  the bank keeps a signed {escape(checkpoint.describe())}")
    demo.console.print(f"  {escape(str(demo.auditor.verify_audit(against=checkpoint)))}")
    events = demo.auditor.audit_events()
    demo.console.print(
        f"  {len(events)} events; last: {events[-1]['action']} on {events[-1]['subject']}"
    )
    demo.console.print(f"  zone directory: {demo.root}")


STEPS: list[Step] = [
    step_catalogue,
    step_overlap,
    step_sql,
    step_dp_count,
    step_manual_approval,
    step_refusals,
    step_mediator,
    step_validator,
    step_lookalike,
    step_sealed,
    step_federated,
    step_audit,
]


def _setup(root: Path, rows: int, console: Console) -> DemoZone:
    if not os.environ.get(MASTER_KEY_ENV):
        os.environ[MASTER_KEY_ENV] = new_master_key()
    operator, _ = init(root / "zone")
    bank = operator.as_party(operator.add_party("bank", ["provider", "analyst"])[1])
    partner = operator.as_party(operator.add_party("partner", ["provider", "analyst"])[1])
    auditor = operator.as_party(operator.add_party("auditor", ["auditor"])[1])
    files = demo_data.generate(root / "premises", rows=rows)
    demo = DemoZone(root, operator, bank, partner, auditor, files, console)
    step_parties(demo)
    _title(demo, "2. Each party prepares its file at its premises and uploads tokens only")
    prepare_and_ingest(demo.bank, demo.partner, demo.files, demo.console)
    overlap_rules = {"min_group_size": 10, "allowed_dimensions": ["region"]}
    partner.add_agreement(
        "partner_customers",
        grantees=["bank"],
        technique="overlap",
        purposes=["overlap measurement"],
        rules=overlap_rules,
    )
    bank.add_agreement(
        "bank_customers",
        grantees=["partner"],
        technique="overlap",
        purposes=["overlap measurement"],
        rules=overlap_rules,
    )
    partner.add_agreement(
        "partner_customers",
        grantees=["bank"],
        technique="sql",
        purposes=["campaign analysis"],
        rules={
            "analysis": ["aggregation", "dp"],
            "min_group_size": 20,
            "max_rows_per_entity": 1,
            "max_groups_per_entity": 1,
            "epsilon_budget": 2.0,
        },
    )
    partner.add_agreement(
        "partner_customers",
        grantees=["bank"],
        technique="dp_count",
        purposes=["campaign sizing"],
        rules={"epsilon_budget": 2.0, "max_epsilon_per_request": 1.0},
    )
    partner.add_agreement(
        "partner_customers",
        grantees=["bank"],
        technique="dp_count",
        purposes=["loyalty analysis"],
        approval="manual",
        rules={"rho_budget": 0.5, "budget_period": "month"},
    )
    return demo


def run_demo(
    directory: Path | None = None, *, rows: int = 2000, console: Console | None = None
) -> DemoZone:
    """Run the whole demo in ``directory`` (a new temporary directory by default)."""
    console = console or Console()
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="collabzone-demo-"))
    if (root / "zone").exists():
        from collabzone.errors import ConflictError

        raise ConflictError(f"{root / 'zone'} already exists: give an empty --dir")
    console.print(
        Panel.fit(
            "collabzone demo: a bank and a retail partner, no raw PII exchanged", style="bold"
        )
    )
    demo = _setup(root, rows, console)
    for step in STEPS:
        step(demo)
    return demo
