"""``collabzone webhook ...``: the operator sets where each party's notices go, on the host.

A webhook makes the server connect wherever its URL points, so destinations are not a
party's to choose (see :mod:`collabzone.server.webhook_targets`). These commands open the
zone directory as its host (master key from the environment), write
``ZONE/server/webhooks.json`` and the running server picks the change up at its next
notice. Parties read their destination and signing secret with ``GET /v1/notifications``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    from collabzone.server.webhooks import Notifier
    from collabzone.zone import Zone

app = typer.Typer(
    name="webhook",
    help="Where parties' notices go (operator, on the zone's host): set, remove, list.",
    no_args_is_help=True,
)

AllowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow",
        envvar="COLLABZONE_WEBHOOK_ALLOW",
        help="Network a destination may be in although not public (give the server the "
        "same with --webhook-allow); repeat for several.",
    ),
]


def _notifier(allow: list[str] | None = None) -> tuple[Zone, Notifier]:
    """The host's zone (checked to exist) and a Notifier on its destinations file."""
    from collabzone import cli_context as cli
    from collabzone.errors import InvalidInputError
    from collabzone.server import _acting
    from collabzone.server._settings import ServerSettings
    from collabzone.server.webhook_targets import parse_allow
    from collabzone.server.webhooks import Notifier
    from collabzone.zone import connect

    if cli.state.zone_dir.startswith(("http://", "https://")):
        raise InvalidInputError(
            "webhook destinations are set on the zone's host: give --zone the zone directory"
        )
    zone = connect(Path(cli.state.zone_dir), db_url=cli.state.db_url, host=True)
    settings = ServerSettings(zone_dir=Path(cli.state.zone_dir))
    notifier = Notifier(
        settings.state_dir / "webhooks.json",
        lambda party: _acting.derive_key(zone, f"webhook:{party}"),
        allow=parse_allow(allow or ()),
    )
    return zone, notifier


@app.command("set")
def set_command(
    party: Annotated[str, typer.Argument(help="The party whose notices these are.")],
    url: Annotated[str | None, typer.Option(help="Webhook URL (http:// or https://).")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address (needs --smtp-host).")] = None,
    allow: AllowOption = None,
) -> None:
    """Send PARTY's notices to URL and/or EMAIL; the URL must lead to public addresses only
    (checked now and at every delivery) unless --allow names its network."""
    from collabzone import cli_context as cli
    from collabzone.errors import InvalidInputError, NotAuthorisedError, NotFoundError

    if url is None and email is None:
        raise InvalidInputError("give --url and/or --email (or use `webhook remove PARTY`)")
    zone, notifier = _notifier(allow)
    try:
        zone.party_status(party)
    except NotAuthorisedError:
        raise NotFoundError(f"no party {party!r}: see `collabzone party list`") from None
    entry = notifier.set_destination(party, url, email)
    where = " and ".join(entry.values())
    cli.console.print(
        f"{party}'s notices go to {where}; the party reads its signing secret with "
        "GET /v1/notifications"
    )


@app.command("remove")
def remove_command(party: str) -> None:
    """Stop sending PARTY's notices anywhere."""
    from collabzone import cli_context as cli

    _, notifier = _notifier()
    notifier.set_destination(party, None, None)
    cli.console.print(f"{party} gets no more notices")


@app.command("list")
def list_command() -> None:
    """Every party's notice destinations."""
    from collabzone import cli_context as cli

    _, notifier = _notifier()
    table = Table("party", "webhook", "e-mail")
    for party, entry in sorted(notifier.destinations().items()):
        table.add_row(party, entry.get("url", "-"), entry.get("email", "-"))
    cli.console.print(table)
