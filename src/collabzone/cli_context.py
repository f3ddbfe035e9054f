"""What every CLI command shares: the consoles, the global options and opening the zone.

Commands in :mod:`collabzone.cli` and the technique plugins import these helpers lazily
(inside the command function) so that registering a plugin imports no zone code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from collabzone.errors import InvalidInputError

if TYPE_CHECKING:
    from collabzone.model import Request
    from collabzone.zone import Zone

console = Console()
err_console = Console(stderr=True)


class State:
    """The global options of one CLI invocation (set by the main callback)."""

    zone_dir: str = "zone"
    token: str | None = None
    db_url: str | None = None
    debug: bool = False


state = State()


def open_zone() -> Zone:
    """The zone the command acts on: embedded (a directory) or remote (an http(s) URL)."""
    if state.zone_dir.startswith(("http://", "https://")):
        from collabzone.client import connect_remote

        return connect_remote(state.zone_dir, token=state.token)  # type: ignore[return-value]
    from collabzone import zone as zone_module

    return zone_module.connect(state.zone_dir, state.token, db_url=state.db_url)


def json_arg(text: str | None, what: str) -> dict[str, Any]:
    """A JSON object option (inline, or ``@file.json``), with an error naming the option."""
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


def print_json(value: Any) -> None:
    """Pretty-print a JSON value on stdout."""
    console.print_json(json.dumps(value, default=str))


def show_request(request: Request, to: Console | None = None) -> None:
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
