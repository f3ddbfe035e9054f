"""Response-time quantisation: a request's outcome becomes visible only on a public ladder.

How long the zone takes to run a query depends on the data (one more person's rows in a
join, one more group to suppress), so the time an answer or a refusal takes can tell an
analyst whether someone is in a dataset. The zone therefore holds every terminal step of
a request (release, refusal, failure) until the next step of a geometric ladder of public
durations measured from when the zone started on the request::

    quantum, quantum * ratio, quantum * ratio**2, ...

so the response time reveals only which step was reached. A refusal and a release that
finish within the same step are indistinguishable by time. The operator sets the ladder
in zone.toml (``[timing]`` with ``quantum`` seconds and ``ratio``); an agreement may only
raise the quantum (rule ``response_quantum``, merged by the largest value).

>>> Pacing(quantum=0.2, ratio=2.0).step(0.05)
0.2
>>> Pacing(quantum=0.2, ratio=2.0).step(0.3)
0.4
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from collabzone.errors import InvalidInputError

STANDARD_QUANTUM = 0.5
"""Seconds of the first step: above the zone-side time of typical governed queries on a
busy two-core machine (see docs/benchmarks.md), so almost every request lands on it."""
DEFAULT_QUANTUM = STANDARD_QUANTUM
"""The quantum of a zone whose zone.toml sets none (read when a ladder is made, so the
test suite can shorten it; the timing-channel test uses STANDARD_QUANTUM)."""
DEFAULT_RATIO = 2.0
MAX_QUANTUM = 60.0


def _number(doc: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"zone.toml [timing] {key} must be a number")
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidInputError(f"zone.toml [timing] {key} must be from {low:g} to {high:g}")
    return float(value)


@dataclass(frozen=True)
class Pacing:
    """The ladder of public response times: ``quantum * ratio**k`` seconds."""

    quantum: float = field(default_factory=lambda: DEFAULT_QUANTUM)
    ratio: float = DEFAULT_RATIO

    @classmethod
    def parse(cls, doc: Mapping[str, Any] | None) -> Pacing:
        """The ``[timing]`` table of zone.toml (absent: the defaults; ``quantum = 0``
        switches quantisation off, for benchmarks only)."""
        if doc is None:
            return cls()
        if not isinstance(doc, Mapping):
            raise InvalidInputError("zone.toml [timing] must be a table")
        unknown = set(doc) - {"quantum", "ratio"}
        if unknown:
            raise InvalidInputError(
                f"unknown zone.toml [timing] keys: {', '.join(sorted(unknown))}"
            )
        return cls(
            quantum=_number(doc, "quantum", DEFAULT_QUANTUM, 0.0, MAX_QUANTUM),
            ratio=_number(doc, "ratio", DEFAULT_RATIO, 1.1, 10.0),
        )

    def raised(self, quantum: Any) -> Pacing:
        """This ladder with its first step raised to an agreement's ``response_quantum``
        (never lowered; a malformed value is ignored here and refused by policy)."""
        if isinstance(quantum, bool) or not isinstance(quantum, int | float):
            return self
        if not math.isfinite(quantum) or quantum <= self.quantum:
            return self
        return replace(self, quantum=min(float(quantum), MAX_QUANTUM))

    def step(self, elapsed: float) -> float:
        """The first ladder step at or after ``elapsed`` seconds."""
        if self.quantum <= 0:
            return elapsed
        step = self.quantum
        while step < elapsed:
            step *= self.ratio
        return step


@dataclass
class Clock:
    """When the zone started on one request, and the ladder its outcome waits for."""

    pacing: Pacing
    started: float = field(default_factory=time.monotonic)

    def wait(self) -> None:
        """Sleep until the next ladder step (call right before committing an outcome).

        The young garbage generations are collected first, inside the padding (under a
        millisecond): how much a run left behind depends on the data, and a collection
        triggered after the step would show in the response time. (A full collection
        costs ~90 ms of CPU per request here, so it is left to the interpreter.)
        """
        if self.pacing.quantum > 0:
            gc.collect(1)
        elapsed = time.monotonic() - self.started
        remaining = self.pacing.step(elapsed) - elapsed
        if remaining > 0:
            time.sleep(remaining)
