"""``collabzone fl submit|status|result``: the analyst's side of a federated job.

``submit`` sends a job spec (a JSON file: task, datasets, features, label, model, strategy,
rounds, privacy; see docs/federated.md) and prints the request id, its status and the
projected epsilon the owners will see. ``status`` shows where the job stands; ``result``
prints the released model and per-round aggregates with the privacy receipt. The zone is the
one of ``--zone`` / ``COLLABZONE_ZONE``, the party the one of ``--token`` /
``COLLABZONE_TOKEN``, as for every command. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from collabzone.errors import CollabzoneError, InvalidInputError, error_info

app = typer.Typer(
    name="fl",
    help="Federated learning and analytics (Flower) under the owners' agreements.",
    no_args_is_help=True,
)


def _zone() -> Any:
    from collabzone import cli

    return cli._zone()


def _fail(error: CollabzoneError) -> typer.Exit:
    typer.echo(f"error: {error.message}", err=True)
    return typer.Exit(error_info(error).exit_code)


@app.command("submit")
def submit_command(
    spec: Annotated[Path, typer.Argument(help="the job spec (JSON file)")],
    purpose: Annotated[str, typer.Option("--purpose", help="purpose the agreements allow")],
) -> None:
    """Submit a federated job; prints its id, status and projected epsilon."""
    from collabzone.cli_support import exit_code_for
    from collabzone.model import Request

    try:
        try:
            doc = json.loads(spec.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"{spec}: not a readable JSON job spec ({exc})") from None
        zone = _zone()
        request = zone.submit("federated", doc, purpose)
        assert isinstance(request, Request)
        typer.echo(f"{request.id}: {request.status.value}")
        for dataset, cost in request.cost.items():
            typer.echo(f"  {dataset}: epsilon {cost['epsilon']:.4g}, delta {cost['delta']:g}")
        for reason in request.reasons:
            typer.echo(f"  {reason}", err=True)
    except CollabzoneError as exc:
        raise _fail(exc) from None
    if code := exit_code_for(request):
        raise typer.Exit(code)


@app.command("status")
def status_command(request_id: Annotated[str, typer.Argument()]) -> None:
    """Where a federated job stands: status, approvals awaited, spec digest, epsilon."""
    try:
        zone = _zone()
        request = zone.request(request_id)
        plan = zone.request_plan(request_id)
        details = plan.get("details", {})
        typer.echo(f"{request.id}: {request.status.value} ({request.runs_at})")
        if request.owners_to_approve:
            typer.echo(f"  awaiting approval by: {', '.join(request.owners_to_approve)}")
        if details:
            typer.echo(f"  spec sha256: {details.get('spec_sha256')}")
            typer.echo(f"  projected epsilon: {details.get('projected_epsilon'):.4g}")
        for reason in request.reasons:
            typer.echo(f"  {reason}")
    except CollabzoneError as exc:
        raise _fail(exc) from None


@app.command("result")
def result_command(
    request_id: Annotated[str, typer.Argument()],
    output: Annotated[
        Path | None, typer.Option("--output", help="write the released payload (JSON) here")
    ] = None,
) -> None:
    """The released model and per-round aggregates, with the privacy receipt."""
    try:
        release = _zone().result(request_id)
        doc = {"payload": release.payload, "receipt": json.loads(release.receipt.model_dump_json())}
        text = json.dumps(doc, indent=2)
        if output is not None:
            output.write_text(text, encoding="utf-8")
            typer.echo(f"written to {output}")
        else:
            typer.echo(text)
    except CollabzoneError as exc:
        raise _fail(exc) from None
