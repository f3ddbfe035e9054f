"""Which process carries a request, and whether it can still finish it (crash recovery).

A request's zone-side steps (plan, check, run, release) happen inside one process: the
one that submitted it, or approved it, or took a node's result. That process writes its
identity into ``requests.worker`` as ``host:pid:start`` (``host`` names the machine, its
boot and its PID namespace; ``start`` is the process's start time, so a reused PID is not
mistaken for the original). A zone that opens after a crash fails the requests whose
worker is provably dead on this host, and those of other hosts (or of no recorded worker)
untouched for longer than :data:`LEASE`; nothing was released or charged for them, since
release and debit commit together.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

LEASE = dt.timedelta(hours=6)
"""How long a request of another host may stay untouched before it counts as abandoned
(far beyond any statement timeout: a live worker elsewhere is never failed early)."""

_PROC = Path("/proc")
_identity: tuple[int, str] | None = None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None if unknown."""
    stat = _read(_PROC / str(pid) / "stat")
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of proc(5)


def _host() -> str:
    boot = (_read(_PROC / "sys/kernel/random/boot_id") or "")[:8]
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return f"{socket.gethostname()[:120]}/{boot}/{namespace}"


def current() -> str:
    """This process's worker identity (recomputed after a fork)."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        _identity = (pid, f"{_host()}:{pid}:{_start_time(pid) or '?'}")
    return _identity[1]


def _alive(pid: int, start: str) -> bool:
    if start != "?":
        return _start_time(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def abandoned(worker: str | None, updated_at: dt.datetime, now: dt.datetime) -> bool:
    """Whether the request's worker can no longer finish it.

    On this host the answer is exact (the recorded process is gone or its PID now belongs
    to another process); elsewhere, or with no worker recorded, only a request untouched
    for longer than :data:`LEASE` counts as abandoned.
    """
    if worker and worker.count(":") >= 2:
        host, pid, start = worker.rsplit(":", 2)
        if host == current().rsplit(":", 2)[0] and pid.isdigit():
            return not _alive(int(pid), start)
    return now - updated_at > LEASE
