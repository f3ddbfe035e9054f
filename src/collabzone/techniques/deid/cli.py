"""``collabzone deid``: de-identify a file at the provider's premises, with no zone.

``collabzone deid run CONFIG`` reads the input file the config names (CSV or Parquet),
applies the pre-steps and the privacy model, and writes the de-identified file and a
JSON report. Paths in the config are relative to the config file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from collabzone.errors import CollabzoneError, InvalidInputError, error_info
from collabzone.techniques.deid._config import DeidConfig, load_config
from collabzone.techniques.deid._engine import deidentify

app = typer.Typer(help="De-identification at the data owner's premises (no zone needed).")
KEY_ENV = "COLLABZONE_DEID_KEY"


def read_table(path: Path, delimiter: str) -> pa.Table:
    """Read CSV (any delimiter) or Parquet; every CSV column stays as parsed by Arrow."""
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter))
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidInputError(f"cannot read {path}: {type(exc).__name__}") from None


def write_table(table: pa.Table, path: Path, delimiter: str) -> None:
    """Write CSV or Parquet atomically (temporary file then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        pq.write_table(table, tmp)
    else:
        pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(delimiter=delimiter))
    os.replace(tmp, path)


def _key() -> bytes | None:
    value = os.environ.get(KEY_ENV)
    return value.encode("utf-8") if value else None


def run_config(
    config: DeidConfig,
    base: Path,
    console: Console | None = None,
    html_path: Path | None = None,
    target: str | None = None,
) -> dict[str, object]:
    """Run a loaded config (paths relative to ``base``); return the report. With
    ``html_path``, also write the visual report there (PNGs beside it)."""
    if not config.input or not config.output or not config.report:
        raise InvalidInputError("the config must name input, output and report files")
    table = read_table(base / config.input, config.delimiter)
    references = {
        spec.reference: read_table(base / spec.reference, config.delimiter)
        for spec in config.prepare.enrich
    }
    population = (
        read_table(base / config.population, config.delimiter) if config.population else None
    )
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
        disable=console is None,
    ) as bar:
        task = bar.add_task("de-identifying", total=None)
        diagnostics: dict[str, object] | None = {} if html_path is not None else None
        released, report = deidentify(
            table,
            config,
            references=references,
            pseudonym_key=_key(),
            population=population,
            base_dir=base,
            progress=lambda step: bar.update(task, description=step),
            diagnostics=diagnostics,
        )
        if html_path is not None and diagnostics is not None:
            from collabzone.techniques.deid._html import write_html

            bar.update(task, description="drawing the report")
            write_html(html_path, report, diagnostics, released, target)
    write_table(released, base / config.output, config.delimiter)
    report_path = base / config.report
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return report


CONFIG_ARG = typer.Argument(..., help="YAML or TOML de-identification config")
HTML_OPT = typer.Option(None, "--html", help="also write a visual HTML report (PNGs beside it)")
TARGET_OPT = typer.Option(
    None, "--target", help="with --html: a released column to compare classifiers on"
)


@app.command("run")
def run(
    config: Path = CONFIG_ARG, html: Path | None = HTML_OPT, target: str | None = TARGET_OPT
) -> None:
    """De-identify the config's input file; write the output file and the JSON report."""
    console = Console(stderr=True)
    try:
        cfg = load_config(config)
        if target is not None and html is None:
            raise InvalidInputError("--target compares classifiers in the HTML report: add --html")
        report = run_config(cfg, config.resolve().parent, console, html, target)
    except CollabzoneError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(error_info(exc).exit_code) from None
    console.print(
        f"released {report['rows_out']} rows in {report['equivalence_classes']} classes "
        f"(smallest {report['min_class_size']}, {report['suppressed_rows']} suppressed); "
        f"transformation {report['transformation']}"
    )


@app.command("check")
def check(config: Path = CONFIG_ARG) -> None:
    """Validate a config without reading any data."""
    console = Console(stderr=True)
    try:
        load_config(config)
    except CollabzoneError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(error_info(exc).exit_code) from None
    console.print("config is valid")
