"""From a zone request, the catalogue and the owners' rules to one de-identification job.

Pure: no data is read. The owners decide the floor, the requester may only go further:

* the privacy model is the strictest of the request and every agreement (:func:`strictest`);
* columns of class ``quasi_identifier`` / ``sensitive`` in the catalogue, and the
  agreements' ``quasi_identifiers`` / ``sensitive`` rules, always apply; the owners'
  ``hierarchies`` win over the request's;
* columns a pre-step adds (enriched, derived, kept keys) are quasi-identifiers, or
  sensitive when their source is sensitive (or the reference's catalogue says so); a
  request may not declare them sensitive or ``keep`` them unchanged;
* ``keep`` releases only columns of class measure, dimension, label or other unchanged;
  identifier and join-key columns never leave (an enrichment key that is replaced is
  read, never released);
* a reference dataset may enrich a provider's data only if that provider's agreement
  lists it in the rule ``references`` (the owner approved it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collabzone.errors import InvalidInputError, Reason
from collabzone.model import ColumnClass, Dataset
from collabzone.techniques.deid._config import DeidConfig, PrepareSpec, parse_config
from collabzone.techniques.deid._declare import added_columns, consumed_columns, input_columns
from collabzone.techniques.deid._request import ZoneRequest

MODEL_KEYS = ("k", "l", "l_variant", "c", "t", "t_distance")
NEVER_RELEASED = (ColumnClass.IDENTIFIER, ColumnClass.JOIN_KEY)
PROTECTED = (ColumnClass.QUASI_IDENTIFIER, ColumnClass.SENSITIVE)


def strictest(rule_sets: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge rule sets most restrictively (k, l up; c, t, suppression limit down)."""
    out: dict[str, Any] = {}
    for rules in rule_sets:
        for key, value in rules.items():
            if value is None or key not in {"suppression_limit", *MODEL_KEYS}:
                continue
            if key not in out:
                out[key] = value
            elif key in ("k", "l"):
                out[key] = max(out[key], value)
            elif key in ("c", "t", "suppression_limit"):
                out[key] = min(out[key], value)
            elif out[key] != value:
                raise InvalidInputError(f"the agreements disagree on {key!r}: align them")
    return out


@dataclass(frozen=True)
class ZoneJob:
    """What a request will de-identify, and every reason it may not."""

    config: DeidConfig
    inputs: tuple[str, ...]
    """Columns read from each provider's dataset."""
    reference_columns: Mapping[str, tuple[str, ...]]
    """Columns read from each reference dataset."""
    merged: Mapping[str, Any]
    reasons: tuple[Reason, ...] = field(default=())


@dataclass
class _Classes:
    qis: dict[str, Any] = field(default_factory=dict)
    sensitive: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)


def _owners_classes(
    providers: Sequence[Dataset], rule_sets: Mapping[str, Sequence[Mapping[str, Any]]]
) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """Quasi-identifiers, sensitive columns and hierarchies the owners declared."""
    qis: dict[str, Any] = {}
    sensitive: list[str] = []
    hierarchies: dict[str, Any] = {}
    for ds in providers:
        for rules in rule_sets.get(ds.name, []):
            for name in rules.get("quasi_identifiers", []):
                qis.setdefault(name, None)
            sensitive += rules.get("sensitive", [])
            hierarchies.update(rules.get("hierarchies") or {})
        for column in ds.columns_of(ColumnClass.QUASI_IDENTIFIER):
            qis.setdefault(column.name, None)
        sensitive += [c.name for c in ds.columns_of(ColumnClass.SENSITIVE)]
    return qis, list(dict.fromkeys(sensitive)), hierarchies


def _inherited_sensitive(
    prepare: PrepareSpec, sensitive: Iterable[str], references: Mapping[str, Dataset]
) -> list[str]:
    """Added columns that are sensitive: from a sensitive source or reference column."""
    known = set(sensitive)
    out: list[str] = []
    for step in prepare.enrich:
        ref = references.get(step.reference)
        for ref_column, name in step.outputs().items():
            column = ref.column(ref_column) if ref is not None else None
            marked = column is not None and column.column_class is ColumnClass.SENSITIVE
            if step.column in known or marked:
                known.add(name)
                out.append(name)
    for d in prepare.derive:
        if d.source in known and d.column not in known:
            known.add(d.column)
            out.append(d.column)
    return out


def _classify(
    request: ZoneRequest,
    providers: Sequence[Dataset],
    references: Mapping[str, Dataset],
    rule_sets: Mapping[str, Sequence[Mapping[str, Any]]],
) -> _Classes:
    prepare = request.prepare.as_prepare()
    added = added_columns(prepare)
    gone = {c for c in consumed_columns(prepare) if c not in added}
    owner_qis, owner_sens, hierarchies = _owners_classes(providers, rule_sets)
    sensitive = [
        c
        for c in dict.fromkeys(
            [*owner_sens, *_inherited_sensitive(prepare, owner_sens, references)]
        )
        if c not in gone
    ]
    out = _Classes(sensitive=sensitive)
    owner = providers[0].owner if len(providers) == 1 else None
    qis: dict[str, Any] = {q: None for q in owner_qis if q not in gone and q not in sensitive}

    def refuse(code: str, rule: str, message: str) -> None:
        out.reasons.append(Reason(code, rule, message, owner))

    for name, spec in request.qi_specs().items():
        if name in sensitive:
            refuse(
                "DEID_CLASS_CONFLICT",
                "sensitive",
                f"column {name!r} is sensitive for its owner: the request may not make it a "
                "quasi-identifier",
            )
        else:
            qis[name] = spec
    for name, spec in hierarchies.items():
        if name in qis or (name in added and name not in sensitive):
            qis[name] = spec  # the owner's hierarchy wins over the requester's
    for name in request.sensitive:
        if name in qis or name in added:
            refuse(
                "DEID_CLASS_CONFLICT",
                "quasi_identifiers",
                f"column {name!r} is a quasi-identifier (declared by its owner, the request or "
                "added by a pre-step): the request may not declare it sensitive",
            )
        elif name not in out.sensitive:
            out.sensitive.append(name)
    for name in request.keep:
        if name in qis or name in out.sensitive or name in added:
            refuse(
                "DEID_KEEP_PROTECTED",
                "keep",
                f"column {name!r} is a quasi-identifier or sensitive (by its class, a rule or "
                "because a pre-step adds it): it is generalised or protected, never released "
                "unchanged; remove it from keep",
            )
        else:
            out.keep.append(name)
    for name in [*request.qi_specs(), *request.sensitive, *request.keep]:
        if name in gone:
            refuse(
                "DEID_CONSUMED_COLUMN",
                "prepare",
                f"column {name!r} is replaced by a pre-step and does not leave: declare the "
                "column it becomes instead",
            )
    out.qis = qis
    return out


def _input_reasons(job_inputs: Sequence[str], prepare: PrepareSpec, ds: Dataset) -> list[Reason]:
    """Every column read must exist; identifiers and join keys are read only as an
    enrichment key that is replaced."""
    replaced_keys = {s.column for s in prepare.enrich if not s.keep_key}
    other_uses = {d.source for d in prepare.derive}
    reasons = []
    for name in job_inputs:
        column = ds.column(name)
        if column is None:
            reasons.append(
                Reason(
                    "UNKNOWN_COLUMN",
                    "columns",
                    f"dataset {ds.name!r} has no column {name!r}",
                    ds.owner,
                )
            )
        elif column.column_class in NEVER_RELEASED and (
            name not in replaced_keys or name in other_uses
        ):
            reasons.append(
                Reason(
                    "IDENTIFIER_COLUMN",
                    "columns",
                    f"column {name!r} is a {column.column_class.value} and never leaves, not even "
                    "derived or kept beside its enrichment: remove it from the request",
                    ds.owner,
                )
            )
    return reasons


def _reference_reasons(
    request: ZoneRequest,
    providers: Sequence[Dataset],
    references: Mapping[str, Dataset],
    rule_sets: Mapping[str, Sequence[Mapping[str, Any]]],
    requester: str,
) -> tuple[list[Reason], dict[str, tuple[str, ...]]]:
    reasons: list[Reason] = []
    for name in request.references():
        for ds in providers:
            if ds.owner == requester:
                continue  # a requester's own data needs no one's approval
            sets = rule_sets.get(ds.name, [])
            if not sets or not all(name in (r.get("references") or []) for r in sets):
                reasons.append(
                    Reason(
                        "DEID_REFERENCE_NOT_APPROVED",
                        "references",
                        f"the agreement on {ds.name!r} does not approve enrichment with "
                        f"{name!r}: its owner must list it in the rule 'references'",
                        ds.owner,
                    )
                )
    read: dict[str, list[str]] = {}
    for step in request.prepare.enrich:
        ref = references[step.reference]
        key = step.key or step.column
        for name in [key, *step.outputs()]:
            column = ref.column(name)
            if column is None:
                reasons.append(
                    Reason(
                        "UNKNOWN_COLUMN",
                        "references",
                        f"reference dataset {ref.name!r} has no column {name!r}",
                        ref.owner,
                    )
                )
            elif name != key and column.column_class in NEVER_RELEASED:
                reasons.append(
                    Reason(
                        "IDENTIFIER_COLUMN",
                        "references",
                        f"column {name!r} of {ref.name!r} is a {column.column_class.value}: "
                        "it never leaves, not even as an enrichment",
                        ref.owner,
                    )
                )
            read.setdefault(ref.name, [])
            if name not in read[ref.name]:
                read[ref.name].append(name)
    return reasons, {k: tuple(v) for k, v in read.items()}


def _safepub_reasons(request: ZoneRequest, merged: Mapping[str, Any]) -> list[Reason]:
    """SafePub gives (epsilon, delta)-DP and k-anonymity with its own k: the agreements may
    ask for k (at most SafePub's), never for l or t, which it does not provide."""
    from collabzone.techniques.deid._safepub import safepub_parameters

    assert request.safepub is not None
    reasons = []
    for rule in ("l", "t"):
        if merged.get(rule) is not None:
            reasons.append(
                Reason(
                    "DEID_SAFEPUB_MODEL",
                    rule,
                    f"the agreement requires {rule} (l-diversity / t-closeness), which SafePub "
                    "does not provide: request without safepub",
                )
            )
    sp = request.safepub
    derived = safepub_parameters(sp.epsilon, sp.delta, sp.search_epsilon, sp.steps).k
    if merged.get("k") is not None and derived < merged["k"]:
        reasons.append(
            Reason(
                "DEID_K_NOT_MET",
                "k",
                f"SafePub with epsilon {sp.epsilon} and delta {sp.delta} guarantees k = "
                f"{derived}, the agreement needs {merged['k']}: choose another epsilon / delta",
            )
        )
    return reasons


def build_job(
    request: ZoneRequest,
    providers: Sequence[Dataset],
    references: Mapping[str, Dataset],
    rule_sets: Mapping[str, Sequence[Mapping[str, Any]]],
    requester: str,
) -> ZoneJob:
    """The job a request asks for under the owners' rules, with every reason to refuse.

    ``rule_sets`` holds, per dataset (providers and references), the rule parameters of
    the agreements that apply (none for the requester's own datasets). Raises
    InvalidInputError when the request cannot form a valid job at all (the message names
    what to change).
    """
    reasons: list[Reason] = []
    merged = strictest(r for sets in rule_sets.values() for r in sets)
    classes = _classify(request, providers, references, rule_sets)
    reasons += classes.reasons
    model = strictest([request.privacy.model_dump(exclude_unset=True), merged])
    limit = strictest([{"suppression_limit": request.suppression_limit}, merged])
    if request.safepub is not None:
        reasons += _safepub_reasons(request, merged)
    config = parse_config(
        {
            "quasi_identifiers": classes.qis,
            "sensitive": classes.sensitive,
            "keep": classes.keep,
            "privacy": (
                {}
                if request.safepub is not None
                else {k: v for k, v in model.items() if k in MODEL_KEYS}
            ),
            "safepub": request.safepub,
            "suppression_limit": limit["suppression_limit"],
            "metric": request.metric,
            "aggregate": request.aggregate,
            "algorithm": request.algorithm,
            "risk_threshold": request.risk_threshold,
            "shuffle": True,
            "prepare": request.prepare.as_prepare(),
        }
    )
    inputs = input_columns(config)
    for ds in providers:
        if merged.get("k") is None:
            reasons.append(
                Reason(
                    "DEID_NO_K",
                    "k",
                    "the agreement states no k: rows leave only under a stated k",
                    ds.owner,
                )
            )
        reasons += _input_reasons(inputs, config.prepare, ds)
    ref_reasons, reference_columns = _reference_reasons(
        request, providers, references, rule_sets, requester
    )
    reasons += ref_reasons
    return ZoneJob(config, tuple(inputs), reference_columns, merged, tuple(reasons))
