"""`collabzone audit ...`: verify, checkpoint and export the tamper-evident audit log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from collabzone.cli_context import console, err_console, open_zone

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@app.command("verify")
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
    result = open_zone().verify_audit(against=kept)
    if result.ok:
        console.print(f"[green]{escape(str(result))}[/]", soft_wrap=True)
        return
    err_console.print(f"[red]{escape(str(result))}[/]", soft_wrap=True)
    raise typer.Exit(8)


@app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write it here (default: print the JSON).")
    ] = None,
) -> None:
    """Fetch the zone's signed checkpoint of the audit log's head: keep it outside the zone."""
    checkpoint = open_zone().audit_checkpoint()
    if out is None:
        sys.stdout.write(checkpoint.to_json())
        return
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(checkpoint.to_json(), encoding="utf-8")
    tmp.replace(out)
    err_console.print(f"{escape(checkpoint.describe())} written to {out}", soft_wrap=True)


@app.command("export")
def audit_export(out: Path) -> None:
    """Write the audit log as a verifiable export (JSON Lines; others' events redacted)."""
    count = open_zone().export_audit(out)
    console.print(f"{count} events written to {out} (check it with audit verify-export)")


@app.command("verify-export")
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
