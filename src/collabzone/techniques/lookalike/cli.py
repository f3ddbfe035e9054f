"""``collabzone lookalike ...``: ask for a look-alike audience, or fetch the one delivered.

    collabzone lookalike run --seed bank_seed --label bought --features partner_customers \
        --model gradient_boosting --size 500 --label-epsilon 1 --purpose marketing
    collabzone lookalike run ... --model sealed:<code sha256> --quality-epsilon 1   # own model
    collabzone lookalike audience REQUEST_ID --out audience.csv      # the partner

Mounted by :mod:`collabzone.cli_plugins`; the zone is imported inside each command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="lookalike",
    help="Look-alike audiences: your seed labels, a partner's customers, its own audience.",
    no_args_is_help=True,
)


@app.command("run")
def run_command(
    seed: Annotated[str, typer.Option(help="your seed dataset (link_<key> + a label column)")],
    label: Annotated[str, typer.Option(help="the label column of the seed")],
    features: Annotated[str, typer.Option(help="the partner's dataset of features")],
    size: Annotated[int, typer.Option(help="audience size wanted")],
    purpose: Annotated[str, typer.Option(help="why you ask (checked against agreements)")],
    model: Annotated[
        str,
        typer.Option(
            help="logistic_regression, gradient_boosting, or sealed:<code sha256> (your "
            "sealed module)"
        ),
    ] = "logistic_regression",
    label_epsilon: Annotated[
        float | None, typer.Option(help="protect labels by randomized response (epsilon)")
    ] = None,
    quality_epsilon: Annotated[
        float | None, typer.Option(help="DP noise on the AUC / lift you receive (epsilon)")
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="minimum score (0-1)")] = None,
    column: Annotated[
        list[str] | None, typer.Option("--column", help="feature column (repeat; default all)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="show what it touches and costs")] = False,
) -> None:
    """Train on the overlap and deliver the audience to the partner; show size and quality."""
    from collabzone import cli_context as cli
    from collabzone.cli_support import exit_code_for, write_data

    spec: dict[str, Any] = {"seed": seed, "label": label, "features": features,
                            "audience_size": size, "model": model}  # fmt: skip
    if model.startswith("sealed:"):
        spec["model"] = {"sealed": model.removeprefix("sealed:")}
    if label_epsilon is not None:
        spec["label_epsilon"] = label_epsilon
    if quality_epsilon is not None:
        spec["quality_epsilon"] = quality_epsilon
    if threshold is not None:
        spec["score_threshold"] = threshold
    if column:
        spec["columns"] = list(column)
    zone = cli.open_zone()
    if dry_run:
        write_data(json.dumps(zone.submit("lookalike", spec, purpose, dry_run=True), default=str))
        return
    request = zone.submit("lookalike", spec, purpose)
    assert not isinstance(request, dict)
    cli.show_request(request)
    if request.status.value != "released":
        raise typer.Exit(exit_code_for(request))
    write_data(json.dumps(dict(zone.result(request.id).payload), indent=2))


@app.command("audience")
def audience_command(
    request_id: Annotated[str, typer.Argument(help="the look-alike request")],
    out: Annotated[Path | None, typer.Option(help="CSV file (default: stdout)")] = None,
) -> None:
    """The audience delivered to you (the partner) as your own tokens, one per line."""
    from collabzone import cli_context as cli
    from collabzone.cli_support import write_data

    payload = dict(cli.open_zone().result(request_id).payload)
    rows = payload.get("audience", {}).get("rows")
    if rows is None:
        typer.echo("no audience is addressed to you in this request", err=True)
        raise typer.Exit(1)
    text = "token\n" + "".join(f"{r[0]}\n" for r in rows)
    if out is None:
        write_data(text.rstrip("\n"))
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(rows)} tokens written to {out}", err=True)
