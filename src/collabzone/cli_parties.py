"""`collabzone party ...`: the parties of a zone (operator commands, and a party's own secret)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from collabzone.cli_context import console, err_console, open_zone

app = typer.Typer(help="Parties of the zone.", no_args_is_help=True)


@app.command("add")
def party_add(
    name: str, role: Annotated[list[str], typer.Option("--role", "-r", help="Role (repeatable).")]
) -> None:
    """Register a party (operator only); prints its token once, alone on stdout (the rest on
    stderr), so ``BANK=$(collabzone party add bank -r analyst)`` keeps it."""
    party, token = open_zone().add_party(name, role)
    err_console.print(
        f"party {party.name} ({', '.join(party.roles)}); its token (shown only once):"
    )
    console.print(token, soft_wrap=True, markup=False)


@app.command("list")
def party_list() -> None:
    """List parties and roles."""
    table = Table("party", "roles", "since", "state")
    for party in open_zone().parties():
        state = "disabled" if party.disabled_at else "active"
        table.add_row(
            party.name, ", ".join(party.roles), party.created_at.date().isoformat(), state
        )
    console.print(table)


@app.command("disable")
def party_disable(
    name: str, reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")]
) -> None:
    """Disable a party (operator only): its secret and every token it holds stop working."""
    open_zone().disable_party(name, reason)
    console.print(f"party {name} disabled; its sessions end within seconds")


@app.command("enable")
def party_enable(name: str) -> None:
    """Let a disabled party act again (operator only)."""
    open_zone().enable_party(name)
    console.print(f"party {name} enabled")


@app.command("rotate-secret")
def party_rotate_secret(name: str) -> None:
    """Give a party a new secret (operator, or the party itself); prints it once."""
    _, secret = open_zone().rotate_party_secret(name)
    console.print(f"party {name}: the old secret and its sessions no longer work; new secret:")
    console.print(secret, soft_wrap=True, markup=False)
