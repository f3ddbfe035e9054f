"""``collabzone link ...``: the provider-side commands (prepare files, manage the link key).

Mounted by :mod:`collabzone.cli_plugins`. Keys come from a local keyring file encrypted under
the master key in ``COLLABZONE_MASTER_KEY`` (or ``COLLABZONE_MASTER_KEY_FILE``); the
collaboration key ``link:<collaboration>`` is shared by the providers (copy the keyring
file and give its master key out of band) and never reaches the zone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from collabzone.errors import CollabzoneError, InvalidInputError, error_info
from collabzone.keys import KeyProvider, LocalKeyring, master_key_from_env

app = typer.Typer(
    name="link",
    help="Linking at the provider's premises: normalise and tokenise PII, manage link keys.",
    no_args_is_help=True,
)

KeyringOption = Annotated[
    Path, typer.Option("--keyring", help="keyring file holding the collaboration key")
]


def _keyring(path: Path, create: bool = False) -> KeyProvider:
    master = master_key_from_env()
    if create and not path.exists():
        return LocalKeyring.create_new(path, master)
    return LocalKeyring(path, master)


def _fail(error: CollabzoneError) -> typer.Exit:
    typer.echo(f"error: {error.message}", err=True)
    return typer.Exit(error_info(error).exit_code)


@app.command("prepare")
def prepare_command(
    raw: Annotated[Path, typer.Argument(help="raw CSV or Parquet file (stays on premises)")],
    spec: Annotated[Path, typer.Option("--spec", help="link spec (YAML or JSON)")],
    out: Annotated[Path, typer.Option("--out", help="upload-ready output (.csv or .parquet)")],
    keyring: KeyringOption,
    report: Annotated[Path | None, typer.Option("--report", help="JSON report path")] = None,
    key_version: Annotated[
        int | None, typer.Option("--key-version", help="key version (default: current)")
    ] = None,
) -> None:
    """Normalise and tokenise RAW's identifier columns into OUT; raw PII is dropped."""
    from collabzone.techniques.linking._prepare import prepare
    from collabzone.techniques.linking._spec import load_spec

    try:
        link_spec = load_spec(spec)
        if link_spec.mode != "hmac":
            raise InvalidInputError(
                "the CLI prepares hmac-mode files; oprf mode talks to the zone's OPRF "
                "service through the Python API (collabzone.techniques.linking.prepare)"
            )
        result = prepare(
            raw, link_spec, out, keys=_keyring(keyring), report=report, key_version=key_version
        )
    except CollabzoneError as error:
        raise _fail(error) from None
    summary = {
        "rows": result.rows,
        "out": str(out),
        "invalid": {name: c.invalid for name, c in result.fields.items()},
        "tokens": {name: k["tokens"] for name, k in result.match_keys.items()},
    }
    typer.echo(json.dumps(summary))


@app.command("keygen")
def keygen_command(
    collaboration: Annotated[str, typer.Argument(help="collaboration name")],
    keyring: KeyringOption,
) -> None:
    """Create the collaboration key ``link:<collaboration>`` (keyring created if absent)."""
    try:
        version = _keyring(keyring, create=True).create(f"link:{collaboration}")
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(f"link:{collaboration} version {version}")


@app.command("rotate")
def rotate_command(
    collaboration: Annotated[str, typer.Argument(help="collaboration name")],
    keyring: KeyringOption,
) -> None:
    """Add a new current version of the collaboration key (re-prepare files with it)."""
    try:
        version = _keyring(keyring).rotate(f"link:{collaboration}")
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(f"link:{collaboration} version {version}")


@app.command("destroy")
def destroy_command(
    collaboration: Annotated[str, typer.Argument(help="collaboration name")],
    version: Annotated[int, typer.Option("--version", help="the version to erase for good")],
    keyring: KeyringOption,
) -> None:
    """Erase one old version: tokens made with it can never be recomputed."""
    try:
        _keyring(keyring).destroy(f"link:{collaboration}", version)
    except CollabzoneError as error:
        raise _fail(error) from None
    typer.echo(f"link:{collaboration} version {version} destroyed")
