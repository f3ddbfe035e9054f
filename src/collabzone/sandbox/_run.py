"""Run sealed code in an isolated process, or refuse to run it.

Isolation, outermost first:

1. a new **network namespace** made by ``unshare`` (util-linux): as root ``unshare --net``,
   otherwise ``unshare --user --map-root-user --net`` (an unprivileged user namespace).
   When neither works on this platform the job is refused (:class:`SandboxUnavailable`);
   sealed code never runs unsandboxed;
2. a ``chroot`` into an empty directory (no zone file is reachable by path), then
   privileges dropped: to ``nobody`` when root, every capability inside a user namespace;
3. rlimits: CPU seconds, address space (memory), 16 open files, no file writes; a wall
   clock timeout kills the process from outside;
4. a Python audit hook (which the code cannot remove) stopping sockets, subprocesses,
   native code, ``open`` and imports beyond an allowlist, so a violation is *reported* by
   kind, not only made to fail.

Inputs reach the process on stdin (already read from the encrypted store), the output is
one JSON document on stdout, checked against the declared output schema before anything
is released (:func:`check_output`).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from collabzone.errors import CollabzoneError

Mode = Literal["root", "userns"]
BOOTSTRAP = Path(__file__).with_name("_bootstrap.py")
ALLOWED_IMPORTS: tuple[str, ...] = ("math", "statistics", "json", "collections", "itertools",
                                    "functools", "operator", "datetime", "decimal", "re")  # fmt: skip
OUTPUT_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "float": (int, float),
    "boolean": (bool,),
}


class SandboxUnavailable(CollabzoneError):
    """This platform cannot isolate sealed code (no usable network namespace)."""

    code = "SANDBOX_UNAVAILABLE"


class SealedCodeStopped(CollabzoneError):
    """The sealed code broke its sandbox or its limits and was stopped; ``kind`` says how
    (network, file access, process, native code, memory, cpu, time, output, error)."""

    code = "SEALED_CODE_STOPPED"

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"the sealed code was stopped ({kind}): {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    """Resources a sealed job may use; the approving party sees and agrees to these."""

    cpu_seconds: int = 10
    memory_mb: int = 256
    wall_seconds: float = 30.0
    max_output_bytes: int = 16 * 1024 * 1024

    def as_dict(self) -> dict[str, float]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "memory_mb": self.memory_mb,
            "wall_seconds": self.wall_seconds,
            "max_output_bytes": self.max_output_bytes,
        }


def _prefix(mode: Mode, unshare: str) -> list[str]:
    if mode == "root":
        return [unshare, "--net"]
    return [unshare, "--user", "--map-root-user", "--net"]


@lru_cache(maxsize=1)
def isolation_mode() -> Mode | None:
    """How this platform isolates sealed code, or None (then sealed jobs are refused)."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return None
    modes: tuple[Mode, ...] = ("root", "userns") if os.geteuid() == 0 else ("userns",)
    for mode in modes:
        try:
            done = subprocess.run(
                [*_prefix(mode, unshare), "true"], capture_output=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return mode
    return None


def run_sealed(
    code: str,
    entry: str,
    inputs: Mapping[str, Sequence[Mapping[str, Any]]],
    outputs: Mapping[str, str],
    limits: Limits,
    mode: Mode | None = None,
) -> list[dict[str, Any]]:
    """Run ``entry(inputs)`` of ``code`` isolated; its rows once they match ``outputs``."""
    mode = mode or isolation_mode()
    unshare = shutil.which("unshare")
    if mode is None or unshare is None:
        raise SandboxUnavailable(
            "this platform cannot put sealed code in a network namespace (unshare as root, "
            "or unprivileged user namespaces); the job is refused rather than run "
            "unsandboxed: run the zone on Linux with user namespaces enabled"
        )
    nobody = pwd.getpwnam("nobody")
    with tempfile.TemporaryDirectory(prefix="cz-sealed-") as jail:
        os.chmod(jail, 0o555)
        job = {
            "code": code,
            "entry": entry,
            "inputs": {k: list(v) for k, v in inputs.items()},
            "limits": limits.as_dict(),
            "jail": jail,
            "mode": mode,
            "nobody": [nobody.pw_uid, nobody.pw_gid],
            "allowed_imports": list(ALLOWED_IMPORTS),
        }
        try:
            done = subprocess.run(
                [*_prefix(mode, unshare), sys.executable, "-I", str(BOOTSTRAP)],
                input=json.dumps(job).encode(),
                capture_output=True,
                timeout=limits.wall_seconds,
                env={"PATH": "/usr/bin:/bin"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SealedCodeStopped("time", f"ran past {limits.wall_seconds} s") from None
    if done.returncode < 0:
        sig = -done.returncode
        kind = "cpu" if sig in (signal.SIGXCPU, signal.SIGKILL) else "killed"
        raise SealedCodeStopped(kind, f"killed by signal {signal.Signals(sig).name}")
    if len(done.stdout) > limits.max_output_bytes:
        raise SealedCodeStopped("output", "output larger than the declared limit")
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        doc = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise SealedCodeStopped("output", "no result document (the process died)")
    if not doc.get("ok"):
        raise SealedCodeStopped(str(doc.get("kind")), str(doc.get("detail")))
    return check_output(doc.get("rows"), outputs)


def check_output(rows: Any, outputs: Mapping[str, str]) -> list[dict[str, Any]]:
    """``rows`` if it is a list of objects with exactly the declared columns and types."""
    if not isinstance(rows, list):
        raise SealedCodeStopped("output", "the entry point must return a list of rows")
    names = set(outputs)
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != names:
            raise SealedCodeStopped("output", f"row {i} does not have the declared columns")
        for column, kind in outputs.items():
            value = row[column]
            ok = isinstance(value, OUTPUT_TYPES[kind]) and not (
                kind in ("integer", "float") and isinstance(value, bool)
            )
            if not ok:
                raise SealedCodeStopped("output", f"row {i}: {column} is not {kind}")
    return [dict(r) for r in rows]
