"""Brute-force defence: failure limits with back-off, and denials audited once per window.

A token bucket shared with ordinary traffic never fires on a password-guessing run (200
wrong secrets fit in a burst of 200), and auditing every refusal lets an attacker flood
the audit log. So failures are counted on their own:

* :class:`FailureGuard` counts failed authentications per key (a client address, a
  client id). Past ``threshold`` failures within ``window`` seconds the key is locked
  for a back-off that doubles with every further failure (up to ``cap``). While locked,
  an attempt is answered 429 *before* its secret is checked, so guessing gains nothing.
* :class:`DenialAudit` writes the first refusal of a kind (actor, reason, address) at
  once and folds the repeats of the next ``window`` seconds into one aggregated
  ``auth.denied`` event with their count, written when the window closes.

Both are pure bookkeeping around an injected clock and writer, so tests drive them in
memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]
Writer = Callable[[str, str, list[str], Mapping[str, Any]], None]
"""Writes one ``auth.denied`` event: (actor, subject, parties, details)."""


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    strikes: int = 0


class FailureGuard:
    """Failed-authentication counters with exponential back-off, per key.

    >>> guard = FailureGuard(threshold=3, window=60, base=1, cap=60, clock=lambda: 0.0)
    >>> [guard.fail("ip:1.2.3.4") for _ in range(4)]
    [0.0, 0.0, 1.0, 2.0]
    >>> guard.locked(["ip:1.2.3.4"])
    2.0
    """

    def __init__(
        self,
        *,
        threshold: int,
        window: float,
        base: float = 1.0,
        cap: float = 900.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._window = window
        self._base = base
        self._cap = cap
        self._clock = clock
        self._keys: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def locked(self, keys: Iterable[str]) -> float:
        """Seconds until every key in ``keys`` may try again (0.0: none is locked)."""
        now = self._clock()
        with self._lock:
            waits = [self._keys[k].locked_until - now for k in keys if k in self._keys]
        return max([0.0, *waits])

    def fail(self, key: str) -> float:
        """Count one failure for ``key``; the lock it now carries, in seconds (0.0: none)."""
        now = self._clock()
        with self._lock:
            entry = self._keys.setdefault(key, _Failures())
            entry.times = [t for t in entry.times if now - t < self._window] + [now]
            if len(entry.times) < self._threshold:
                entry.strikes = 0
                return 0.0
            wait = min(self._cap, self._base * 2.0**entry.strikes)
            entry.strikes += 1
            entry.locked_until = now + wait
            self._prune(now)
            return wait

    def succeed(self, key: str) -> None:
        """A key that authenticated starts afresh (its earlier failures were typos)."""
        with self._lock:
            self._keys.pop(key, None)

    def _prune(self, now: float) -> None:
        if len(self._keys) < 10_000:
            return
        for key in [
            k
            for k, v in self._keys.items()
            if v.locked_until <= now and all(now - t >= self._window for t in v.times)
        ]:
            del self._keys[key]


@dataclass
class _Pending:
    subject: str
    parties: list[str]
    count: int = 0
    locked: int = 0
    first: float = 0.0
    last: float = 0.0
    subjects: set[str] = field(default_factory=set)


class DenialAudit:
    """Audits refusals without letting a flood of them drown the log.

    The first refusal of a kind is written at once (a single wrong attempt is still
    visible to the auditor straight away); the repeats of the following ``window`` seconds
    become one event carrying ``repeated``, the number folded into it.
    """

    def __init__(self, write: Writer, *, window: float, clock: Clock = time.monotonic) -> None:
        self._write = write
        self._window = window
        self._clock = clock
        self._open: dict[tuple[str, str, str], float] = {}
        self._pending: dict[tuple[str, str, str], _Pending] = {}
        self._timers: dict[tuple[str, str, str], threading.Timer] = {}
        self._lock = threading.Lock()

    def deny(
        self,
        actor: str,
        subject: str,
        parties: list[str],
        reason: str,
        client: str = "",
        *,
        locked: bool = False,
    ) -> None:
        """Record one refusal of ``actor`` on ``subject`` (written now or folded).

        ``locked`` marks an attempt refused by a lock-out before its secret was checked;
        it folds into the same window as the failures that caused the lock-out.
        """
        key = (actor, reason, client)
        now = self._clock()
        with self._lock:
            opened = self._open.get(key)
            if opened is None or now - opened >= self._window:
                self._open[key] = now
                fold = False
            else:
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._pending[key] = _Pending(subject, parties, first=now)
                    timer = threading.Timer(self._window - (now - opened), self._flush, (key,))
                    timer.daemon = True
                    self._timers[key] = timer
                    timer.start()
                pending.count += 1
                pending.locked += int(locked)
                pending.last = now
                if len(pending.subjects) < 20:
                    pending.subjects.add(subject)
                fold = True
        if not fold:
            details = _details(reason, client)
            if locked:
                details["locked_out"] = 1
            self._write(actor, subject, parties, details)

    def _flush(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            pending = self._pending.pop(key, None)
            self._timers.pop(key, None)
            if pending is not None:
                # the aggregate closes this window; the next refusal opens a new one
                self._open.pop(key, None)
        if pending is None:
            return
        actor, reason, client = key
        details = {
            **_details(reason, client),
            "repeated": pending.count,
            "locked_out": pending.locked,
            "window_seconds": self._window,
            "subjects": sorted(pending.subjects),
        }
        self._write(actor, pending.subject, pending.parties, details)

    def flush(self) -> None:
        """Write every pending aggregate now (at shutdown, and in tests)."""
        with self._lock:
            keys = list(self._pending)
            for timer in self._timers.values():
                timer.cancel()
        for key in keys:
            self._flush(key)


def _details(reason: str, client: str) -> dict[str, Any]:
    return {"reason": reason, **({"client": client} if client else {})}
