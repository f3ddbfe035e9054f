"""The interface every privacy technique implements: plan -> check -> run -> release.

A technique is one module (or package) that subclasses :class:`Technique` and is listed
in :mod:`collabzone.techniques.registry`. It never imports the store, the zone or another
technique: the zone hands it what it needs.

* ``plan(spec, ctx)`` reads the request's spec and the catalogue (no data) and says what
  the request touches and what it would cost (:class:`Plan`). Bad specs raise
  :class:`~collabzone.errors.InvalidInputError`.
* ``check(plan, rules, ctx)`` is pure: given the agreement rules of every dataset touched
  (already filtered to the agreements that grant this requester, technique and purpose),
  it returns the :class:`~collabzone.errors.Reason` for each rule the plan breaks.
* ``run(plan, ctx)`` computes the raw outcome from data reached only through
  :class:`RunContext`. Techniques whose ``placement`` is ``"owner"`` run at the data
  owner's node (``collabzone node``), not in the zone: the zone only queues the job.
* ``release(plan, outcome, rules)`` is the last filter: what may leave, to whom, and the
  privacy cost actually spent. Only its result is stored and shown.

The zone commits the release, its budget debits and its audit event in one transaction.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from collabzone.budget import PrivacyCost
from collabzone.errors import CollabzoneError, Reason
from collabzone.model import Agreement, Dataset, Party
from collabzone.techniques.view import ResultView, default_view

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pyarrow as pa


class Merge(StrEnum):
    """How one rule parameter combines across the agreements a request needs.

    The most restrictive value wins: ``AT_LEAST`` takes the largest (a minimum group
    size), ``AT_MOST`` the smallest (a cap), ``SUBSET`` the intersection (allowed lists),
    ``ALL`` requires every agreement to allow (a permission flag), ``ANY`` applies if any
    agreement demands it (a protection flag), ``SAME`` requires equal values.
    """

    AT_LEAST = "at_least"
    AT_MOST = "at_most"
    SUBSET = "subset"
    ALL = "all"
    ANY = "any"
    SAME = "same"
    PER_DATASET = "per_dataset"
    """Not merged: the rule speaks of its own dataset's columns (e.g. value bounds)."""


@dataclass(frozen=True)
class RuleSpec:
    """One agreement parameter a technique understands."""

    name: str
    merge: Merge
    description: str
    type: type | tuple[type, ...] = object
    floor: float | None = None
    """Smallest value an agreement may set (a protection the technique never goes below)."""
    choices: tuple[str, ...] = ()
    """For text rules: the values an agreement may set (empty: any)."""


Placement = Literal["zone", "owner"]


@dataclass(frozen=True)
class Plan:
    """What a request touches and what it would cost, before any data is read."""

    technique: str
    datasets: tuple[str, ...]
    cost: Mapping[str, PrivacyCost] = field(default_factory=dict)
    """Privacy cost per dataset, as priced before running (``--dry-run`` shows it)."""
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    outputs: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    """The technique's own compiled form (e.g. the rewritten SQL); JSON-serialisable."""
    placement: Placement = "zone"
    node: str | None = None
    """For placement ``owner``: the party whose node runs the job."""


@dataclass(frozen=True)
class AuditUpdate:
    """A technique's new disclosure-audit state for one space, stored with the release.

    ``base_version`` is the version the technique read (``None``: the space was empty);
    if another release changed the space meanwhile, the zone runs the request again
    against the newer state instead of releasing (the audit must see every release).
    """

    space: str
    base_version: int | None
    state: bytes


PARTS_KEY = "_parts"
"""Where a release stores :attr:`Outcome.parts` beside its payload (never shown as such)."""


@dataclass(frozen=True)
class DerivedDataset:
    """A released table to register as a new dataset, with where it came from.

    ``columns`` are dataset-spec column entries (``name``, ``type``, ``class``, ``domain``);
    ``provenance`` says what it was derived from and how (e.g. source, method, epsilon)
    and is recorded in the dataset's audit event.
    """

    name: str
    columns: tuple[Mapping[str, Any], ...]
    rows: tuple[tuple[Any, ...], ...]
    provenance: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Outcome:
    """What ``run`` produced and ``release`` let out.

    ``payload`` is JSON-serialisable: tables as ``{"columns": [...], "rows": [[...]]}``.
    """

    payload: Mapping[str, Any]
    rows_suppressed: int | None = None
    """Cells withheld, if saying so is safe (None: not disclosed)."""
    mechanism: str | None = None
    noise_scale: float | None = None
    spent: Mapping[str, PrivacyCost] = field(default_factory=dict)
    released_to: tuple[str, ...] = ()
    """Parties allowed to read the payload; empty means the requester only."""
    notes: tuple[str, ...] = ()
    audit_updates: tuple[AuditUpdate, ...] = ()
    """Disclosure-audit states to store with the release (see :mod:`collabzone.disclosure`)."""
    assessment: Mapping[str, Any] = field(default_factory=dict)
    """The technique's own account of what this release would disclose (for the owners'
    risk summary before approval); never released to the requester."""
    parts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per-party result parts (party -> JSON-serialisable fields): each party named here
    reads ``payload`` plus its own part and never another party's (e.g. a look-alike
    audience goes only to the partner, its size and lift only to the bank). The zone adds
    these parties to ``released_to``. Empty: every reader sees ``payload`` alone."""
    derived: DerivedDataset | None = None
    """A table the release adds to the zone as a new dataset of the requester (e.g. a DP
    synthetic table), registered in the same transaction as the release."""


class PlanContext(Protocol):
    """What ``plan`` and ``check`` may know: the requester and the catalogue, no data."""

    @property
    def requester(self) -> Party: ...

    @property
    def now(self) -> dt.datetime: ...

    @property
    def purpose(self) -> str:
        """The purpose the request states (its agreements were matched on it)."""
        ...

    def dataset(self, name: str) -> Dataset:
        """The dataset's metadata; raises NotFoundError if the requester may not see it."""
        ...

    def visible_datasets(self) -> list[Dataset]:
        """Datasets the requester owns or that an active agreement shares with it."""
        ...

    def agreements_for(self, dataset: str) -> list[Agreement]:
        """Active agreements on ``dataset`` that grant the requester (any technique)."""
        ...

    def party(self, name: str) -> Party: ...


class RunContext(PlanContext, Protocol):
    """What ``run`` may reach: read-only data of the datasets in the plan, keys, randomness."""

    def table(self, dataset: str) -> pa.Table:
        """The decrypted table (only datasets listed in the plan)."""
        ...

    def connection(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with every planned dataset registered as a view
        under its own name, and nothing else (no files, no extensions)."""
        ...

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        """A zone key for ``purpose`` (HKDF from the keyring); never log or release it."""
        ...

    @property
    def rng(self) -> np.random.Generator:
        """Randomness for non-privacy uses (mock samples, shuffles). DP noise comes from
        OpenDP's own vetted sampler, not from here."""
        ...

    def spent(self, dataset: str) -> PrivacyCost:
        """Budget this requester already spent on ``dataset`` in the current period."""
        ...

    def history(self, dataset: str) -> list[Mapping[str, Any]]:
        """What earlier releases on ``dataset`` recorded for monitoring (query monitor)."""
        ...

    def audit_state(self, space: str) -> tuple[int, bytes] | None:
        """The stored disclosure-audit state of ``space`` and its version (None if empty)."""
        ...

    def technique_dir(self) -> Path:
        """The zone's directory for this technique's own files (e.g. an inbox of deposits
        made through its API), ``<zone>/techniques/<name>``; created on demand."""
        ...


class FailedAfterSpending(CollabzoneError):
    """``run`` failed after a mechanism had already spent privacy loss on the data.

    What that mechanism produced (e.g. a privately derived contribution limit) may have
    shaped the failure, and spent loss cannot be unspent: the zone fails the request and
    debits ``spent`` (per dataset) in the transaction that records the failure.
    """

    code = "FAILED"

    def __init__(self, message: str, spent: Mapping[str, PrivacyCost]) -> None:
        super().__init__(message)
        self.spent = dict(spent)


@dataclass(frozen=True)
class Rules:
    """Agreement rules for one request: per dataset, and merged most-restrictively."""

    by_dataset: Mapping[str, Mapping[str, Any]]
    merged: Mapping[str, Any]
    agreements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per dataset, the ids of the agreements the rules came from (for receipts)."""

    def get(self, name: str, default: Any = None) -> Any:
        return self.merged.get(name, default)


class Technique(ABC):
    """Base class of every technique (see the module docstring for the contract)."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    placement: ClassVar[Placement] = "zone"
    rule_specs: ClassVar[tuple[RuleSpec, ...]] = ()
    needs_agreement: ClassVar[bool] = True
    """False for techniques (like the catalogue) that only need the dataset to be shared."""

    @abstractmethod
    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        """Validate ``spec`` and say what the request touches and costs."""

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        """Reasons the plan breaks a rule (pure; the default finds none)."""
        return []

    @abstractmethod
    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        """Compute the raw outcome."""

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        """Filter the outcome down to what may leave (the default lets it all out)."""
        return outcome

    def result_view(self, payload: Mapping[str, Any]) -> ResultView:
        """What the console shows a reader of a released ``payload`` (that reader's own view
        of it): override to draw curves or images; the default lists facts and tables."""
        return default_view(payload)


TechniqueFactory = Callable[[], Technique]
