"""What every ``collabzone`` command shares: exit codes, request ids, data on stdout.

One exit-code scheme for every command (docs/cli.md draws it). Errors take their code from
:data:`collabzone.errors.ERROR_CATALOGUE`; a request that *ends* refused or failed is not an
exception (the zone answers with the request), so :func:`exit_code_for` maps its status to
the same scheme: a refusal exits like a :class:`~collabzone.errors.PolicyRefusal` whether
the rule said no when the request was submitted or when it was run.

Request ids may be shortened to any prefix that names exactly one request the party can
see (``rq-3f2a`` or ``3f2a``); tables print them whole, since a truncated id cannot be
approved. Commands that emit data (``query --format csv|json``) write it to stdout through
:func:`write_data` and every message to stderr, so ``> file`` or ``| jq`` gets data only.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from collabzone.errors import (
    ERROR_CATALOGUE,
    InvalidInputError,
    NotFoundError,
    PolicyRefusal,
)
from collabzone.model import Request, RequestStatus

if TYPE_CHECKING:
    from collabzone.zone import Zone

Progress_ = Callable[[str, float, int], None]

EXIT_OK = 0
EXIT_REFUSED = ERROR_CATALOGUE[PolicyRefusal].exit_code
EXIT_REQUEST_FAILED = 9
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

FULL_REQUEST_ID = re.compile(r"rq-[0-9a-f]{12}")


def exit_code_for(request: Request) -> int:
    """The exit code of a command whose answer is ``request``: 0 while it is released or
    still on its way (awaiting approval, running), 7 when refused, 9 when it failed."""
    if request.status is RequestStatus.REFUSED:
        return EXIT_REFUSED
    if request.status is RequestStatus.FAILED:
        return EXIT_REQUEST_FAILED
    return EXIT_OK


def resolve_request_id(zone: Zone, text: str) -> str:
    """The full id of the request ``text`` names: a full id as given, or a prefix (with or
    without ``rq-``) of exactly one request this party can see.

    Only the party's own listing is searched, so an ambiguous or unknown prefix says
    nothing about other parties' requests.

    Example:
        >>> resolve_request_id(zone, "rq-3f2a")  # doctest: +SKIP
        'rq-3f2a9c01d4e7'
    """
    wanted = text.strip().lower()
    if FULL_REQUEST_ID.fullmatch(wanted):
        return wanted
    if not wanted.startswith("rq-"):
        wanted = "rq-" + wanted
    if len(wanted) < len("rq-") + 1:
        raise InvalidInputError("give a request id (or the start of one), e.g. rq-3f2a")
    matches = sorted({r.id for r in zone.requests() if r.id.startswith(wanted)})
    if not matches:
        raise NotFoundError(
            f"no request of yours starts with {text!r} (see `collabzone request list`)"
        )
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise InvalidInputError(
            f"{text!r} is the start of {len(matches)} requests ({shown}): give more of the id"
        )
    return matches[0]


def write_data(text: str) -> None:
    """Write command output that is data (CSV, JSON) to stdout, untouched by Rich (no
    wrapping at the terminal width, no colour, no markup); nothing at all for no data."""
    if text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def id_table(id_header: str, *headers: str, title: str | None = None) -> Table:
    """A Rich table whose first column holds ids: never shortened with an ellipsis (other
    columns give way first; on a very narrow terminal the id folds onto a second line)."""
    table = Table(title=title)
    table.add_column(id_header, no_wrap=True, overflow="fold")
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


PROGRESS_FROM_BYTES = 2 << 20
"""Files above this size show a progress bar while they are read (smaller ones are quick)."""


class _RowsPerSecond(ProgressColumn):
    """Rows read per second so far (the task's ``rows`` field over its elapsed time)."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        elapsed = task.elapsed or 0.0
        rate = f"{rows / elapsed:,.0f} rows/s" if elapsed > 0 else "- rows/s"
        return Text(f"{rows:,} rows, {rate}", style="progress.data.speed")


@contextmanager
def ingest_progress(console: Console, size: int, name: str) -> Iterator[Progress_ | None]:
    """Progress bars (percent, rows per second, time left) for ingesting a file of ``size``
    bytes, one per step (scanning, parsing), on ``console`` (stderr); None for small files.
    Yields the callback to hand to ``Zone.add_dataset(progress=...)``."""
    if size < PROGRESS_FROM_BYTES:
        with console.status(f"ingesting {name}..."):
            yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        _RowsPerSecond(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(step: str, fraction: float, rows: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(f"{step} {name}", total=1000, rows=0)
            bar.update(tasks[step], completed=round(fraction * 1000), rows=rows)

        yield advance
