"""The `collabzone` command line: every command is one call of the Python API.

The CLI acts as the party whose token is given (``--token`` or ``COLLABZONE_TOKEN``) on the
zone in ``--zone`` (or ``COLLABZONE_ZONE``, default ``./zone``). Errors print one line and
exit with the code the error catalogue gives (no traceback unless ``--debug``); a request
that ends refused or failed exits 7 or 9 (:mod:`collabzone.cli_support`; the whole scheme is
in docs/cli.md). Data goes to stdout and messages to stderr, so scripts can capture values.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from collabzone import zone as zone_module
from collabzone.cli_context import console, err_console, state
from collabzone.cli_plugins import CORE_SUBCOMMANDS, typer_app
from collabzone.cli_requests import TOP_LEVEL_COMMANDS
from collabzone.cli_support import EXIT_INTERNAL, EXIT_INTERRUPTED
from collabzone.errors import CollabzoneError, InvalidInputError, error_info

app = typer_app(  # technique sub-commands are imported when named (cli_plugins.py)
    name="collabzone",
    help="A privacy-preserving data collaboration zone.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


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


for _name in TOP_LEVEL_COMMANDS:
    app.command()(getattr(importlib.import_module("collabzone.cli_requests"), _name))
for _name, _target in CORE_SUBCOMMANDS:
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
