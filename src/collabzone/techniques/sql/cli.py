"""``collabzone query``: ask a governed SQL question (or price it with ``--dry-run``).

collabzone query "SELECT segment, COUNT(*) FROM bank GROUP BY segment" --purpose marketing
collabzone query "SELECT ..." --purpose p --epsilon 0.5 --format csv --out result.csv
collabzone query --template conversion --params '{"min_age": 30}' --purpose p --dry-run
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

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
    out: Annotated[Path | None, typer.Option(help="File for csv / parquet output.")] = None,
) -> None:
    """Submit a governed SQL request and show what was released, suppressed and spent."""
    from collabzone import cli
    from collabzone.errors import InvalidInputError
    from collabzone.techniques.sql._payload import render, summary, to_csv, to_parquet

    spec = _spec(sql, template, params, analysis, epsilon, rho, delta)
    zone = cli._zone()
    if dry_run:
        cli._print_json(zone.submit("sql", spec, purpose, dry_run=True))
        return
    request = zone.submit("sql", spec, purpose)
    assert not isinstance(request, dict)
    cli._show_request(request)
    if request.status.value != "released":
        raise typer.Exit(7 if request.status.value == "refused" else 0)
    release = zone.result(request.id)
    payload = dict(release.payload)
    receipt = release.receipt
    payload.setdefault("spent", receipt.budget_spent)
    if output == "table":
        cli.console.print(render(payload))
        cli.console.print(f"remaining budget: {receipt.budget_remaining}")
    elif output == "json":
        cli._print_json({"payload": payload, "receipt": receipt.model_dump(mode="json")})
    elif output in ("csv", "parquet"):
        if output == "parquet" and out is None:
            raise InvalidInputError("--format parquet needs --out FILE")
        if output == "parquet":
            assert out is not None
            to_parquet(payload, str(out))
        elif out is not None:
            out.write_text(to_csv(payload), encoding="utf-8")
        else:
            cli.console.print(to_csv(payload), markup=False)
        for line in summary(payload):
            cli.err_console.print(line, markup=False)
    else:
        raise InvalidInputError("--format must be table, csv, parquet or json")
