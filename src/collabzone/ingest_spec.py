"""The dataset spec: what an owner declares about a file before it is ingested.

Every column's name, type, class and optional value domain, and how to read the file
(delimiter, header line or not, spaces around fields) within which limits. A spec is a dict
or a YAML / TOML file; :func:`parse_spec` validates it whole (unknown limits, duplicate
names and identifier columns are errors) in time linear in its columns.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from collabzone.errors import InvalidInputError
from collabzone.model import Column, ColumnClass, ColumnType


@dataclass(frozen=True)
class Limits:
    """Upper bounds an ingest refuses to cross (protect the zone from huge uploads)."""

    max_rows: int = 50_000_000
    max_columns: int = 500
    max_file_bytes: int = 10 * 1024**3
    max_string_length: int = 4096
    max_line_bytes: int = 1 << 20


@dataclass(frozen=True)
class DatasetSpec:
    """What the owner declares about a file before it is ingested."""

    columns: tuple[Column, ...]
    description: str = ""
    delimiter: str = ","
    limits: Limits = field(default_factory=Limits)
    header: bool = True
    strip_spaces: bool = False


def duplicate_names(names: list[str]) -> list[str]:
    """Names given more than once, sorted (linear: 1e5 columns must not take minutes)."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def load_spec_document(source: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """The spec as a plain dict, from a dict or a YAML/TOML file (not yet validated)."""
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"cannot read spec file {path}: {exc}") from None
        try:
            doc = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise InvalidInputError(
                f"spec file {path} is not valid {path.suffix[1:] or 'YAML'}: {exc}"
            ) from None
    else:
        doc = dict(source)
    if not isinstance(doc, Mapping):
        raise InvalidInputError(
            "a dataset spec needs a non-empty list `columns` of {name, type, class}"
        )
    return dict(doc)


def parse_spec(source: Mapping[str, Any] | str | Path) -> DatasetSpec:
    """Read a dataset spec from a dict, or a YAML/TOML file path."""
    doc = load_spec_document(source)
    if (
        not isinstance(doc, Mapping)
        or not isinstance(doc.get("columns"), list)
        or not doc["columns"]
    ):
        raise InvalidInputError(
            "a dataset spec needs a non-empty list `columns` of {name, type, class}"
        )
    columns = []
    for i, raw in enumerate(doc["columns"], start=1):
        if not isinstance(raw, Mapping):
            raise InvalidInputError(
                f"column {i} of the spec must be a mapping with name, type and class"
            )
        try:
            columns.append(Column.model_validate(dict(raw)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            allowed = ""
            if where == "class":
                allowed = f" (known classes: {', '.join(c.value for c in ColumnClass)})"
            elif where == "type":
                allowed = f" (known types: {', '.join(c.value for c in ColumnType)})"
            name = raw.get("name", f"#{i}")
            raise InvalidInputError(
                f"spec column {name!r}: {where}: {first['msg']}{allowed}"
            ) from None
    names = [c.name for c in columns]
    dupes = duplicate_names(names)
    if dupes:
        raise InvalidInputError(f"the spec declares column(s) {', '.join(dupes)} twice")
    for column in columns:
        if column.column_class is ColumnClass.IDENTIFIER:
            raise InvalidInputError(
                f"column {column.name!r} is class identifier: direct identifiers never enter the "
                "zone; tokenise it at your premises with `collabzone link prepare` (class join_key) "
                "or drop it"
            )
    limits_doc = doc.get("limits", {})
    known = set(Limits.__dataclass_fields__)
    if not isinstance(limits_doc, Mapping) or set(limits_doc) - known:
        raise InvalidInputError(f"the spec's limits take only {', '.join(sorted(known))}")
    limits = Limits(**limits_doc)
    delimiter = str(doc.get("delimiter", ","))
    if len(delimiter) != 1:
        raise InvalidInputError("the spec's delimiter must be a single character")
    header = doc.get("header", True)
    if not isinstance(header, bool):
        raise InvalidInputError("the spec's header must be true or false")
    strip_spaces = doc.get("strip_spaces", False)
    if not isinstance(strip_spaces, bool):
        raise InvalidInputError("the spec's strip_spaces must be true or false")
    return DatasetSpec(
        tuple(columns), str(doc.get("description", "")), delimiter, limits, header, strip_spaces
    )
