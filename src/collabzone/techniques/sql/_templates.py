"""Templates: an owner's pre-approved report, and who else approved the same one.

A template is the approved query of the owner whose agreement defines it. It may read that
owner's datasets; it may read another owner's dataset only if that owner's agreement names
the same template (same name, same body: compared by a hash of the canonical SQL and its
declared parameters). Every other rule of every touched owner still applies (thresholds,
result caps, the disclosure audit); only the column rules are waived, because the owners
approved this exact query.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collabzone.errors import Reason
from collabzone.techniques.sql._frontend import QueryRejected, parse_select
from collabzone.techniques.sql.rules.bind_template import bind_template


@dataclass(frozen=True)
class TemplateUse:
    """The template a request runs, bound to its parameters, and who approved it."""

    name: str
    body_hash: str
    sql: str
    defined_on: tuple[str, ...]
    """Datasets whose (chosen) agreement defines this template with this body."""


def body_hash(template: Mapping[str, Any]) -> str:
    """A hash of a template's canonical SQL and declared parameters (its identity)."""
    sql = parse_select(str(template.get("sql", ""))).sql(dialect="duckdb")
    doc = {"sql": sql, "params": template.get("params") or {}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _definition(rules: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    templates = rules.get("templates")
    if isinstance(templates, Mapping) and isinstance(templates.get(name), Mapping):
        return templates[name]  # type: ignore[no-any-return]
    return None


def find_template(
    spec: Mapping[str, Any], rule_sets: Mapping[str, Sequence[Mapping[str, Any]]]
) -> TemplateUse:
    """The template ``spec`` names, bound to its parameters (raises QueryRejected)."""
    name = spec.get("template")
    if not isinstance(name, str) or not name:
        raise QueryRejected("BAD_PARAMETER", "'template' must be the name of a template")
    found: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for dataset, sets in rule_sets.items():
        for rules in sets:
            definition = _definition(rules, name)
            if definition is not None:
                found[dataset] = (body_hash(definition), definition)
    if not found:
        raise QueryRejected(
            "BAD_PARAMETER", f"no agreement shared with you defines template {name!r}"
        )
    hashes = {h for h, _ in found.values()}
    if len(hashes) > 1:
        raise QueryRejected(
            "BAD_PARAMETER",
            f"agreements define template {name!r} differently; its owners must align them",
        )
    digest = next(iter(hashes))
    definition = next(iter(found.values()))[1]
    params = spec.get("params") or {}
    if not isinstance(params, Mapping):
        raise QueryRejected("BAD_PARAMETER", "params must be an object of name: value")
    tree = parse_select(str(definition["sql"]))
    bound = bind_template(tree, declared=definition.get("params") or {}, values=params)
    return TemplateUse(name, digest, bound.sql(dialect="duckdb"), tuple(sorted(found)))


def unapproved(
    use: TemplateUse,
    touched: Sequence[str],
    owners: Mapping[str, str],
    requester: str,
) -> list[Reason]:
    """Touched datasets whose owner did not approve this template (by name and body)."""
    defining_owners = {owners.get(d) for d in use.defined_on}
    reasons = []
    for dataset in touched:
        owner = owners[dataset]
        if owner == requester or dataset in use.defined_on:
            continue
        if owner in defining_owners:
            continue  # the defining owner approved its template on its own datasets
        reasons.append(
            Reason(
                "TEMPLATE_NOT_APPROVED",
                "sql.templates",
                f"template {use.name!r} reads {dataset!r}, whose owner's agreement does not "
                "name the same template; ask that owner to add it (same SQL and parameters)",
                owner,
            )
        )
    return reasons
