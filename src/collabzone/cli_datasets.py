"""`collabzone dataset ...` and `collabzone agreement ...`: an owner's data and the
agreements it signs on it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from collabzone.cli_context import console, err_console, json_arg, open_zone, print_json
from collabzone.cli_support import ingest_progress
from collabzone.errors import InvalidInputError

dataset_app = typer.Typer(help="Datasets (ingest, list, remove).", no_args_is_help=True)
agreement_app = typer.Typer(help="Agreements owners sign on their datasets.", no_args_is_help=True)


@dataset_app.command("add")
def dataset_add(
    name: str,
    source: Path,
    spec: Annotated[
        Path | None, typer.Option(help="YAML/TOML spec declaring every column.")
    ] = None,
    column: Annotated[
        list[str] | None, typer.Option("--column", "-c", help="name:type:class (repeatable).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the dataset holds.")] = None,
    no_header: Annotated[
        bool,
        typer.Option(
            "--no-header", help="The file has no header line: its columns are the spec's, in order."
        ),
    ] = False,
) -> None:
    """Ingest a CSV or Parquet file (all or nothing) as one of your datasets."""
    from collabzone.ingest import load_spec_document

    if spec is None and not column:
        raise InvalidInputError("declare the columns with --spec FILE or --column name:type:class")
    if not source.is_file():
        raise InvalidInputError(f"{source}: no such file")
    spec_source: Any = spec
    if spec is not None and no_header:
        spec_source = {**load_spec_document(spec), "header": False}
    if spec is None:
        columns = []
        for item in column or []:
            parts = item.split(":")
            if len(parts) != 3:
                raise InvalidInputError(f"--column {item!r} must be name:type:class")
            columns.append({"name": parts[0], "type": parts[1], "class": parts[2]})
        spec_source = {"columns": columns, **({"header": False} if no_header else {})}
    zone = open_zone()
    with ingest_progress(err_console, source.stat().st_size, source.name) as progress:
        dataset = zone.add_dataset(
            name, source, spec_source, description, progress=progress, notice=_notice
        )
    console.print(
        f"dataset {dataset.name} v{dataset.version}: {dataset.row_count} rows, {len(dataset.columns)} columns"
    )


@dataset_app.command("add-remote")
def dataset_add_remote(
    name: str,
    spec: Annotated[Path, typer.Option(help="YAML/TOML/JSON spec declaring every column.")],
    table: Annotated[
        str | None, typer.Option(help="The table: schema.table (PostgreSQL, Spark catalogue).")
    ] = None,
    postgres: Annotated[
        str | None,
        typer.Option(
            envvar="COLLABZONE_WAREHOUSE_URL",
            show_default=False,
            help="postgresql://role:password@host/db of a read-only role (better from the "
            "environment variable, out of the shell history); sealed, never shown back.",
        ),
    ] = None,
    spark: Annotated[
        str | None,
        typer.Option(
            envvar="COLLABZONE_SPARK_MASTER",
            show_default=False,
            help="Spark master: local[n], spark://host:7077 or sc://host:15002 (sealed).",
        ),
    ] = None,
    path: Annotated[str | None, typer.Option(help="A Parquet path Spark reads.")] = None,
    description: Annotated[str | None, typer.Option(help="What the dataset holds.")] = None,
) -> None:
    """Register a warehouse table as a dataset left where it lives (governed SQL runs there)."""
    if not spec.is_file():
        raise InvalidInputError(f"{spec}: no such file")
    dataset = open_zone().add_remote_dataset(
        name, spec, postgres=postgres, table=table, spark=spark, path=path,
        description=description,
    )  # fmt: skip
    where = "a Spark source" if spark is not None and postgres is None else "a PostgreSQL table"
    console.print(
        f"dataset {dataset.name}: {where} of {dataset.row_count} rows, "
        f"{len(dataset.columns)} columns (left in the warehouse)"
    )


def _notice(text: str) -> None:
    """Something the zone skipped without refusing (blank lines): said on stderr."""
    err_console.print(f"[yellow]note:[/] {escape(text)}", highlight=False, soft_wrap=True)


@dataset_app.command("list")
def dataset_list() -> None:
    """Datasets you own or that are shared with you."""
    table = Table("dataset", "owner", "version", "columns")
    for d in open_zone().datasets():
        table.add_row(
            d.name,
            d.owner,
            str(d.version),
            ", ".join(f"{c.name}({c.column_class.value})" for c in d.columns),
        )
    console.print(table)


@dataset_app.command("remove")
def dataset_remove(name: str) -> None:
    """Delete one of your datasets and its data."""
    open_zone().remove_dataset(name)
    console.print(f"dataset {name} removed")


@agreement_app.command("add")
def agreement_add(
    dataset: str,
    grantee: Annotated[
        list[str], typer.Option("--grantee", "-g", help="Party or role:<role> (repeatable).")
    ],
    technique: Annotated[str, typer.Option(help="Technique allowed.")],
    purpose: Annotated[
        list[str], typer.Option("--purpose", "-p", help="Allowed purpose (repeatable; '*' any).")
    ],
    rules: Annotated[
        str | None, typer.Option(help="Rule parameters as JSON (or @file.json).")
    ] = None,
    manual: Annotated[
        bool, typer.Option("--manual", help="Requests wait for your approval.")
    ] = False,
    valid_until: Annotated[str | None, typer.Option(help="Expiry, ISO 8601 with timezone.")] = None,
) -> None:
    """Sign an agreement on one of your datasets."""
    until = None
    if valid_until:
        try:
            until = dt.datetime.fromisoformat(valid_until)
        except ValueError:
            raise InvalidInputError(
                "--valid-until must be ISO 8601, e.g. 2027-01-01T00:00:00+00:00"
            ) from None
    agreement = open_zone().add_agreement(
        dataset,
        grantees=grantee,
        technique=technique,
        purposes=purpose,
        rules=json_arg(rules, "--rules"),
        approval="manual" if manual else "auto",
        valid_until=until,
    )
    console.print(f"agreement {agreement.id} on {dataset}: {technique} for {', '.join(grantee)}")


@agreement_app.command("show")
def agreement_show(agreement_id: Annotated[str | None, typer.Argument()] = None) -> None:
    """Agreements governing data you touch (or one of them)."""
    zone = open_zone()
    items = [zone.agreement(agreement_id)] if agreement_id else zone.agreements()
    print_json([json.loads(a.model_dump_json()) for a in items])


@agreement_app.command("revoke")
def agreement_revoke(agreement_id: str, reason: Annotated[str, typer.Option(help="Why.")]) -> None:
    """Revoke one of your agreements now."""
    open_zone().revoke_agreement(agreement_id, reason)
    console.print(f"agreement {agreement_id} revoked")
