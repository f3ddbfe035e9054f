"""`collabzone request ...` and the top-level request verbs (approve, deny) with the
catalogue and budget views an analyst or owner reads before and after asking."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from collabzone.cli_context import (
    console,
    json_arg,
    open_zone,
    print_json,
    render_table,
    show_request,
)
from collabzone.cli_support import exit_code_for, id_table, resolve_request_id, write_data

if TYPE_CHECKING:
    from collabzone.zone import Zone

request_app = typer.Typer(help="Requests: submit, list, show, result, risk.", no_args_is_help=True)
TOP_LEVEL_COMMANDS = ("approve", "deny", "catalogue", "budget")


@request_app.command("submit")
def request_submit(
    technique: str,
    spec: Annotated[str | None, typer.Option(help="Request spec as JSON (or @file.json).")] = None,
    purpose: Annotated[str, typer.Option(help="Why you ask.")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Price it; record nothing.")] = False,
) -> None:
    """Submit a request (or price it with --dry-run)."""
    zone = open_zone()
    result = zone.submit(technique, json_arg(spec, "--spec"), purpose, dry_run=dry_run)
    if isinstance(result, dict):
        print_json(result)
        return
    show_request(result)
    if result.status.value == "released":
        _print_release(zone, result.id)
    if code := exit_code_for(result):
        raise typer.Exit(code)  # a refusal (7) or a failure (9) is not a success


def _print_release(zone: Zone, request_id: str) -> None:
    release = zone.result(request_id)
    payload = dict(release.payload)
    if "columns" in payload and "rows" in payload:
        render_table(payload, title=f"result of {request_id}")
        payload = {k: v for k, v in payload.items() if k not in ("columns", "rows")}
    if payload:
        print_json(payload)
    r = release.receipt
    console.print(
        f"[dim]receipt: {r.technique}; suppressed {'not disclosed' if r.rows_suppressed is None else r.rows_suppressed}; mechanism {r.mechanism or '-'}; "
        f"noise scale {r.noise_scale if r.noise_scale is not None else '-'}; "
        f"spent {json.dumps(r.budget_spent)}; remaining {json.dumps(r.budget_remaining)}; "
        f"audit event {r.audit_event_id}[/]"
    )


@request_app.command("list")
def request_list(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    ids: Annotated[
        bool, typer.Option("--ids", help="Only the ids, one per line (for scripts).")
    ] = False,
) -> None:
    """Requests you asked, must decide, or that touch your data."""
    if ids:
        write_data("".join(f"{r.id}\n" for r in open_zone().requests(status)))
        return
    table = id_table("request", "status", "technique", "requester", "datasets", "purpose")
    for r in open_zone().requests(status):
        table.add_row(
            r.id, r.status.value, r.technique, r.requester, ", ".join(r.datasets), r.purpose
        )
    console.print(table)


@request_app.command("show")
def request_show(request_id: str) -> None:
    """One request, its decisions and reasons (any unique prefix of its id will do)."""
    zone = open_zone()
    show_request(zone.request(resolve_request_id(zone, request_id)))


@request_app.command("result")
def request_result(request_id: str) -> None:
    """A released result and its privacy receipt (any unique prefix of its id will do)."""
    zone = open_zone()
    _print_release(zone, resolve_request_id(zone, request_id))


@request_app.command("risk")
def request_risk(
    request_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="The whole report as JSON.")] = False,
) -> None:
    """What a pending request would disclose if released now, with everything released
    before (for the owners of the data it touches, and auditors)."""
    zone = open_zone()
    request_id = resolve_request_id(zone, request_id)
    report = zone.request_risk(request_id)
    if as_json:
        print_json(report)
        return
    console.print(
        f"[bold]{escape(request_id)}[/] ({escape(str(report['technique']))} by "
        f"{escape(str(report['requester']))}): would be {escape(str(report['would_be']))}"
    )
    for line in report.get("summary", []):
        console.print(f"  - {escape(str(line))}")


def approve(request_id: str, reason: Annotated[str, typer.Option(help="Why.")]) -> None:
    """Approve a request touching your dataset (any unique prefix of its id will do); exits
    7 or 9 when the approved request then ends refused or failed."""
    zone = open_zone()
    request = zone.approve(resolve_request_id(zone, request_id), reason)
    show_request(request)
    if code := exit_code_for(request):
        raise typer.Exit(code)


def deny(request_id: str, reason: Annotated[str, typer.Option(help="Why.")]) -> None:
    """Deny a request touching your dataset (any unique prefix of its id will do)."""
    zone = open_zone()
    show_request(zone.deny(resolve_request_id(zone, request_id), reason))


def catalogue(mock_rows: Annotated[int, typer.Option(help="Mock rows per dataset.")] = 3) -> None:
    """What you may see of the datasets shared with you."""
    for entry in open_zone().catalogue(mock_rows)["datasets"]:
        console.print(
            f"[bold]{entry['dataset']}[/] (owner {entry['owner']}, {entry['rows_shown_as']} rows)"
        )
        for c in entry["columns"]:
            console.print(
                f"  {c['name']}: {c['type']} {c['class']}"
                + (f" domain {c['domain']}" if c["domain"] else "")
            )
        for tech in entry["techniques"]:
            console.print(
                f"  may ask: {tech['technique']} for {', '.join(tech['purposes'])} ({tech['approval']})"
            )
        render_table(entry["mock_sample"], title="mock sample (not real data)")


def budget() -> None:
    """Privacy budget spent and remaining."""
    table = Table(
        "party", "dataset", "period", "epsilon spent", "epsilon left", "rho spent", "debits"
    )
    for b in open_zone().budget():
        table.add_row(
            b["party"],
            b["dataset"],
            b["period"],
            f"{b['spent']['epsilon']:g}",
            "-" if b["remaining"]["epsilon"] is None else f"{b['remaining']['epsilon']:g}",
            f"{b['spent']['rho']:g}",
            str(b["debits"]),
        )
    console.print(table)
