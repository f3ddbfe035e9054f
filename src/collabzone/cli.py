"""The `collabzone` command line: every command is one call of the Python API.

The CLI acts as the party whose token is given (``--token`` or ``COLLABZONE_TOKEN``) on the
zone in ``--zone`` (or ``COLLABZONE_ZONE``, default ``./zone``). Errors print one line and
exit with the code the error catalogue gives (no traceback unless ``--debug``); a request
that ends refused or failed exits 7 or 9 (:mod:`collabzone.cli_support`; the whole scheme is
in docs/cli.md). Data goes to stdout and messages to stderr, so scripts can capture values.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from collabzone import zone as zone_module
from collabzone.cli_plugins import SUBCOMMANDS
from collabzone.cli_support import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    exit_code_for,
    id_table,
    ingest_progress,
    resolve_request_id,
    write_data,
)
from collabzone.errors import CollabzoneError, InvalidInputError, error_info
from collabzone.model import Request

app = typer.Typer(
    name="collabzone",
    help="A privacy-preserving data collaboration zone.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
party_app = typer.Typer(help="Parties of the zone.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets (ingest, list, remove).", no_args_is_help=True)
agreement_app = typer.Typer(help="Agreements owners sign on their datasets.", no_args_is_help=True)
request_app = typer.Typer(help="Requests: submit, list, show, result, risk.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(party_app, name="party")
app.add_typer(dataset_app, name="dataset")
app.add_typer(agreement_app, name="agreement")
app.add_typer(request_app, name="request")
app.add_typer(audit_app, name="audit")

console = Console()
err_console = Console(stderr=True)


class State:
    zone_dir: str = "zone"
    token: str | None = None
    db_url: str | None = None
    debug: bool = False


state = State()


@app.callback()
def _global(
    zone: Annotated[
        str,
        typer.Option("--zone", envvar="COLLABZONE_ZONE", help="Zone directory, or a server URL."),
    ] = "zone",
    token: Annotated[
        str | None, typer.Option("--token", envvar="COLLABZONE_TOKEN", help="Your party's token.")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="COLLABZONE_DB_URL", help="Metadata DB URL (PostgreSQL)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    state.zone_dir, state.token, state.db_url, state.debug = zone, token, db, debug


def _zone() -> zone_module.Zone:
    """The zone the command acts on: embedded (a directory) or remote (an http(s) URL)."""
    if state.zone_dir.startswith(("http://", "https://")):
        from collabzone.client import connect_remote

        return connect_remote(state.zone_dir, token=state.token)  # type: ignore[return-value]
    return zone_module.connect(state.zone_dir, state.token, db_url=state.db_url)


def _json_arg(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(
                f"{what} {text}: cannot read {text[1:]} ({type(exc).__name__})"
            ) from None
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid JSON: {exc.msg} at character {exc.pos}"
        ) from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a JSON object")
    return value


def _print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


def _show_request(request: Request, to: Console | None = None) -> None:
    """One request's line, reasons and approvals (on ``to``: stdout unless data goes there)."""
    out = to or console
    colour = {
        "released": "green",
        "refused": "red",
        "failed": "red",
        "awaiting_approval": "yellow",
    }.get(request.status.value, "white")
    out.print(
        f"[bold]{request.id}[/] [{colour}]{request.status.value}[/] {request.technique} "
        f"by {request.requester} on {', '.join(request.datasets) or '-'}"
    )
    for reason in request.reasons:
        out.print(f"  [red]reason:[/] {escape(reason)}")
    if request.owners_to_approve:
        decided = {d.owner: d for d in request.decisions}
        for owner in request.owners_to_approve:
            d = decided.get(owner)
            verdict = (
                "pending"
                if d is None
                else ("approved" if d.approved else "denied") + f": {d.reason}"
            )
            out.print(f"  approval by {owner}: {verdict}")


def render_table(payload: dict[str, Any], title: str | None = None) -> None:
    """Print a {"columns": [...], "rows": [...]} payload as a Rich table."""
    table = Table(title=title)
    for column in payload.get("columns", []):
        table.add_column(str(column))
    for row in payload.get("rows", []):
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@app.command()
def init(
    operator: Annotated[str, typer.Option(help="Name of the operator party.")] = "operator",
    key_provider: Annotated[
        str, typer.Option(help="local (keyring under the master key), pkcs11 or vault.")
    ] = "local",
    key_option: Annotated[
        list[str] | None,
        typer.Option(help="Provider option NAME=VALUE for zone.toml [keys] (repeatable)."),
    ] = None,
) -> None:
    """Create a zone; prints the operator's token (and a master key if none is set).

    The secrets go to stdout as ``export`` lines and everything else to stderr, so
    ``eval "$(collabzone init)"`` sets them in the shell (as the README's tour does)."""
    keys: dict[str, str] = {"provider": key_provider}
    for item in key_option or []:
        option, sep, value = item.partition("=")
        if not sep:
            raise InvalidInputError(f"--key-option {item!r} must be NAME=VALUE")
        keys[option] = value
    master = os.environ.get("COLLABZONE_MASTER_KEY")
    generated = None
    if key_provider == "local" and not master and not os.environ.get("COLLABZONE_MASTER_KEY_FILE"):
        generated = master = zone_module.new_zone_master_key()
    _, token = zone_module.init(
        state.zone_dir, operator=operator, db_url=state.db_url, master_key=master, keys=keys
    )
    err_console.print(f"zone created in {state.zone_dir}")
    if generated:
        err_console.print(
            "[yellow]master key (keep it outside the zone; it is shown only once):[/]"
        )
        console.print(f"export COLLABZONE_MASTER_KEY={generated}", soft_wrap=True, markup=False)
    err_console.print("operator token (shown only once):")
    console.print(f"export COLLABZONE_TOKEN={token}", soft_wrap=True, markup=False)


@party_app.command("add")
def party_add(
    name: str, role: Annotated[list[str], typer.Option("--role", "-r", help="Role (repeatable).")]
) -> None:
    """Register a party (operator only); prints its token once, alone on stdout (the rest on
    stderr), so ``BANK=$(collabzone party add bank -r analyst)`` keeps it."""
    party, token = _zone().add_party(name, role)
    err_console.print(
        f"party {party.name} ({', '.join(party.roles)}); its token (shown only once):"
    )
    console.print(token, soft_wrap=True, markup=False)


@party_app.command("list")
def party_list() -> None:
    """List parties and roles."""
    table = Table("party", "roles", "since", "state")
    for party in _zone().parties():
        state = "disabled" if party.disabled_at else "active"
        table.add_row(
            party.name, ", ".join(party.roles), party.created_at.date().isoformat(), state
        )
    console.print(table)


@party_app.command("disable")
def party_disable(
    name: str, reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")]
) -> None:
    """Disable a party (operator only): its secret and every token it holds stop working."""
    _zone().disable_party(name, reason)
    console.print(f"party {name} disabled; its sessions end within seconds")


@party_app.command("enable")
def party_enable(name: str) -> None:
    """Let a disabled party act again (operator only)."""
    _zone().enable_party(name)
    console.print(f"party {name} enabled")


@party_app.command("rotate-secret")
def party_rotate_secret(name: str) -> None:
    """Give a party a new secret (operator, or the party itself); prints it once."""
    _, secret = _zone().rotate_party_secret(name)
    console.print(f"party {name}: the old secret and its sessions no longer work; new secret:")
    console.print(secret, soft_wrap=True, markup=False)


@dataset_app.command("add")
def dataset_add(
    name: str,
    source: Path,
    spec: Annotated[
        Path | None, typer.Option(help="YAML/TOML spec declaring every column.")
    ] = None,
    column: Annotated[
        list[str] | None, typer.Option("--column", "-c", help="name:type:class (repeatable).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the dataset holds.")] = None,
    no_header: Annotated[
        bool,
        typer.Option(
            "--no-header", help="The file has no header line: its columns are the spec's, in order."
        ),
    ] = False,
) -> None:
    """Ingest a CSV or Parquet file (all or nothing) as one of your datasets."""
    from collabzone.ingest import load_spec_document

    if spec is None and not column:
        raise InvalidInputError("declare the columns with --spec FILE or --column name:type:class")
    if not source.is_file():
        raise InvalidInputError(f"{source}: no such file")
    spec_source: Any = spec
    if spec is not None and no_header:
        spec_source = {**load_spec_document(spec), "header": False}
    if spec is None:
        columns = []
        for item in column or []:
            parts = item.split(":")
            if len(parts) != 3:
                raise InvalidInputError(f"--column {item!r} must be name:type:class")
            columns.append({"name": parts[0], "type": parts[1], "class": parts[2]})
        spec_source = {"columns": columns, **({"header": False} if no_header else {})}
    zone = _zone()
    with ingest_progress(err_console, source.stat().st_size, source.name) as progress:
        dataset = zone.add_dataset(
            name, source, spec_source, description, progress=progress, notice=_notice
        )
    console.print(
        f"dataset {dataset.name} v{dataset.version}: {dataset.row_count} rows, {len(dataset.columns)} columns"
    )


@dataset_app.command("add-remote")
def dataset_add_remote(
    name: str,
    spec: Annotated[Path, typer.Option(help="YAML/TOML/JSON spec declaring every column.")],
    table: Annotated[
        str | None, typer.Option(help="The table: schema.table (PostgreSQL, Spark catalogue).")
    ] = None,
    postgres: Annotated[
        str | None,
        typer.Option(
            envvar="COLLABZONE_WAREHOUSE_URL",
            show_default=False,
            help="postgresql://role:password@host/db of a read-only role (better from the "
            "environment variable, out of the shell history); sealed, never shown back.",
        ),
    ] = None,
    spark: Annotated[
        str | None,
        typer.Option(
            envvar="COLLABZONE_SPARK_MASTER",
            show_default=False,
            help="Spark master: local[n], spark://host:7077 or sc://host:15002 (sealed).",
        ),
    ] = None,
    path: Annotated[str | None, typer.Option(help="A Parquet path Spark reads.")] = None,
    description: Annotated[str | None, typer.Option(help="What the dataset holds.")] = None,
) -> None:
    """Register a warehouse table as a dataset left where it lives (governed SQL runs there)."""
    if not spec.is_file():
        raise InvalidInputError(f"{spec}: no such file")
    dataset = _zone().add_remote_dataset(
        name, spec, postgres=postgres, table=table, spark=spark, path=path,
        description=description,
    )  # fmt: skip
    where = "a Spark source" if spark is not None and postgres is None else "a PostgreSQL table"
    console.print(
        f"dataset {dataset.name}: {where} of {dataset.row_count} rows, "
        f"{len(dataset.columns)} columns (left in the warehouse)"
    )


def _notice(text: str) -> None:
    """Something the zone skipped without refusing (blank lines): said on stderr."""
    err_console.print(f"[yellow]note:[/] {escape(text)}", highlight=False, soft_wrap=True)


@dataset_app.command("list")
def dataset_list() -> None:
    """Datasets you own or that are shared with you."""
    table = Table("dataset", "owner", "version", "columns")
    for d in _zone().datasets():
        table.add_row(
            d.name,
            d.owner,
            str(d.version),
            ", ".join(f"{c.name}({c.column_class.value})" for c in d.columns),
        )
    console.print(table)


@dataset_app.command("remove")
def dataset_remove(name: str) -> None:
    """Delete one of your datasets and its data."""
    _zone().remove_dataset(name)
    console.print(f"dataset {name} removed")


@agreement_app.command("add")
def agreement_add(
    dataset: str,
    grantee: Annotated[
        list[str], typer.Option("--grantee", "-g", help="Party or role:<role> (repeatable).")
    ],
    technique: Annotated[str, typer.Option(help="Technique allowed.")],
    purpose: Annotated[
        list[str], typer.Option("--purpose", "-p", help="Allowed purpose (repeatable; '*' any).")
    ],
    rules: Annotated[
        str | None, typer.Option(help="Rule parameters as JSON (or @file.json).")
    ] = None,
    manual: Annotated[
        bool, typer.Option("--manual", help="Requests wait for your approval.")
    ] = False,
    valid_until: Annotated[str | None, typer.Option(help="Expiry, ISO 8601 with timezone.")] = None,
) -> None:
    """Sign an agreement on one of your datasets."""
    until = None
    if valid_until:
        try:
            until = dt.datetime.fromisoformat(valid_until)
        except ValueError:
            raise InvalidInputError(
                "--valid-until must be ISO 8601, e.g. 2027-01-01T00:00:00+00:00"
            ) from None
    agreement = _zone().add_agreement(
        dataset,
        grantees=grantee,
        technique=technique,
        purposes=purpose,
        rules=_json_arg(rules, "--rules"),
        approval="manual" if manual else "auto",
        valid_until=until,
    )
    console.print(f"agreement {agreement.id} on {dataset}: {technique} for {', '.join(grantee)}")


@agreement_app.command("show")
def agreement_show(agreement_id: Annotated[str | None, typer.Argument()] = None) -> None:
    """Agreements governing data you touch (or one of them)."""
    zone = _zone()
    items = [zone.agreement(agreement_id)] if agreement_id else zone.agreements()
    _print_json([json.loads(a.model_dump_json()) for a in items])


@agreement_app.command("revoke")
def agreement_revoke(agreement_id: str, reason: Annotated[str, typer.Option(help="Why.")]) -> None:
    """Revoke one of your agreements now."""
    _zone().revoke_agreement(agreement_id, reason)
    console.print(f"agreement {agreement_id} revoked")


@request_app.command("submit")
def request_submit(
    technique: str,
    spec: Annotated[str | None, typer.Option(help="Request spec as JSON (or @file.json).")] = None,
    purpose: Annotated[str, typer.Option(help="Why you ask.")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Price it; record nothing.")] = False,
) -> None:
    """Submit a request (or price it with --dry-run)."""
    zone = _zone()
    result = zone.submit(technique, _json_arg(spec, "--spec"), purpose, dry_run=dry_run)
    if isinstance(result, dict):
        _print_json(result)
        return
    _show_request(result)
    if result.status.value == "released":
        _print_release(zone, result.id)
    if code := exit_code_for(result):
        raise typer.Exit(code)  # a refusal (7) or a failure (9) is not a success


def _print_release(zone: zone_module.Zone, request_id: str) -> None:
    release = zone.result(request_id)
    payload = dict(release.payload)
    if "columns" in payload and "rows" in payload:
        render_table(payload, title=f"result of {request_id}")
        payload = {k: v for k, v in payload.items() if k not in ("columns", "rows")}
    if payload:
        _print_json(payload)
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
        write_data("".join(f"{r.id}\n" for r in _zone().requests(status)))
        return
    table = id_table("request", "status", "technique", "requester", "datasets", "purpose")
    for r in _zone().requests(status):
        table.add_row(
            r.id, r.status.value, r.technique, r.requester, ", ".join(r.datasets), r.purpose
        )
    console.print(table)


@request_app.command("show")
def request_show(request_id: str) -> None:
    """One request, its decisions and reasons (any unique prefix of its id will do)."""
    zone = _zone()
    _show_request(zone.request(resolve_request_id(zone, request_id)))


@request_app.command("result")
def request_result(request_id: str) -> None:
    """A released result and its privacy receipt (any unique prefix of its id will do)."""
    zone = _zone()
    _print_release(zone, resolve_request_id(zone, request_id))


@request_app.command("risk")
def request_risk(
    request_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="The whole report as JSON.")] = False,
) -> None:
    """What a pending request would disclose if released now, with everything released
    before (for the owners of the data it touches, and auditors)."""
    zone = _zone()
    request_id = resolve_request_id(zone, request_id)
    report = zone.request_risk(request_id)
    if as_json:
        _print_json(report)
        return
    console.print(
        f"[bold]{escape(request_id)}[/] ({escape(str(report['technique']))} by "
        f"{escape(str(report['requester']))}): would be {escape(str(report['would_be']))}"
    )
    for line in report.get("summary", []):
        console.print(f"  - {escape(str(line))}")


@app.command()
def approve(request_id: str, reason: Annotated[str, typer.Option(help="Why.")]) -> None:
    """Approve a request touching your dataset (any unique prefix of its id will do); exits
    7 or 9 when the approved request then ends refused or failed."""
    zone = _zone()
    request = zone.approve(resolve_request_id(zone, request_id), reason)
    _show_request(request)
    if code := exit_code_for(request):
        raise typer.Exit(code)


@app.command()
def deny(request_id: str, reason: Annotated[str, typer.Option(help="Why.")]) -> None:
    """Deny a request touching your dataset (any unique prefix of its id will do)."""
    zone = _zone()
    _show_request(zone.deny(resolve_request_id(zone, request_id), reason))


@app.command()
def catalogue(mock_rows: Annotated[int, typer.Option(help="Mock rows per dataset.")] = 3) -> None:
    """What you may see of the datasets shared with you."""
    for entry in _zone().catalogue(mock_rows)["datasets"]:
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


@app.command()
def budget() -> None:
    """Privacy budget spent and remaining."""
    table = Table(
        "party", "dataset", "period", "epsilon spent", "epsilon left", "rho spent", "debits"
    )
    for b in _zone().budget():
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


@audit_app.command("verify")
def audit_verify(
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="A checkpoint you kept (audit checkpoint --out): prove no rollback or fork since.",
        ),
    ] = None,
) -> None:
    """Recompute the hash chain and the ledger; exit 8 at the first broken link."""
    from collabzone.audit_checkpoint import load

    kept = load(against) if against is not None else None
    result = _zone().verify_audit(against=kept)
    if result.ok:
        console.print(f"[green]{escape(str(result))}[/]", soft_wrap=True)
        return
    err_console.print(f"[red]{escape(str(result))}[/]", soft_wrap=True)
    raise typer.Exit(8)


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write it here (default: print the JSON).")
    ] = None,
) -> None:
    """Fetch the zone's signed checkpoint of the audit log's head: keep it outside the zone."""
    checkpoint = _zone().audit_checkpoint()
    if out is None:
        sys.stdout.write(checkpoint.to_json())
        return
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(checkpoint.to_json(), encoding="utf-8")
    tmp.replace(out)
    err_console.print(f"{escape(checkpoint.describe())} written to {out}", soft_wrap=True)


@audit_app.command("export")
def audit_export(out: Path) -> None:
    """Write the audit log as a verifiable export (JSON Lines; others' events redacted)."""
    count = _zone().export_audit(out)
    console.print(f"{count} events written to {out} (check it with audit verify-export)")


@audit_app.command("verify-export")
def audit_verify_export(
    file: Annotated[Path, typer.Argument(help="An export written by audit export.")],
    against: Annotated[
        Path | None,
        typer.Option("--against", help="A checkpoint you kept: prove the export continues it."),
    ] = None,
) -> None:
    """Verify an audit export offline (no zone needed); exit 8 if broken or truncated."""
    from collabzone.audit_checkpoint import load
    from collabzone.audit_export import verify_export

    kept = load(against) if against is not None else None
    result = verify_export(file, kept)
    if result.ok:
        console.print(f"[green]{escape(str(result))}[/]", soft_wrap=True)
        return
    err_console.print(f"[red]{escape(str(result))}[/]", soft_wrap=True)
    raise typer.Exit(8)


@app.command()
def demo(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to create the demo zone.")
    ] = None,
    rows: Annotated[int, typer.Option(help="Customers per party.")] = 2000,
) -> None:
    """Create a bank + retail partner zone and run every kind of request."""
    from collabzone.demo import run_demo

    run_demo(directory, rows=rows, console=console)


for _name, _target in SUBCOMMANDS:
    _module, _, _attr = _target.partition(":")
    app.add_typer(getattr(importlib.import_module(_module), _attr), name=_name)


def main() -> None:
    """Entry point: run the app, turning CollabzoneErrors into one line and an exit code."""
    try:
        # without standalone mode click *returns* a typer.Exit's code instead of raising it
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except CollabzoneError as exc:
        if state.debug:
            raise
        err_console.print(f"[red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        sys.exit(error_info(exc).exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if state.debug:
            raise
        err_console.print(
            f"[red]internal error:[/] {type(exc).__name__}: {exc} (rerun with --debug)"
        )
        sys.exit(EXIT_INTERNAL)
