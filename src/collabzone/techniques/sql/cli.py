"""``collabzone query``: ask a governed SQL question (or price it with ``--dry-run``).

collabzone query "SELECT segment, COUNT(*) FROM bank GROUP BY segment" --purpose marketing
collabzone query "SELECT ..." --purpose p --epsilon 0.5 --format csv --out result.csv
collabzone query --template conversion --params '{"min_age": 30}' --purpose p --dry-run

With ``--format csv`` or ``json`` stdout carries the data only (the request line, reasons
and protections go to stderr), so ``> file`` and ``| jq`` work. Every argument is checked
before the request is submitted: a mistake never costs budget.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

FORMATS = ("table", "csv", "parquet", "json")


def _check_output(output: str, out: Path | None) -> None:
    """Refuse a bad ``--format`` / ``--out`` pair before anything is submitted or charged."""
    from collabzone.errors import InvalidInputError

    if output not in FORMATS:
        raise InvalidInputError(f"--format must be one of {', '.join(FORMATS)}, not {output!r}")
    if output == "parquet" and out is None:
        raise InvalidInputError("--format parquet needs --out FILE")
    if out is None:
        return
    if output == "table":
        raise InvalidInputError("--out needs --format csv, json or parquet")
    if out.is_dir():
        raise InvalidInputError(f"--out {out} is a directory: name a file")
    if not out.parent.is_dir():
        raise InvalidInputError(f"--out {out}: folder {out.parent} does not exist")


def _write_file(out: Path, write: Any) -> None:
    """Write ``out`` through a temporary file and a rename: never half a result."""
    import os

    tmp = out.with_name(f".{out.name}.part")
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


app = typer.Typer(
    help="Governed SQL over shared datasets (aggregates, lists, templates, DP).",
    # a group with no sub-commands: let options follow the SQL argument
    context_settings={"allow_interspersed_args": True},
)


def _spec(
    sql: str | None,
    template: str | None,
    params: str | None,
    analysis: str | None,
    epsilon: float | None,
    rho: float | None,
    delta: float | None,
) -> dict[str, Any]:
    from collabzone.errors import InvalidInputError

    spec: dict[str, Any] = {}
    if sql:
        spec["sql"] = sql
    if template:
        spec["template"] = template
        try:
            spec["params"] = json.loads(params) if params else {}
        except json.JSONDecodeError:
            raise InvalidInputError("--params must be a JSON object") from None
    for key, value in (
        ("analysis", analysis),
        ("epsilon", epsilon),
        ("rho", rho),
        ("delta", delta),
    ):
        if value is not None:
            spec[key] = value
    return spec


@app.callback(invoke_without_command=True)
def query(
    sql: Annotated[str | None, typer.Argument(help="One SELECT over shared datasets.")] = None,
    purpose: Annotated[str, typer.Option(help="Why you ask (checked against agreements).")] = "",
    template: Annotated[str | None, typer.Option(help="A pre-approved report's name.")] = None,
    params: Annotated[str | None, typer.Option(help="Template parameters as JSON.")] = None,
    analysis: Annotated[str | None, typer.Option(help="aggregation, list or dp.")] = None,
    epsilon: Annotated[float | None, typer.Option(help="DP budget for this query.")] = None,
    rho: Annotated[float | None, typer.Option(help="zCDP budget for this query.")] = None,
    delta: Annotated[float | None, typer.Option(help="DP delta (partition selection).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Price it: what it touches and costs.")] = False,
    output: Annotated[str, typer.Option("--format", help="table, csv, parquet or json.")] = "table",
    out: Annotated[Path | None, typer.Option(help="File for csv / json / parquet output.")] = None,
) -> None:
    """Submit a governed SQL request and show what was released, suppressed and spent."""
    from collabzone import cli_context as cli
    from collabzone.cli_support import exit_code_for, write_data
    from collabzone.techniques.sql._payload import render, summary, to_csv, to_parquet

    _check_output(output, out)
    spec = _spec(sql, template, params, analysis, epsilon, rho, delta)
    zone = cli.open_zone()
    if dry_run:
        write_data(
            json.dumps(zone.submit("sql", spec, purpose, dry_run=True), indent=2, default=str)
        )
        return
    request = zone.submit("sql", spec, purpose)
    assert not isinstance(request, dict)
    data_only = output != "table"
    cli.show_request(request, to=cli.err_console if data_only else cli.console)
    if request.status.value != "released":
        raise typer.Exit(exit_code_for(request))
    release = zone.result(request.id)
    payload = dict(release.payload)
    receipt = release.receipt
    payload.setdefault("spent", receipt.budget_spent)
    if output == "table":
        cli.console.print(render(payload))
        cli.console.print(f"remaining budget: {receipt.budget_remaining}")
        return
    if output == "json":
        text = json.dumps(
            {"payload": payload, "receipt": receipt.model_dump(mode="json")}, default=str
        )
        if out is None:
            write_data(text)
        else:
            _write_file(out, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    elif output == "csv":
        if out is None:
            write_data(to_csv(payload))
        else:
            _write_file(out, lambda tmp: tmp.write_text(to_csv(payload), encoding="utf-8"))
    else:
        assert out is not None
        _write_file(out, lambda tmp: to_parquet(payload, str(tmp)))
    for line in summary(payload):
        cli.err_console.print(line, markup=False, highlight=False)
    if out is not None:
        cli.err_console.print(f"written to {out}", markup=False, highlight=False)
