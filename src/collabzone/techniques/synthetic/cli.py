"""``collabzone synth run|report``: DP synthetic data on a local file, and its report.

``run`` fits MST (or AIM) to a CSV on the owner's machine (the column domains come from a dataset
spec, never from the data) and writes the synthetic CSV. In a zone, ask for a synthetic
dataset with ``collabzone request submit synthetic --spec '{"dataset": ..., "epsilon": 1}'``.
``report`` compares a synthetic CSV with the real one (and a control set the generator
never saw, for the privacy attacks) and writes report.html, report.json and PNGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="synth",
    help="DP synthetic data (MST, AIM or PrivBayes) and its fidelity/privacy report.",
    no_args_is_help=True,
)


def _domains(spec: Path) -> dict[str, Any]:
    from collabzone import ingest

    parsed = ingest.parse_spec(spec)
    return {
        c.name: c.domain
        for c in parsed.columns
        if c.column_class.value not in ("identifier", "join_key")
    }


@app.command("run")
def run(
    data: Annotated[Path, typer.Argument(help="the real table (CSV)")],
    spec: Annotated[
        Path, typer.Option(help="dataset spec (YAML/TOML) declaring every column's domain")
    ],
    out: Annotated[Path, typer.Option(help="where to write the synthetic CSV")],
    epsilon: Annotated[float, typer.Option(help="privacy budget epsilon")] = 1.0,
    delta: Annotated[float, typer.Option(help="privacy budget delta")] = 1e-6,
    bins: Annotated[int, typer.Option(help="bins per numeric column")] = 16,
    iters: Annotated[int, typer.Option(help="Private-PGM iterations")] = 500,
    method: Annotated[str, typer.Option(help="mst, aim or privbayes (pure epsilon)")] = "mst",
    seed: Annotated[
        int | None, typer.Option(help="seed of the sampling (not of the noise)")
    ] = None,
    degree: Annotated[
        int | None,
        typer.Option(help="AIM: largest marginal measured (2-3); PrivBayes: parents (1-3)"),
    ] = None,
    max_cells: Annotated[
        int | None, typer.Option(help="AIM: most cells of a workload marginal")
    ] = None,
    max_model_size: Annotated[
        float | None, typer.Option(help="AIM: largest graphical model, in MB")
    ] = None,
) -> None:
    """Fit MST or AIM under (epsilon, delta)-DP, or PrivBayes under epsilon-DP, to DATA
    and write a synthetic table. The row count is the owner's own (the file is theirs)."""
    import numpy as np
    import pandas as pd

    from collabzone.budget import privacy_parameter
    from collabzone.errors import CollabzoneError
    from collabzone.techniques.synthetic.aim import aim
    from collabzone.techniques.synthetic.encode import table_codec
    from collabzone.techniques.synthetic.mst import mst
    from collabzone.techniques.synthetic.privbayes import privbayes
    from collabzone.techniques.synthetic.technique import METHODS, method_options, rho_for

    if method not in METHODS:
        raise typer.BadParameter(f"--method must be mst, aim or privbayes, not {method!r}")
    given = {"degree": degree, "max_cells": max_cells, "max_model_size": max_model_size}
    try:
        options = method_options({k: v for k, v in given.items() if v is not None}, method)
        epsilon = privacy_parameter("epsilon", epsilon)
        rho = rho_for(epsilon, privacy_parameter("delta", delta))
        domains = _domains(spec)
        codec = table_codec(domains, bins=bins)
        frame = pd.read_csv(data)
        missing = [c for c in domains if c not in frame.columns]
        if missing:
            raise typer.BadParameter(f"{data} lacks the spec's columns {missing}")
        codes = codec.encode(frame)
        if method == "privbayes":  # pure epsilon; --delta is not used
            result: Any = privbayes(
                codes, codec.shape, epsilon, max_rows=len(frame), seed=seed, **options
            )
        else:
            generate = aim if method == "aim" else mst
            result = generate(codes, codec.shape, rho, iters=iters, seed=seed, **options)
    except CollabzoneError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    codec.decode(result.codes, np.random.default_rng(seed)).to_csv(out, index=False)
    typer.echo(
        f"wrote {out}: {'epsilon' if method == 'privbayes' else 'rho'} {result.spend.rho:.6g} over {len(result.spend.parts)} OpenDP measurements"
    )


@app.command("report")
def report(
    real: Annotated[Path, typer.Argument(help="the real table the generator was fitted to (CSV)")],
    synthetic: Annotated[Path, typer.Argument(help="the synthetic table (CSV)")],
    spec: Annotated[Path, typer.Option(help="dataset spec declaring every column's domain")],
    out: Annotated[Path, typer.Option(help="directory for report.html, report.json, PNGs")],
    control: Annotated[
        Path | None, typer.Option(help="real rows the generator never saw (privacy attacks)")
    ] = None,
    holdout: Annotated[Path | None, typer.Option(help="real hold-out for ML efficacy")] = None,
    target: Annotated[str | None, typer.Option(help="column to predict for ML efficacy")] = None,
    bins: Annotated[int, typer.Option(help="bins per numeric column")] = 16,
    attacks: Annotated[int, typer.Option(help="attacks per privacy test")] = 200,
) -> None:
    """Fidelity (and, with --control, privacy) report of SYNTHETIC against REAL."""
    import pandas as pd

    from collabzone.attacks.synthetic_data import privacy_report
    from collabzone.techniques.synthetic.encode import table_codec
    from collabzone.techniques.synthetic.fidelity import fidelity_report, ml_efficacy
    from collabzone.techniques.synthetic.report import write_report

    codec = table_codec(_domains(spec), bins=bins)
    names = [c.name for c in codec.columns]
    real_frame, syn_frame = pd.read_csv(real)[names], pd.read_csv(synthetic)[names]
    real_codes, syn_codes = codec.encode(real_frame), codec.encode(syn_frame)
    fidelity = fidelity_report(real_codes, syn_codes, codec.shape)
    if holdout is not None and target is not None:
        fidelity.update(ml_efficacy(real_frame, syn_frame, pd.read_csv(holdout)[names], target))
    privacy = None
    if control is not None:
        ctl = pd.DataFrame(codec.encode(pd.read_csv(control)[names])).astype(str)
        privacy = privacy_report(
            pd.DataFrame(real_codes).astype(str),
            pd.DataFrame(syn_codes).astype(str),
            ctl,
            secret=target,
            n_attacks=attacks,
        )
    path = write_report(out, fidelity, privacy, real_codes, syn_codes, codec.shape)
    typer.echo(f"wrote {path}")
