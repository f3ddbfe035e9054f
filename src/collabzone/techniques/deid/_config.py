"""The de-identification configuration: what to protect, how, and the pre-steps.

One schema serves the client-side CLI (a YAML or TOML file) and the zone techniques (a
request spec merged with the agreement's rules). Validation is strict: an unknown key is
an error that names it and the keys allowed at that place, never silently ignored.

Every column the job releases is accounted for: a declared quasi-identifier, a sensitive
attribute or an explicitly non-identifying ``keep`` column; columns the pre-steps add
(enriched, derived, kept keys) default to quasi-identifiers (see ``_declare.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._metrics import AggregateName, MetricName
from collabzone.techniques.deid._models import Distance


class _Spec(BaseModel):
    """Base of every spec: frozen, and an unknown key is an error naming the allowed ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = [repr(k) for k in data if k not in cls.model_fields]
            if unknown:
                raise ValueError(
                    f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                    f"(allowed: {', '.join(cls.model_fields)})"
                )
        return data


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
    l_estimator: Literal["shannon", "grassberger"] = "shannon"
    """Entropy l-diversity's estimator (ARX: Shannon or Grassberger)."""
    average_risk: float | None = Field(default=None, ge=0, le=1)
    """ARX's average re-identification risk: 1 / average class size at most this."""
    highest_risk: float | None = Field(default=None, gt=0, le=1)
    records_at_risk: float | None = Field(default=None, ge=0, le=1)
    """With ``average_risk``: at most this share of rows above ``highest_risk``."""
    population_uniqueness: float | None = Field(default=None, ge=0, le=1)
    """ARX's population uniqueness: estimated share of population uniques at most this
    (needs ``population_size``)."""
    uniqueness_model: Literal["dankar", "pitman", "zayatz", "snb"] = "dankar"
    k_map: int | None = Field(default=None, ge=1)
    """ARX's k-map with a cell-size estimator (needs ``population_size``)."""
    k_map_estimator: Literal["poisson", "zero_truncated_poisson"] = "poisson"
    k_map_significance: float = Field(default=0.01, ge=0, le=1)
    population_size: int | None = Field(default=None, ge=1)
    """How many people the table was drawn from (population uniqueness, k-map)."""
    delta_min: float | None = Field(default=None, ge=0, le=1)
    delta_max: float | None = Field(default=None, ge=0, le=1)
    """ARX's delta-presence against the population table (``population``)."""


class SafePubSpec(_Spec):
    """ARX's SafePub: (epsilon, delta)-differentially private anonymisation by random
    sampling, k-anonymity with k derived from the budget, and an exponential-mechanism
    search over the lattice (``_safepub.py``)."""

    epsilon: float = Field(gt=0, allow_inf_nan=False)
    delta: float = Field(gt=0, lt=1)
    search_epsilon: float = Field(default=0.1, ge=0, allow_inf_nan=False)
    """The part of epsilon the search spends (ARX's default 0.1)."""
    steps: int = Field(default=300, ge=1, le=100_000)

    @model_validator(mode="after")
    def _split(self) -> SafePubSpec:
        if not self.epsilon > self.search_epsilon:
            raise ValueError("epsilon must exceed search_epsilon")
        return self


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
    """Replace ``column`` by ``columns`` of a reference table joined on ``key``.

    ``columns`` is a list of reference columns, or a mapping reference column -> output
    name (to avoid a clash with a column the table already has). The new columns, and
    the key when ``keep_key`` is set, default to quasi-identifiers unless declared.
    """

    column: str
    reference: str
    key: str | None = None
    columns: list[str] | dict[str, str] = Field(min_length=1)
    keep_key: bool = False

    def outputs(self) -> dict[str, str]:
        """Reference column -> the name it gets in the table."""
        if isinstance(self.columns, dict):
            return dict(self.columns)
        return {c: c for c in self.columns}


class _Derive(_Spec):
    column: str
    """The new column (may equal ``source``: the derived value then replaces it)."""
    source: str
    keep_source: bool = False
    """Keep the source column too (it then defaults to a quasi-identifier)."""

    @model_validator(mode="after")
    def _not_both(self) -> _Derive:
        if self.column == self.source and self.keep_source:
            raise ValueError("keep_source needs a new column name: column equals source")
        return self


class AgeDerive(_Derive):
    """Age in whole years on the date ``at``, from a date of birth (date or ISO text)."""

    kind: Literal["age"]
    at: dt.date


class DatePartDerive(_Derive):
    """A date truncated to its ``year`` (a number), ``month`` (YYYY-MM) or ``decade`` (199x)."""

    kind: Literal["date_part"]
    part: Literal["year", "month", "decade"]


class BandDerive(_Derive):
    """A number replaced by its band ``lo-hi`` of ``width`` counted from ``origin`` (the
    labels of an ``intervals`` hierarchy); its default hierarchy nests bands of 2 and 4
    widths, then ``*``."""

    kind: Literal["band"]
    width: float = Field(gt=0, allow_inf_nan=False)
    origin: float = Field(default=0.0, allow_inf_nan=False)


class BinsDerive(_Derive):
    """A number replaced by a named bin: below ``edges[0]`` -> ``labels[0]``, from
    ``edges[i-1]`` (inclusive) to ``edges[i]`` -> ``labels[i]``, from the last edge on ->
    the last label."""

    kind: Literal["bins"]
    edges: list[float] = Field(min_length=1)
    labels: list[str]

    @model_validator(mode="after")
    def _bins(self) -> BinsDerive:
        if not all(math.isfinite(e) for e in self.edges) or any(
            b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)
        ):
            raise ValueError("edges must be finite and strictly increasing")
        if len(self.labels) != len(self.edges) + 1:
            raise ValueError(
                f"give one label more than edges ({len(self.edges) + 1}), got {len(self.labels)}"
            )
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("bin labels must be distinct")
        return self


DeriveSpec = Annotated[
    AgeDerive | DatePartDerive | BandDerive | BinsDerive, Field(discriminator="kind")
]


class PrepareSpec(_Spec):
    """Pre-steps, applied in this order: enrich, derive, scrub, pseudonymise, noise."""

    enrich: list[EnrichSpec] = Field(default_factory=list)
    derive: list[DeriveSpec] = Field(default_factory=list)
    scrub: list[str] = Field(default_factory=list)
    pseudonymise: list[str] = Field(default_factory=list)
    noise: dict[str, NoiseSpec] = Field(default_factory=dict)


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
        keep: [salary-class]          # non-identifying: released unchanged
        privacy: {k: 5, l: 3, l_variant: entropy}
        suppression_limit: 0.04
        prepare:
          derive: [{column: age_band, kind: band, source: age, width: 10, keep_source: true}]

    Every released column must be declared (quasi_identifiers, sensitive or keep);
    columns the pre-steps add default to quasi-identifiers (here ``age_band``).
    """

    input: str | None = None
    output: str | None = None
    report: str | None = None
    population: str | None = None
    delimiter: str = ","
    quasi_identifiers: dict[str, HierarchySpec | None] = Field(default_factory=dict)
    sensitive: list[str] = Field(default_factory=list)
    sensitive_hierarchies: dict[str, HierarchySpec] = Field(default_factory=dict)
    privacy: PrivacySpec = PrivacySpec()
    suppression_limit: float = Field(default=0.0, ge=0, le=1)
    metric: MetricName = "discernibility"
    aggregate: AggregateName | None = None
    """How an attribute-wise metric combines its per-attribute values (ARX's aggregate
    functions); None: ARX's default for the metric. Not allowed with discernibility."""
    algorithm: Literal["auto", "flash", "exhaustive", "greedy", "mondrian"] = "auto"
    risk_threshold: float = Field(default=0.2, gt=0, le=1)
    prepare: PrepareSpec = PrepareSpec()
    safepub: SafePubSpec | None = None
    """Differentially private anonymisation (SafePub) instead of a syntactic model."""
    shuffle: bool = False
    keep: list[str] = Field(default_factory=list)
    """Columns declared non-identifying (ARX: insensitive): released unchanged."""
    undeclared: Literal["error", "drop"] = "error"
    """What to do with an input column that is not declared: refuse the job (default) or
    drop the column (listed in the report). Columns the pre-steps add are never dropped:
    they default to quasi-identifiers."""

    @model_validator(mode="after")
    def _consistent(self) -> DeidConfig:
        if not self.quasi_identifiers and not (self.prepare.enrich or self.prepare.derive):
            raise ValueError("name at least one quasi-identifier")
        classes = {
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": self.sensitive,
            "keep": self.keep,
        }
        seen: dict[str, str] = {}
        for cls_name, columns in classes.items():
            for column in columns:
                if column in seen and seen[column] != cls_name:
                    raise ValueError(
                        f"column {column!r} is declared in both {seen[column]} and {cls_name}: "
                        "give every column one class"
                    )
                seen[column] = cls_name
        if (self.privacy.l is not None or self.privacy.t is not None) and not self.sensitive:
            raise ValueError("l-diversity and t-closeness need at least one sensitive attribute")
        if self.aggregate is not None and self.metric.startswith("discernibility"):
            raise ValueError(
                f"aggregate applies to attribute-wise metrics; {self.metric} is one number "
                "for the whole table: remove aggregate or choose non_uniform_entropy, loss "
                "or precision"
            )
        p = self.privacy
        if self.safepub is not None:
            if p.model_dump(exclude_defaults=True):
                raise ValueError(
                    "SafePub derives its own k from epsilon and delta: remove the privacy "
                    "models (privacy.*) or safepub"
                )
            if self.algorithm not in ("auto", "greedy"):
                raise ValueError("SafePub runs its own search: leave algorithm at auto")
            if self.metric == "loss":
                raise ValueError(
                    "SafePub scores discernibility, non-uniform entropy or precision, not loss"
                )
        if p.l_variant == "recursive" and p.l is not None and p.c is None:
            raise ValueError("recursive (c,l)-diversity needs c")
        if p.population_uniqueness is not None and p.population_size is None:
            raise ValueError("population_uniqueness needs privacy.population_size")
        if (p.delta_min is None) != (p.delta_max is None):
            raise ValueError("give delta_min and delta_max together")
        if (p.highest_risk is None) != (p.records_at_risk is None):
            raise ValueError("give highest_risk and records_at_risk together")
        if p.highest_risk is not None and p.average_risk is None:
            raise ValueError("highest_risk and records_at_risk refine average_risk: set it")
        return self


def validation_problems(exc: ValidationError) -> str:
    """One line naming each bad field (its dotted path) and what is wrong with it."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "config"
        message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def parse_config(data: Mapping[str, Any]) -> DeidConfig:
    """Validate a config mapping; the error names each bad field, and for an unknown key
    the keys allowed at that place."""
    try:
        return DeidConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(
            f"invalid de-identification config: {validation_problems(exc)}"
        ) from None


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
