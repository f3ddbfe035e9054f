"""The common ID structure: which identifier fields exist and which match keys link them.

A :class:`LinkSpec` names the raw identifier *fields* of a provider's file (column,
normaliser, options) and the *match keys* in priority order (``email``; ``phone``;
``name + dob + postcode``). Each record gets one token per match key (null if any of the
key's fields is missing or invalid); the overlap technique links records on the best key
both sides have (the cascade). Every provider of a collaboration uses the same match keys
and normalisers, so equal people get equal tokens; column names may differ per provider.

Example (YAML)::

    collaboration: bank-retail
    zone: demo
    fields:
      email: {column: Email, normaliser: email, options: {rules: gmail}}
      phone: {column: Mobile, normaliser: phone, options: {region: GB}}
      name: {column: FullName, normaliser: name}
      dob: {column: DOB, normaliser: dob, options: {order: DMY}}
      postcode: {column: PostCode, normaliser: postcode, options: {country: GB}}
    match_keys:
      - {name: email, fields: [email]}
      - {name: phone, fields: [phone]}
      - {name: name_dob_postcode, fields: [name, dob, postcode]}
    drop: [Address]
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collabzone.errors import InvalidInputError
from collabzone.techniques.linking._normalise import make_normaliser

TOKEN_PREFIX = "link_"
"""Output column of match key ``k`` is ``link_<k>`` (class ``join_key``)."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class FieldSpec(BaseModel):
    """One raw identifier column and how to normalise it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    normaliser: str
    options: dict[str, Any] = Field(default_factory=dict)


class MatchKey(BaseModel):
    """A match key: the fields whose normalised values together identify a person."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    fields: tuple[str, ...]

    @property
    def column(self) -> str:
        return f"{TOKEN_PREFIX}{self.name}"


class LinkSpec(BaseModel):
    """A collaboration's common ID structure (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    collaboration: str
    zone: str = "default"
    mode: Literal["hmac", "oprf"] = "hmac"
    fields: dict[str, FieldSpec]
    match_keys: tuple[MatchKey, ...]
    drop: tuple[str, ...] = ()
    """Further raw columns to drop (direct identifiers that are not match fields)."""

    @model_validator(mode="after")
    def _consistent(self) -> LinkSpec:
        if not self.match_keys:
            raise ValueError("name at least one match key")
        for name in (*self.fields, *(k.name for k in self.match_keys)):
            if not _NAME.match(name):
                raise ValueError(f"name {name!r} must be lowercase letters, digits, underscores")
        seen: set[str] = set()
        for key in self.match_keys:
            if key.name in seen:
                raise ValueError(f"match key {key.name!r} appears twice")
            seen.add(key.name)
            if not key.fields:
                raise ValueError(f"match key {key.name!r} has no fields")
            unknown = [f for f in key.fields if f not in self.fields]
            if unknown:
                raise ValueError(f"match key {key.name!r} uses undeclared fields {unknown}")
        columns = [f.column for f in self.fields.values()]
        if len(set(columns)) != len(columns):
            raise ValueError("two fields read the same column")
        for field in self.fields.values():
            make_normaliser(field.normaliser, field.options)
        return self

    @property
    def key_name(self) -> str:
        """The KeyProvider key of this collaboration (``link:<collaboration>``)."""
        return f"link:{self.collaboration}"

    def identifier_columns(self) -> list[str]:
        """Every raw column ``prepare`` drops."""
        return [f.column for f in self.fields.values()] + list(self.drop)


def parse_spec(doc: dict[str, Any] | str) -> LinkSpec:
    """A LinkSpec from a dict or YAML/JSON text, with errors that say what to fix."""
    if isinstance(doc, str):
        try:
            doc = yaml.safe_load(doc)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"link spec is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError("link spec must be a mapping (collaboration, fields, match_keys)")
    try:
        return LinkSpec.model_validate(doc)
    except InvalidInputError:
        raise
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidInputError(f"invalid link spec: {problems}") from None


def load_spec(path: Path) -> LinkSpec:
    """Read a link spec file (YAML or JSON)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read link spec {path}: {type(exc).__name__}") from None
    if str(path).endswith(".json"):
        try:
            return parse_spec(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"link spec {path} is not valid JSON: {exc.msg}") from None
    return parse_spec(text)
