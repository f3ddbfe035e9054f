"""``collabzone fl submit|status|result|approve|node|certs``: the analyst's and the owners' side.

``submit`` sends a job spec (a JSON file: task, datasets, features, label, model, strategy,
rounds, privacy; see docs/federated.md) and prints the request id, its status and the
projected epsilon the owners will see. ``status`` shows where the job stands; ``result``
prints the released model and per-round aggregates with the privacy receipt. The zone is the
one of ``--zone`` / ``COLLABZONE_ZONE``, the party the one of ``--token`` /
``COLLABZONE_TOKEN``, as for every command. ``approve`` is the owner approving from its
node (recording the approved spec digest in the node's approval book); ``node`` runs the
owner's node for federated jobs on the deployment path (a SuperNode per joined job, over TLS
with the zone's CA); ``certs`` makes the zone's CA and SuperLink certificate. Heavy imports
happen inside the commands.
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
    from collabzone.cli_context import open_zone

    return open_zone()


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
def status_command(
    request_id: Annotated[str, typer.Argument()],
    watch: Annotated[
        float | None,
        typer.Option("--watch", help="refresh every SECONDS while the job runs"),
    ] = None,
) -> None:
    """Where a federated job stands: status, approvals awaited, spec digest, epsilon, and
    while it runs: round x of n, clients, the last metrics (as the console shows them)."""
    import time

    from rich.console import Console
    from rich.live import Live

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
        if watch is None:
            Console().print(_progress_table(zone, request_id))
            return
        if watch <= 0:
            raise InvalidInputError("--watch needs a positive number of seconds")
        with Live(_progress_table(zone, request_id), refresh_per_second=1) as live:
            while zone.request(request_id).status.value in ("approved", "running"):
                time.sleep(watch)
                live.update(_progress_table(zone, request_id))
    except CollabzoneError as exc:
        raise _fail(exc) from None


def _progress_table(zone: Any, request_id: str) -> Any:
    """The job's progress (``_progress.progress``) as a Rich table: one row per round."""
    from rich.table import Table

    from collabzone.techniques.federated import _progress

    request = zone.request(request_id)
    events = zone.audit_events(request_id)
    doc = _progress.progress(
        request_id, request.status.value, zone.request_plan(request_id), events
    )
    table = Table(title=f"{request_id}: {_progress.summary(doc)}", title_justify="left")
    for name in ("round", "clients", "epsilon so far", "accuracy", "loss"):
        table.add_column(name, justify="right")
    scores = {int(m["round"]): m for m in doc["metrics"]}
    for event in events:
        if event.get("subject") != request_id or event.get("action") != _progress.ROUND:
            continue
        d = event["details"]
        score = scores.get(int(d.get("round", 0)), {})
        table.add_row(
            str(d.get("round")), str(len(d.get("clients") or [])),
            _fmt(d.get("epsilon")), _fmt(score.get("accuracy")), _fmt(score.get("loss")),
        )  # fmt: skip
    return table


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4g}"


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


BookOption = Annotated[
    Path,
    typer.Option("--book", help="the node's approval book (JSON): digests its owner approved"),
]


@app.command("approve")
def approve_command(
    request_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option("--reason", help="why the owner approves")],
    book: BookOption = Path("fl-approvals.json"),
) -> None:
    """An owner approves a federated job from its node: the spec digest it was shown goes
    into the node's approval book first (the node runs only specs hashing to it)."""
    from collabzone.node import NodeAgent

    try:
        agent = NodeAgent(_zone(), {}, approvals=book)
        request = agent.approve(request_id, reason)
        typer.echo(f"{request.id}: {request.status.value}")
        typer.echo(f"  approved spec sha256 {agent.approvals.get(request_id)} (in {book})")
    except CollabzoneError as exc:
        raise _fail(exc) from None


@app.command("node")
def node_command(
    data: Annotated[list[str], typer.Option("--data", help="NAME=PATH of a local dataset")],
    superlink: Annotated[str, typer.Option("--superlink", help="the zone's SuperLink host:port")],
    book: BookOption = Path("fl-approvals.json"),
    zone_key: Annotated[
        str | None, typer.Option("--zone-key", help="the zone's job-signing key (hex) to pin")
    ] = None,
    root_certificates: Annotated[
        Path | None,
        typer.Option("--root-certificates", help="the zone's CA (ca.pem from `fl certs`)"),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="no TLS to the SuperLink (tests and demos only)")
    ] = False,
    workdir: Annotated[Path, typer.Option("--workdir", help="SuperNode logs")] = Path("fl-node"),
    poll: Annotated[float, typer.Option("--poll", help="seconds between polls")] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="join waiting jobs and exit")] = False,
) -> None:
    """This owner's node for federated jobs: pulls the approved jobs, checks each against
    the approval book and the zone's signature, starts a SuperNode against the SuperLink."""
    from collabzone.node import NodeAgent

    try:
        if (root_certificates is None) == (not insecure):
            raise InvalidInputError(
                "give --root-certificates ca.pem (the zone's CA, TLS) or, in tests only, --insecure"
            )
        files = {}
        for item in data:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise InvalidInputError(f"--data {item!r}: give NAME=PATH")
            files[name] = Path(path)
        agent = NodeAgent(_zone(), files, approvals=book, zone_key=zone_key,
                          superlink=superlink, workdir=workdir,
                          root_certificates=root_certificates)  # fmt: skip
        if once:
            for request in agent.run_once():
                typer.echo(f"{request.id}: {request.status.value}")
            return
        try:
            agent.serve(poll)
        finally:
            agent.close()
    except CollabzoneError as exc:
        raise _fail(exc) from None


@app.command("certs")
def certs_command(
    out: Annotated[Path, typer.Option("--out", help="directory for the certificates")],
    host: Annotated[
        list[str],
        typer.Option("--host", help="a name or IP the nodes dial (repeat); the first is the CN"),
    ],
    days: Annotated[int, typer.Option("--days", help="validity in days")] = 365,
    zone_id: Annotated[str, typer.Option("--zone-id", help="names the CA")] = "collabzone",
) -> None:
    """Make the zone's CA and its SuperLink's TLS certificate (subject alternative names:
    every --host); the owners' nodes get ca.pem only (``fl node --root-certificates``)."""
    from collabzone.techniques.federated import _tls

    try:
        certs = _tls.issue(out, host, zone_id=zone_id, days=days)
    except CollabzoneError as exc:
        raise _fail(exc) from None
    typer.echo(f"CA (hand to the owners' nodes): {certs.ca}")
    typer.echo(f"SuperLink certificate: {certs.cert}, key: {certs.key} (0600)")
    typer.echo(f"for: {', '.join(host)}; the CA key {out / _tls.CA_KEY} stays with the zone")
