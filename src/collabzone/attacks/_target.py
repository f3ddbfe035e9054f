"""What the attacks talk to: a target that answers governed SQL questions.

An attack sees exactly what an analyst sees: the released rows, the refusal and its reason
codes, an empty answer when everything was withheld, anything the payload or the receipt
says about what was left out, and how long the answer took. :class:`Target` is that view
(one method); :class:`Uploader` adds the one extra power an analyst who is also a provider
has, putting a table of its own into the zone (the attacker-owned side of a join).

:class:`ZoneTarget` implements both over a real :class:`collabzone.Zone` handle (embedded)
or a :class:`collabzone.client.RemoteZone` (server): ``submit("sql", spec, purpose)``,
``result(id)`` and ``add_dataset(...)``, so the same attacks run against a real zone.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.parquet as pq

from collabzone.errors import CollabzoneError

Status = Literal["released", "withheld", "refused"]


@dataclass(frozen=True)
class Question:
    """One governed SQL question; ``epsilon`` (pure DP) or ``rho`` (zCDP) asks for DP."""

    sql: str
    epsilon: float | None = None
    rho: float | None = None

    def spec(self) -> dict[str, Any]:
        """The ``sql`` technique's request spec."""
        spec: dict[str, Any] = {"sql": self.sql}
        if self.epsilon is not None:
            spec["epsilon"] = self.epsilon
        if self.rho is not None:
            spec["rho"] = self.rho
        return spec


@dataclass(frozen=True)
class Answer:
    """What came back: released rows, nothing (withheld), or a refusal with reason codes.

    ``suppressed`` is an exact count of left-out rows when the target disclosed one (in the
    payload or the receipt): channel 3 of issue 10; a safe target leaves it ``None``.
    """

    status: Status
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    reasons: tuple[str, ...] = ()
    seconds: float = 0.0
    suppressed: int | None = None
    spent: float = 0.0
    """Privacy budget (epsilon or rho) the answer cost, when the target says so."""

    @property
    def released(self) -> bool:
        return self.status == "released"

    def value(self, column: int = 0, row: int = 0) -> float | None:
        """One released number (``None`` if withheld, refused or not a number)."""
        if not self.released or row >= len(self.rows):
            return None
        cell = self.rows[row][column]
        if isinstance(cell, bool) or not isinstance(cell, int | float):
            return None
        return float(cell)


def refused(*codes: str, seconds: float = 0.0) -> Answer:
    return Answer("refused", reasons=tuple(codes), seconds=seconds)


def from_payload(
    payload: Mapping[str, Any], *, seconds: float, receipt_suppressed: int | None = None
) -> Answer:
    """An answer from a released ``sql`` payload (no rows: withheld)."""
    rows = tuple(tuple(r) for r in payload.get("rows") or ())
    spent_doc = payload.get("spent") or {}
    spent = 0.0
    if isinstance(spent_doc, Mapping):
        spent = float(spent_doc.get("epsilon") or 0.0) + float(spent_doc.get("rho") or 0.0)
    return Answer(
        "released" if rows else "withheld",
        columns=tuple(payload.get("columns") or ()),
        rows=rows,
        seconds=seconds,
        suppressed=suppressed_count(payload, receipt_suppressed),
        spent=spent,
    )


def suppressed_count(payload: Mapping[str, Any], receipt_suppressed: int | None) -> int | None:
    """Any exact count of withheld rows the payload or receipt discloses."""
    if receipt_suppressed is not None:
        return int(receipt_suppressed)
    for key, value in payload.items():
        if "suppress" in key.lower() and isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def reason_code(reason: str) -> str:
    """The stable code at the start of a zone reason (``"DIFFERENCING: ..."``)."""
    head = reason.split(":", 1)[0].strip()
    return head if head and head.replace("_", "").isalnum() and head.isupper() else "REFUSED"


@runtime_checkable
class Target(Protocol):
    """Something that answers governed SQL questions as one analyst."""

    def ask(self, question: Question) -> Answer:
        """Ask one question; never raises for a refusal (it is an answer too)."""
        ...


@runtime_checkable
class Uploader(Protocol):
    """A target where the analyst may also bring a table of its own (a provider)."""

    def upload(self, name: str, table: pa.Table, columns: Sequence[Mapping[str, Any]]) -> str:
        """Store ``table`` as the analyst's own dataset ``name`` with the column spec
        ``columns`` (as in ``add_dataset``); returns the dataset name to query."""
        ...


@dataclass
class ZoneTarget:
    """A real zone handle acting as the attacker (embedded ``Zone`` or ``RemoteZone``).

    Example:
        >>> from collabzone.attacks import Question, ZoneTarget
        >>> target = ZoneTarget(zone, purpose="marketing")  # doctest: +SKIP
        >>> target.ask(Question("SELECT COUNT(*) FROM bank")).status  # doctest: +SKIP
        'released'
    """

    zone: Any
    """The handle: anything with ``submit``, ``result`` and (to upload) ``add_dataset``."""
    purpose: str = ""
    clock: Callable[[], float] = field(default=time.perf_counter)

    def ask(self, question: Question) -> Answer:
        started = self.clock()
        try:
            request = self.zone.submit("sql", question.spec(), self.purpose)
        except CollabzoneError as exc:  # raised instead of recorded: still an answer
            return refused(exc.code, seconds=self.clock() - started)
        status = str(getattr(request.status, "value", request.status))
        if status != "released":
            codes = tuple(reason_code(r) for r in request.reasons) or (status.upper(),)
            return refused(*codes, seconds=self.clock() - started)
        release = self.zone.result(request.id)
        seconds = self.clock() - started
        return from_payload(
            release.payload, seconds=seconds, receipt_suppressed=release.receipt.rows_suppressed
        )

    def upload(self, name: str, table: pa.Table, columns: Sequence[Mapping[str, Any]]) -> str:
        with tempfile.TemporaryDirectory(prefix="cz-attack-") as tmp:
            path = Path(tmp) / f"{name}.parquet"
            pq.write_table(table, path)
            self.zone.add_dataset(name, path, {"columns": [dict(c) for c in columns]})
        return name


__all__ = [
    "Answer",
    "Question",
    "Status",
    "Target",
    "Uploader",
    "ZoneTarget",
    "from_payload",
    "reason_code",
    "refused",
    "suppressed_count",
]
