"""``collabzone sealed ...``: upload sealed code, show its manifest, run it.

    collabzone sealed upload rules.py --name bank_preapproval --entry preapprove \
        --input customers=partner_customers:link_email,age,income --output token=string \
        --cpu 10 --memory 256 --wall 30
    collabzone sealed show bank_preapproval          # the manifest others approve
    collabzone sealed run bank_preapproval --purpose credit

Mounted by :mod:`collabzone.cli_plugins`; the zone is imported inside each command.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="sealed",
    help="Sealed code: your module runs on a partner's data; they approve its hash, not its code.",
    no_args_is_help=True,
)


def _pairs(values: list[str], what: str) -> dict[str, str]:
    from collabzone.errors import InvalidInputError

    out: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise InvalidInputError(f"{what} must look like name=value, got {value!r}")
        out[key] = rest
    return out


@app.command("upload")
def upload_command(
    module: Annotated[Path, typer.Argument(help="the Python module (stays sealed in the zone)")],
    name: Annotated[str, typer.Option(help="name of the sealed module in the zone")],
    entry: Annotated[str, typer.Option(help="function called with the inputs")],
    input_: Annotated[list[str], typer.Option("--input", help="alias=dataset:col1,col2 (repeat)")],
    output: Annotated[list[str], typer.Option(help="column=type of returned rows (repeat)")],
    cpu: Annotated[int, typer.Option(help="CPU seconds")] = 10,
    memory: Annotated[int, typer.Option(help="memory in MB")] = 256,
    wall: Annotated[float, typer.Option(help="wall seconds")] = 30.0,
) -> None:
    """Seal MODULE in the zone; print the manifest (with the code hash) to send for approval."""
    from collabzone import cli_context as cli
    from collabzone.cli_support import write_data
    from collabzone.errors import InvalidInputError
    from collabzone.techniques.sealed import Limits, make_manifest, upload

    inputs = {}
    for alias, target in _pairs(input_, "--input").items():
        dataset, sep, columns = target.partition(":")
        if not sep or not columns:
            raise InvalidInputError(f"--input {alias} must be dataset:col1,col2")
        inputs[alias] = (dataset, tuple(columns.split(",")))
    code = module.read_text(encoding="utf-8")
    manifest = make_manifest(code, entry, inputs, _pairs(output, "--output"),
                             Limits(cpu_seconds=cpu, memory_mb=memory, wall_seconds=wall))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        upload(cli.open_zone(), name, code, manifest, Path(tmp))
    write_data(json.dumps(json.loads(manifest.to_json()), indent=2))


@app.command("show")
def show_command(name: Annotated[str, typer.Argument(help="sealed module name")]) -> None:
    """The manifest of a sealed module (never its code)."""
    from collabzone import cli_context as cli
    from collabzone.cli_support import write_data
    from collabzone.techniques.sealed import parse_manifest

    dataset = next((d for d in cli.open_zone().datasets() if d.name == name), None)
    if dataset is None:
        typer.echo(f"error: no sealed module {name!r} visible to you", err=True)
        raise typer.Exit(1)
    write_data(
        json.dumps(json.loads(parse_manifest(dataset.description or "").to_json()), indent=2)
    )


@app.command("run")
def run_command(
    name: Annotated[str, typer.Argument(help="sealed module name")],
    purpose: Annotated[str, typer.Option(help="why (checked against agreements)")],
) -> None:
    """Submit the sealed job; once the data owner approves, it runs isolated."""
    from collabzone import cli_context as cli
    from collabzone.cli_support import exit_code_for, write_data

    zone = cli.open_zone()
    request = zone.submit("sealed", {"module": name}, purpose)
    assert not isinstance(request, dict)
    cli.show_request(request)
    if request.status.value == "released":
        write_data(json.dumps(dict(zone.result(request.id).payload), indent=2))
    elif request.status.value not in ("awaiting_approval", "approved", "running"):
        raise typer.Exit(exit_code_for(request))
