"""The zone request specs of ``deid`` and ``mediate``, validated strictly.

A request names what to release and how; the owners' agreements decide the floor. Every
key is checked: an unknown one (at any depth) is an InvalidInputError naming it and the
keys allowed there, so nothing a requester writes is silently ignored.

Example:
    >>> parse_request(MediateRequest, {"datasets": ["a", "b"], "privacy": {"k": 5}}).privacy.k
    5
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, model_validator

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._config import (
    DeriveSpec,
    EnrichSpec,
    HierarchySpec,
    PrepareSpec,
    PrivacySpec,
    SafePubSpec,
    _Spec,
    validation_problems,
)
from collabzone.techniques.deid._metrics import AggregateName, MetricName


class ZonePrepare(_Spec):
    """The pre-steps a zone request may ask for. ``enrich`` names reference *datasets* of
    the zone that every provider's agreement approves (rule ``references``); ``scrub``,
    ``pseudonymise`` and ``noise`` run at the provider (``collabzone deid run``)."""

    enrich: list[EnrichSpec] = Field(default_factory=list)
    derive: list[DeriveSpec] = Field(default_factory=list)

    def as_prepare(self) -> PrepareSpec:
        return PrepareSpec(enrich=self.enrich, derive=self.derive)


class ZoneRequest(_Spec):
    """What both zone techniques accept besides the dataset(s)."""

    quasi_identifiers: list[str] | dict[str, HierarchySpec | None] = Field(default_factory=dict)
    sensitive: list[str] = Field(default_factory=list)
    keep: list[str] = Field(default_factory=list)
    """Columns of class measure, dimension, label or other, released unchanged."""
    privacy: PrivacySpec = PrivacySpec()
    """May only make the agreements' model stricter."""
    suppression_limit: float = Field(default=0.0, ge=0, le=1)
    metric: MetricName = "discernibility"
    aggregate: AggregateName | None = None
    safepub: SafePubSpec | None = None
    """Differentially private anonymisation (SafePub); its (epsilon, delta) is charged to
    the ledger of every provider's dataset."""
    algorithm: Literal["auto", "flash", "exhaustive", "greedy", "mondrian"] = "auto"
    risk_threshold: float = Field(default=0.2, gt=0, le=1)
    prepare: ZonePrepare = ZonePrepare()

    def qi_specs(self) -> dict[str, HierarchySpec | None]:
        """The requested quasi-identifiers with their hierarchy specs (None: default)."""
        if isinstance(self.quasi_identifiers, list):
            return dict.fromkeys(self.quasi_identifiers)
        return dict(self.quasi_identifiers)

    def references(self) -> list[str]:
        """The reference datasets the enrich steps read, in order, once each."""
        return list(dict.fromkeys(step.reference for step in self.prepare.enrich))

    def providers(self) -> list[str]:
        """The providers' datasets the request de-identifies."""
        raise NotImplementedError


class DeidRequest(ZoneRequest):
    """``deid``: one provider's dataset."""

    dataset: str

    def providers(self) -> list[str]:
        return [self.dataset]


class MediateRequest(ZoneRequest):
    """``mediate``: two or more providers' datasets, merged before the pre-steps."""

    datasets: list[str] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct(self) -> MediateRequest:
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError("the request lists a dataset twice")
        return self

    def providers(self) -> list[str]:
        return list(self.datasets)


R = TypeVar("R", bound=ZoneRequest)


def parse_request(kind: type[R], spec: Mapping[str, Any]) -> R:
    """Validate a request spec; InvalidInputError names each bad key."""
    try:
        request = kind.model_validate(dict(spec))
    except ValidationError as exc:
        name = "mediate" if kind is MediateRequest else "deid"
        raise InvalidInputError(f"invalid {name} request: {validation_problems(exc)}") from None
    overlap = set(request.references()) & set(request.providers())
    if overlap:
        raise InvalidInputError(
            f"dataset(s) {sorted(overlap)} cannot be both a provider's data and a reference table"
        )
    return request
