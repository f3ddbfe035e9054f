"""``collabzone he ...``: homomorphic totals with the zone as a keyless mediator.

* ``keys`` (recipient's machine): a CKKS key pair; the secret context never leaves it.
* ``publish`` (recipient): hand the zone the *public* context.
* ``encrypt`` (provider's machine): fetch the recipient's public context and encrypt a
  vector (a JSON list, or one number per line) under it.
* ``deposit`` (provider): give the zone the ciphertext of one of its datasets.
* ``open`` (recipient): decrypt a released ``he_sum`` total with the secret context.

Then anyone the agreements allow asks for the total with ``collabzone request submit
he_sum --spec '{"datasets": [...], "recipient": "..."}'``. Works on an embedded zone
(a directory) and on a server (``--zone https://...``) alike; heavy imports (TenSEAL)
happen inside the commands.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from collabzone.errors import CollabzoneError, InvalidInputError, error_info

app = typer.Typer(
    name="he",
    help="Homomorphic totals (TenSEAL CKKS): keys, publish, encrypt, deposit, open.",
    no_args_is_help=True,
)
SECRET_FILE, PUBLIC_FILE = "he-secret.ctx", "he-public.ctx"


def _fail(error: CollabzoneError) -> typer.Exit:
    typer.echo(f"error: {error.message}", err=True)
    return typer.Exit(error_info(error).exit_code)


def _zone() -> Any:
    from collabzone.cli_context import open_zone

    return open_zone()


def _is_remote(zone: Any) -> bool:
    from collabzone.client import RemoteZone

    return isinstance(zone, RemoteZone)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read the {what} {path} ({exc.strerror})") from None


def _values(path: Path) -> list[float]:
    text = _read(path, "values file").decode("utf-8", errors="replace").strip()
    try:
        doc = json.loads(text) if text.startswith("[") else [float(x) for x in text.split()]
    except ValueError:
        raise InvalidInputError(f"{path}: write a JSON list or one number per line") from None
    if not doc or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in doc):
        raise InvalidInputError(f"{path}: the vector must be a non-empty list of numbers")
    return [float(v) for v in doc]


@app.command()
def keys(out: Annotated[Path, typer.Option(help="directory for the two context files")]) -> None:
    """Make the recipient's CKKS keys: he-secret.ctx (0600, keep it) and he-public.ctx."""
    from collabzone.techniques.mpc import RecipientKeys

    generated = RecipientKeys.generate()
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(generated.context.serialize(save_secret_key=True))
    (out / PUBLIC_FILE).write_bytes(generated.public_context())
    typer.echo(f"keys written to {out}: publish {PUBLIC_FILE}, keep {SECRET_FILE}")


@app.command()
def publish(keys: Annotated[Path, typer.Option(help="the directory `he keys` wrote")]) -> None:
    """Publish your public context in the zone (you become a possible recipient)."""
    from collabzone.techniques.mpc._he_inbox import publish_as

    public = _read(keys / PUBLIC_FILE, "public context")
    try:
        zone = _zone()
        if _is_remote(zone):
            zone.octets("PUT", f"/v1/he/{zone.me.name}/context", public)
        else:
            publish_as(zone, public)
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo("public context published")


@app.command()
def encrypt(
    values: Annotated[Path, typer.Argument(help="JSON list, or one number per line")],
    recipient: Annotated[str, typer.Option(help="the party that will decrypt the total")],
    out: Annotated[Path, typer.Option(help="where the ciphertext goes")],
) -> None:
    """Encrypt your vector under the recipient's public context (at your premises)."""
    from collabzone.techniques.mpc import encrypt as encrypt_vector
    from collabzone.techniques.mpc._he_inbox import public_context_of

    try:
        vector = _values(values)
        zone = _zone()
        if _is_remote(zone):
            public = zone.octets("GET", f"/v1/he/{recipient}/context")
        else:
            public = public_context_of(zone, recipient)
        out.write_bytes(encrypt_vector(public, vector))
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(f"{len(vector)} values encrypted for {recipient} into {out}")


@app.command()
def deposit(
    ciphertext: Annotated[Path, typer.Argument(help="the file `he encrypt` wrote")],
    dataset: Annotated[str, typer.Option(help="your dataset the vector summarises")],
    recipient: Annotated[str, typer.Option(help="the party it is encrypted for")],
) -> None:
    """Deposit your dataset's ciphertext in the zone for ``he_sum`` requests."""
    from collabzone.techniques.mpc._he_inbox import deposit_as

    blob = _read(ciphertext, "ciphertext")
    try:
        zone = _zone()
        if _is_remote(zone):
            zone.octets("PUT", f"/v1/he/{recipient}/ciphertexts/{dataset}", blob)
        else:
            deposit_as(zone, recipient, dataset, blob)
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(f"ciphertext of {dataset} deposited for {recipient}")


@app.command("open")
def open_(
    request_id: Annotated[str, typer.Argument(help="the released he_sum request")],
    keys: Annotated[Path, typer.Option(help="the directory `he keys` wrote")],
    length: Annotated[
        int | None, typer.Option(help="the vectors' length (the ciphertext pads to 4,096)")
    ] = None,
) -> None:
    """Decrypt a released total on your machine; prints the vector as JSON."""
    from collabzone.techniques.mpc import RecipientKeys, open_total
    from collabzone.techniques.mpc._he import _ts

    secret = _read(keys / SECRET_FILE, "secret context")
    try:
        release = _zone().result(request_id)
        total = open_total(release.payload, RecipientKeys(_ts().context_from(secret)))
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(json.dumps(total[:length] if length is not None else total))
