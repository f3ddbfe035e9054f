"""``collabzone mpc ...``: the provider's, the compute server's and the recipient's commands.

Mounted by :mod:`collabzone.cli_plugins`. Heavy imports (MPyC, numpy) happen inside the
commands, so ``collabzone --help`` stays fast.

* ``upload`` (provider's machine): split a CSV's columns into Shamir shares, one package
  per server, each carrying the provider's agreement (accepted reports, recipients,
  minimum group size). With ``--send s0 --send s1 ...`` package ``i`` is sealed to server
  ``i``'s relay key and posted to the zone (``--zone``/``--token``), which relays sealed
  bytes only; with ``--out-dir`` the packages are written as files to move yourself.
* ``relay-key`` (server ``i``): publish its relay public key in the zone.
* ``fetch`` (server ``i``): open the packages the zone relayed to it into its store.
* ``receive`` (server ``i``): seal a package file into its own store.
* ``serve`` (server ``i``, run by its own organisation): store relayed packages, run the
  reports the zone relays with the other servers, answer with its output share sealed to
  the recipient.
* ``recipient-key`` (recipient's machine): make and publish the key output shares are
  sealed to; ``open --request ID --key FILE`` fetches and opens a relayed bundle.
* ``server`` (server ``i``): run one report with the other servers (MPyC over TCP) and
  write this server's output share for the recipient.
* ``open`` (recipient's machine): recombine the output shares into the result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from collabzone.errors import CollabzoneError, InvalidInputError, error_info

app = typer.Typer(
    name="mpc",
    help="Secure multiparty computation: secret-shared upload, compute servers, reports.",
    no_args_is_help=True,
)


def _fail(error: CollabzoneError) -> typer.Exit:
    typer.echo(f"error: {error.message}", err=True)
    return typer.Exit(error_info(error).exit_code)


def _parse_column(text: str) -> tuple[str, float, float]:
    name, _, rest = text.partition(":")
    low, _, high = rest.partition(":")
    try:
        return name, float(low), float(high)
    except ValueError:
        raise InvalidInputError(f"--column {text!r}: write NAME:LOW:HIGH, e.g. age:0:120") from None


@app.command()
def upload(
    csv: Annotated[Path, typer.Argument(help="the provider's CSV (header row)")],
    dataset: Annotated[str, typer.Option(help="name of the shared dataset")],
    provider: Annotated[str, typer.Option(help="the providing party")],
    column: Annotated[list[str], typer.Option(help="NAME:LOW:HIGH, values clipped to bounds")],
    report: Annotated[list[str], typer.Option(help="a report the data may feed (repeat)")],
    recipient: Annotated[list[str], typer.Option(help="a party that may receive reports")],
    out_dir: Annotated[
        Path | None, typer.Option(help="write the per-server packages here (files)")
    ] = None,
    send: Annotated[
        list[str] | None,
        typer.Option(help="compute server party, in index order (repeat): send via the zone"),
    ] = None,
    fingerprint: Annotated[
        list[str] | None,
        typer.Option(help="SERVER:FINGERPRINT of a relay key given out of band (checked)"),
    ] = None,
    min_group_size: Annotated[int, typer.Option(help="fewest records a report may cover")] = 10,
    servers: Annotated[int, typer.Option(help="number of compute servers")] = 3,
    threshold: Annotated[int, typer.Option(help="servers that may collude (2t < n)")] = 1,
) -> None:
    """Split the columns into one share package per compute server (on this machine)."""
    if (out_dir is None) == (not send):
        raise _fail(InvalidInputError("give either --send (one per server) or --out-dir"))
    if send:
        servers = len(send)
    import numpy as np
    import pyarrow.csv as pacsv

    from collabzone.techniques.mpc._client import split_upload

    try:
        specs = [_parse_column(c) for c in column]
        try:
            table = pacsv.read_csv(csv)
        except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError
            raise InvalidInputError(f"cannot read {csv}: {exc}") from None
        missing = [name for name, _, _ in specs if name not in table.column_names]
        if missing:
            raise InvalidInputError(f"{csv} has no column(s) {missing}")
        data = {
            n: np.asarray(table.column(n).to_numpy(zero_copy_only=False), dtype=float)
            for n, _, _ in specs
        }
        packages = split_upload(
            dataset,
            provider,
            data,
            {n: (lo, hi) for n, lo, hi in specs},
            reports=report,
            recipients=recipient,
            min_group_size=min_group_size,
            servers=servers,
            threshold=threshold,
        )
        if send:
            from collabzone.techniques.mpc._relay_party import Relay, send_packages

            pins = dict(f.partition(":")[::2] for f in fingerprint or [])
            ids = send_packages(Relay(_zone()), dataset, packages, send, expected=pins)
    except CollabzoneError as error:
        raise _fail(error) from None
    if send:
        for index, (server_name, package_id) in enumerate(zip(send, ids, strict=True)):
            typer.echo(f"server {index} ({server_name}): sealed package {package_id} relayed")
        return
    assert out_dir is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, package in enumerate(packages):
        path = out_dir / f"{dataset}.server{index}.json"
        path.write_text(json.dumps(package), "utf-8")
        typer.echo(f"server {index}: {path}")


def _zone() -> Any:
    from collabzone.cli_context import open_zone

    return open_zone()


@app.command("relay-key")
def relay_key(store: Annotated[Path, typer.Option(help="this server's store directory")]) -> None:
    """Publish this compute server's relay key in the zone (providers seal to it)."""
    from collabzone.keys import master_key_from_env
    from collabzone.techniques.mpc._relay import fingerprint
    from collabzone.techniques.mpc._relay_party import Relay
    from collabzone.techniques.mpc._store import ShareStore

    try:
        key = ShareStore(store, master_key_from_env()).relay_key()
        Relay(_zone()).publish_key(bytes(key.public_key))
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(
        f"relay key published, fingerprint {fingerprint(bytes(key.public_key))}: give it to "
        "the providers out of band (collabzone mpc upload --fingerprint SERVER:FINGERPRINT)"
    )


@app.command()
def fetch(
    store: Annotated[Path, typer.Option(help="this server's store directory")],
    index: Annotated[int | None, typer.Option(help="this server's index (checked)")] = None,
) -> None:
    """Open the share packages the zone relayed to this server into its store."""
    from collabzone.keys import master_key_from_env
    from collabzone.techniques.mpc._relay_party import Relay, fetch_packages
    from collabzone.techniques.mpc._store import ShareStore

    try:
        zone = _zone()
        target = ShareStore(store, master_key_from_env())
        stored = fetch_packages(Relay(zone), zone.me.name, target, index=index)
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(f"stored {len(stored)} package(s): {', '.join(stored) or '-'}")


@app.command()
def receive(
    package: Annotated[Path, typer.Argument(help="this server's share package")],
    store: Annotated[Path, typer.Option(help="this server's store directory")],
) -> None:
    """Seal a provider's share package into this server's store (COLLABZONE_MASTER_KEY)."""
    from collabzone.keys import master_key_from_env
    from collabzone.techniques.mpc._store import ShareStore

    try:
        ShareStore(store, master_key_from_env()).put(json.loads(package.read_text("utf-8")))
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(f"stored {package.name}")


@app.command()
def server(
    store: Annotated[Path, typer.Option(help="this server's store directory")],
    report: Annotated[Path, typer.Option(help="the report spec (JSON)")],
    shares_to: Annotated[Path, typer.Option(help="where this server's output share goes")],
    party: Annotated[list[str], typer.Option(help="host:port of every server, in order")],
    index: Annotated[int, typer.Option(help="this server's index")],
    ssl: Annotated[bool, typer.Option(help="TLS between servers (.config/ certificates)")] = False,
    connect_timeout: Annotated[float, typer.Option(help="seconds to wait for the others")] = 300.0,
) -> None:
    """Run one report with the other compute servers (MPyC over TCP)."""
    command = [
        sys.executable, "-m", "collabzone.techniques.mpc._process",
        "--store", str(store), "--report", str(report), "--shares-to", str(shares_to),
        "--connect-timeout", str(connect_timeout),
        *(arg for p in party for arg in ("-P", p)), "-I", str(index),
        *(["--ssl"] if ssl else []),
    ]  # fmt: skip
    raise typer.Exit(subprocess.run(command, check=False).returncode)


@app.command()
def serve(
    store: Annotated[Path, typer.Option(help="this server's store directory")],
    party: Annotated[list[str], typer.Option(help="host:port of every server, in order")],
    index: Annotated[int, typer.Option(help="this server's index")],
    ssl: Annotated[bool, typer.Option(help="TLS between servers (.config/ certificates)")] = False,
    once: Annotated[bool, typer.Option(help="answer the first job(s), then stop")] = False,
    poll: Annotated[float, typer.Option(help="seconds between two looks at the zone")] = 2.0,
    wait: Annotated[float, typer.Option(help="with --once: seconds to wait for a job")] = 300.0,
    connect_timeout: Annotated[float, typer.Option(help="seconds to wait for the others")] = 300.0,
) -> None:
    """Run this compute server against the zone (--zone/--token): packages in, jobs out."""
    from collabzone.keys import master_key_from_env
    from collabzone.techniques.mpc._relay_party import Relay
    from collabzone.techniques.mpc._remote import serve as serve_loop

    try:
        answered = serve_loop(Relay(_zone()), store, master_key_from_env(), party, index,
                              ssl=ssl, once=once, poll=poll, wait=wait,
                              connect_timeout=connect_timeout)  # fmt: skip
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(f"answered {answered} job(s)")


@app.command("recipient-key")
def recipient_key(
    out: Annotated[Path, typer.Option(help="file for your private key (kept here, 0600)")],
) -> None:
    """Make your X25519 key (output shares are sealed to it) and publish its public half."""
    import os

    from nacl.public import PrivateKey

    from collabzone.techniques.mpc._relay_party import Relay

    key = PrivateKey.generate()
    try:
        Relay(_zone()).publish_key(bytes(key.public_key))
    except CollabzoneError as error:
        raise _fail(error) from None
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(bytes(key))
    typer.echo(f"key written to {out} (keep it); its public half is published")


def _open_request(request_id: str, recipient: str, key_file: Path) -> dict[str, Any]:
    from nacl.public import PrivateKey

    from collabzone.techniques.mpc._relay_party import Relay
    from collabzone.techniques.mpc._remote import open_sealed_bundle

    try:
        key = PrivateKey(key_file.read_bytes())
    except (OSError, ValueError, TypeError):
        raise InvalidInputError(f"cannot read a key from {key_file}") from None
    zone = _zone()
    bundle = zone.result(request_id).payload["bundle"]
    body = Relay(zone).bundle(recipient, bundle["sha256"])
    return open_sealed_bundle(body, bundle["sha256"], recipient, key)


@app.command("open")
def open_(
    shares: Annotated[
        list[Path] | None,
        typer.Argument(help="the servers' output share files, or a zone bundle"),
    ] = None,
    recipient: Annotated[str, typer.Option(help="you: the report's recipient")] = "",
    request: Annotated[
        str | None, typer.Option(help="a released mpc request whose bundle was relayed")
    ] = None,
    key: Annotated[
        Path | None, typer.Option(help="with --request: the file `recipient-key` wrote")
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(help="the bundle's SHA-256 from the zone's release (checks the file)"),
    ] = None,
) -> None:
    """Recombine the servers' output shares into the report (on the recipient's machine).

    A zone request's release names a bundle (``<outbox>/<recipient>/<sha256>.json``): give
    its path and ``--sha256`` from the release so a swapped file is refused.
    """
    from collabzone.techniques.mpc._client import open_report
    from collabzone.techniques.mpc._drivers import open_bundle

    shares = shares or []
    try:
        if not recipient:
            raise InvalidInputError("--recipient names you, the report's recipient")
        if request is not None:
            if key is None:
                raise InvalidInputError("--request needs --key (the file recipient-key wrote)")
            result = _open_request(request, recipient, key)
        elif sha256 is not None:
            if len(shares) != 1:
                raise InvalidInputError("--sha256 checks one bundle file: give exactly one path")
            result = open_bundle({"path": str(shares[0]), "sha256": sha256}, recipient)
        else:
            outputs: list[Any] = []
            for path in shares:
                doc = json.loads(path.read_text("utf-8"))
                outputs.extend(doc.get("outputs", [doc]))
            result = open_report(outputs, recipient)
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(json.dumps(result, indent=2))
