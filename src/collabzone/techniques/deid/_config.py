"""The de-identification configuration: what to protect, how, and the pre-steps.

One schema serves the client-side CLI (a YAML or TOML file) and the zone technique (a
request spec merged with the agreement's rules). Validation errors name the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._metrics import MetricName
from collabzone.techniques.deid._models import Distance


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HierarchySpec(_Spec):
    """Exactly one way to get a hierarchy: an ARX CSV file, inline rows, or a builder."""

    file: str | None = None
    rows: list[list[str]] | None = None
    intervals: list[float] | None = None
    origin: float = 0.0
    dates: list[Literal["month", "year", "decade"]] | None = None
    masking: bool = False
    tree: dict[str, Any] | None = None
    flat: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> HierarchySpec:
        given = [
            self.file is not None,
            self.rows is not None,
            self.intervals is not None,
            self.dates is not None,
            self.masking,
            self.tree is not None,
            self.flat,
        ]
        if sum(given) > 1:
            raise ValueError("give one of file, rows, intervals, dates, masking, tree, flat")
        return self


class PrivacySpec(_Spec):
    """The privacy models required (all optional, combined with AND)."""

    k: int | None = Field(default=None, ge=1)
    l: float | None = Field(default=None, ge=1)  # noqa: E741 (the literature's name)
    l_variant: Literal["distinct", "entropy", "recursive"] = "distinct"
    c: float | None = Field(default=None, gt=0)
    t: float | None = Field(default=None, ge=0, le=1)
    t_distance: Distance = "equal"


class NoiseSpec(_Spec):
    """Laplace noise for one numeric column: values clipped to [lower, upper], scale
    (upper - lower) / epsilon, so each released value is epsilon-DP for its row."""

    epsilon: float = Field(gt=0)
    lower: float
    upper: float
    round: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> NoiseSpec:
        if not self.lower < self.upper:
            raise ValueError("lower must be below upper")
        return self


class EnrichSpec(_Spec):
    """Replace ``column`` by ``columns`` of a reference table joined on ``key``."""

    column: str
    reference: str
    key: str | None = None
    columns: list[str]
    keep_key: bool = False


class PrepareSpec(_Spec):
    """Pre-steps, applied in this order: enrich, scrub, pseudonymise, noise."""

    scrub: list[str] = Field(default_factory=list)
    pseudonymise: list[str] = Field(default_factory=list)
    noise: dict[str, NoiseSpec] = Field(default_factory=dict)
    enrich: list[EnrichSpec] = Field(default_factory=list)


class DeidConfig(_Spec):
    """A whole de-identification job.

    Example (YAML)::

        input: adult.csv
        output: adult_deid.csv
        report: adult_deid.json
        quasi_identifiers:
          age: {file: adult_hierarchy_age.csv}
          zip: {masking: true}
        sensitive: [occupation]
        privacy: {k: 5, l: 3, l_variant: entropy}
        suppression_limit: 0.04
    """

    input: str | None = None
    output: str | None = None
    report: str | None = None
    population: str | None = None
    delimiter: str = ","
    quasi_identifiers: dict[str, HierarchySpec | None]
    sensitive: list[str] = Field(default_factory=list)
    sensitive_hierarchies: dict[str, HierarchySpec] = Field(default_factory=dict)
    privacy: PrivacySpec = PrivacySpec()
    suppression_limit: float = Field(default=0.0, ge=0, le=1)
    metric: MetricName = "discernibility"
    algorithm: Literal["auto", "flash", "exhaustive", "greedy", "mondrian"] = "auto"
    risk_threshold: float = Field(default=0.2, gt=0, le=1)
    prepare: PrepareSpec = PrepareSpec()
    shuffle: bool = False
    keep: list[str] = Field(default_factory=list)
    """Mediator only: columns released unchanged besides the QIs and sensitive ones (a
    single provider's other columns always stay; scrub the ones that must not)."""

    @model_validator(mode="after")
    def _consistent(self) -> DeidConfig:
        if not self.quasi_identifiers:
            raise ValueError("name at least one quasi-identifier")
        if (self.privacy.l is not None or self.privacy.t is not None) and not self.sensitive:
            raise ValueError("l-diversity and t-closeness need at least one sensitive attribute")
        p = self.privacy
        if p.l_variant == "recursive" and p.l is not None and p.c is None:
            raise ValueError("recursive (c,l)-diversity needs c")
        return self


def parse_config(data: dict[str, Any]) -> DeidConfig:
    """Validate a config mapping; the error names each bad field."""
    try:
        return DeidConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidInputError(f"invalid de-identification config: {problems}") from None


def load_config(path: str | Path) -> DeidConfig:
    """Read a YAML (.yaml/.yml) or TOML (.toml) config file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read config {file}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if file.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"config {file} is not valid {file.suffix[1:]}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"config {file} must be a mapping of settings")
    return parse_config(data)
