"""``collabzone validator ...``: the node side of the prediction validator.

``serve`` runs next to the labels (the owner's premises or a mediator entrusted with the
tokenised labels), pulls approved validation jobs and hands back aggregate feedback.
``public-key`` prints the node's sealing key for the owner's agreement (``node_public_key``).
The node key lives in a local keyring encrypted under ``COLLABZONE_MASTER_KEY``.

Like every command, ``serve`` and ``submit`` act on the zone of ``--zone`` (here or before the
sub-command) or ``COLLABZONE_ZONE``, as the party of ``--token`` or ``COLLABZONE_TOKEN``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from collabzone.errors import CollabzoneError, InvalidInputError, error_info

app = typer.Typer(
    name="validator",
    help="Prediction validator node: score ML predictions against local labels.",
    no_args_is_help=True,
)

KeyringOption = Annotated[
    Path,
    typer.Option(
        "--keyring",
        help="the node's keyring (created if absent; keep it: the audit digests and the sealing "
        "key depend on it)",
    ),
]


def _keyring(path: Path):  # type: ignore[no-untyped-def]
    from collabzone.keys import LocalKeyring, master_key_from_env

    master = master_key_from_env()
    if not path.exists():
        return LocalKeyring.create_new(path, master)
    return LocalKeyring(path, master)


def _fail(error: CollabzoneError) -> typer.Exit:
    typer.echo(f"error: {error.message}", err=True)
    return typer.Exit(error_info(error).exit_code)


def _data(pairs: list[str]) -> dict[str, Path]:
    """The node's local files by dataset name; each must exist before anything is served
    (a missing file would otherwise surface only as a refused job, much later)."""
    out = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise InvalidInputError("--data takes NAME=PATH (dataset name = local file)")
        if not Path(path).is_file():
            raise InvalidInputError(f"--data {name}={path}: no such file")
        out[name] = Path(path)
    return out


ZoneOption = Annotated[
    str | None,
    typer.Option(
        "--zone", help="zone directory or server URL (default: the global --zone / COLLABZONE_ZONE)"
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token", help="this party's token (default: the global --token / COLLABZONE_TOKEN)"
    ),
]


def _open_zone(zone: str | None, token: str | None) -> Any:
    """The zone as every other command opens it (``collabzone.cli_context.open_zone``), with this
    sub-command's own ``--zone`` / ``--token`` taking precedence over the global ones."""
    from collabzone import cli_context as cli

    if zone is not None:
        cli.state.zone_dir = zone
    if token is not None:
        cli.state.token = token
    return cli.open_zone()


@app.command("serve")
def serve_command(
    data: Annotated[list[str], typer.Option("--data", help="NAME=PATH of a local labelled file")],
    keyring: KeyringOption = Path("node-keyring.json"),
    zone: ZoneOption = None,
    token: TokenOption = None,
    poll: Annotated[float, typer.Option("--poll", help="seconds between polls")] = 5.0,
    max_jobs: Annotated[
        int | None, typer.Option("--max-jobs", help="stop after this many jobs")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="run waiting jobs and exit")] = False,
) -> None:
    """Serve validation jobs for this party's node from local files."""
    from collabzone.node import NodeAgent

    try:
        files = _data(data)
        agent = NodeAgent(_open_zone(zone, token), files, keys=_keyring(keyring))
        if once:
            done = agent.run_once()
            for request in done:
                typer.echo(f"{request.id}: {request.status.value}")
            return
        count = agent.serve(poll, max_jobs)
        typer.echo(f"served {count} job(s)")
    except CollabzoneError as exc:
        raise _fail(exc) from None


@app.command("public-key")
def public_key_command(keyring: KeyringOption = Path("node-keyring.json")) -> None:
    """Print the node's sealing public key (base64) for the agreement's node_public_key."""
    from collabzone.node import NODE_KEY
    from collabzone.techniques.validator import SEALING_PURPOSE, public_key_of

    try:
        keys = _keyring(keyring)
        keys.create(NODE_KEY)
        typer.echo(public_key_of(keys.derive(NODE_KEY, SEALING_PURPOSE)))
    except CollabzoneError as exc:
        raise _fail(exc) from None


@app.command("submit")
def submit_command(
    dataset: Annotated[str, typer.Option("--dataset", help="the owner's labelled dataset")],
    predictions: Annotated[
        Path, typer.Option("--predictions", help="CSV: token, score|label|value[, group]")
    ],
    purpose: Annotated[str, typer.Option("--purpose", help="purpose the agreement allows")],
    zone: ZoneOption = None,
    token: TokenOption = None,
    task: Annotated[str, typer.Option("--task", help="binary or regression")] = "binary",
    positive_label: Annotated[
        str, typer.Option("--positive-label", help="label value of the positive class")
    ] = "1",
    threshold: Annotated[float, typer.Option("--threshold")] = 0.5,
    epsilon: Annotated[
        float | None, typer.Option("--epsilon", help="DP noise on every metric")
    ] = None,
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="node key to seal the predictions to")
    ] = None,
) -> None:
    """Submit predictions for validation (the ML party's side); prints the request id."""
    from collabzone.cli_support import exit_code_for
    from collabzone.model import Request
    from collabzone.techniques.validator import read_submission, submission_spec
    from collabzone.techniques.validator._submission import TASKS, Task

    try:
        if task not in TASKS:
            raise InvalidInputError("--task must be binary or regression")
        kind: Task = "binary" if task == "binary" else "regression"
        submission = read_submission(predictions, kind)
        options: dict[str, object] = {"positive_label": positive_label, "threshold": threshold}
        if epsilon is not None:
            options["epsilon"] = epsilon
        spec = submission_spec(
            dataset,
            submission,
            task=kind,
            public_key=public_key,
            **options,
        )
        request = _open_zone(zone, token).submit("validator", spec, purpose)
        assert isinstance(request, Request)
        typer.echo(f"{request.id}: {request.status.value}")
        for reason in request.reasons:
            typer.echo(f"  {reason}", err=True)
    except CollabzoneError as exc:
        raise _fail(exc) from None
    if code := exit_code_for(request):
        raise typer.Exit(code)  # refused (7) or failed (9): not a success
