"""``collabzone keys ...``: the zone's own keys, as the operator runs them.

Mounted by :mod:`collabzone.cli_plugins`; acts on the zone of ``--zone`` (a directory or a
server URL) as the party of ``--token``, like every other command. Rotation re-encrypts
what a key protects with a progress bar; killed midway, the same command finishes it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    name="keys",
    help="The zone's keys: list, rotate (re-encrypting what they protect), destroy.",
    no_args_is_help=True,
)


@app.command("list")
def list_command() -> None:
    """The zone's keys, their versions and what each protects (operator, auditor)."""
    from collabzone import cli_context as cli

    table = Table("key", "current", "versions held", "protects", "rotation")
    for key in cli.open_zone().key_inventory():
        table.add_row(
            key["name"],
            "-" if key["current"] is None else str(key["current"]),
            ", ".join(map(str, key["versions"])) or "-",
            key["protects"],
            "[yellow]unfinished: rerun rotate[/]" if key["rotation_pending"] else "",
        )
    cli.console.print(table)


@app.command("rotate")
def rotate_command(
    name: Annotated[
        str,
        typer.Argument(help="data-at-rest, audit-head, zone-services, zone-techniques or oprf:<c>"),
    ],
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset", "-d", help="oprf keys: a dataset whose tokens to re-key (repeatable)."
        ),
    ] = None,
    spec_zone: Annotated[
        str | None,
        typer.Option(help="oprf keys: the link spec's `zone` the tokens were made for."),
    ] = None,
) -> None:
    """Rotate a zone key and re-encrypt (or re-key) what it protects; rerun to resume."""
    from collabzone import cli_context as cli

    zone = cli.open_zone()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=cli.console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"rotating {name}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = zone.rotate_key(
            name, datasets=dataset or (), spec_zone=spec_zone, progress=progress
        )
    what = (
        f", {summary['datasets']} dataset(s) re-keyed"
        if "datasets" in summary
        else f", {summary['files']} file(s) re-encrypted"
    )
    resumed = " (finished an interrupted rotation)" if summary["resumed"] else ""
    cli.console.print(
        f"{name}: version {summary['from_version']} -> {summary['to_version']}{what}{resumed}"
    )
    if name == "zone-services":
        cli.console.print(
            "[yellow]every session and access token ended, webhook secrets changed; restart "
            "other server processes of this zone[/]"
        )


@app.command("destroy")
def destroy_command(
    name: Annotated[str, typer.Argument(help="the key")],
    version: Annotated[int, typer.Option("--version", help="the old version to erase for good")],
) -> None:
    """Erase one old version (refused while a file or the audit head still needs it)."""
    from collabzone import cli_context as cli

    cli.open_zone().destroy_key(name, version)
    cli.console.print(f"{name} version {version} destroyed")
