"""The sandboxed process's first and only script (run by :mod:`._run`, never imported).

It reads one JSON job from stdin (code, entry point, inputs, limits), then, before the
sealed code runs: preloads the few modules the code may use, installs an audit hook that
stops sockets, subprocesses, native loading and any ``open`` (the inputs are already in
memory), chroots into an empty directory, sets rlimits (CPU, address space, open files,
file size), and drops privileges (to ``nobody`` when root; all capabilities inside a user
namespace). The network namespace was made by ``unshare`` before this script started.
It writes one JSON line to stdout: ``{"ok": true, "rows": [...]}`` or a violation.
"""

import ctypes
import json
import os
import resource
import sys
from typing import Any

VIOLATIONS = (
    ("socket.", "network"),
    ("subprocess.", "process"),
    ("os.exec", "process"),
    ("os.fork", "process"),
    ("os.posix_spawn", "process"),
    ("os.system", "process"),
    ("os.kill", "process"),
    ("ctypes.", "native code"),
    ("open", "file access"),
    ("os.listdir", "file access"),
    ("os.scandir", "file access"),
    ("os.chdir", "file access"),
    ("shutil.", "file access"),
)

NETWORK_MODULES = frozenset(
    {"socket", "_socket", "ssl", "_ssl", "http", "urllib", "asyncio", "selectors", "select"}
)


class SandboxViolation(BaseException):
    """Raised by the audit hook; a BaseException so ``except Exception`` cannot swallow it."""


def report(doc: dict[str, Any]) -> None:
    out = sys.__stdout__
    assert out is not None
    out.write(json.dumps(doc) + "\n")
    out.flush()


def drop_capabilities() -> None:
    """Inside a user namespace (uid 0 there): clear every capability set (capset v3)."""
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    header = Header(0x20080522, 0)
    data = (Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS


def main() -> None:
    job = json.loads(sys.stdin.read())
    limits = job["limits"]
    import math  # noqa: F401  - preloaded for the sealed code
    import statistics  # noqa: F401

    jail = job["jail"]
    os.chroot(jail)
    os.chdir("/")
    if os.geteuid() == 0 and job["mode"] == "root":
        os.setgroups([])
        os.setgid(job["nobody"][1])
        os.setuid(job["nobody"][0])
    elif job["mode"] == "userns":
        drop_capabilities()
    memory = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    allowed_imports = set(job["allowed_imports"])

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "import":
            root = str(args[0]).split(".")[0]
            if root in NETWORK_MODULES:
                raise SandboxViolation(f"network:import {args[0]}")
            if root not in allowed_imports and root not in sys.modules:
                raise SandboxViolation(f"import:{args[0]}")
            return
        for prefix, kind in VIOLATIONS:
            if event.startswith(prefix):
                raise SandboxViolation(f"{kind}:{event}")

    namespace: dict[str, Any] = {"__name__": "sealed"}
    code = compile(job["code"], "<sealed>", "exec")
    sys.addaudithook(hook)
    try:
        exec(code, namespace)
        entry = namespace.get(job["entry"])
        if not callable(entry):
            report({"ok": False, "kind": "entry", "detail": f"no callable {job['entry']}"})
            return
        rows = entry(job["inputs"])
        report({"ok": True, "rows": rows})
    except SandboxViolation as exc:
        kind, _, detail = str(exc).partition(":")
        report({"ok": False, "kind": kind, "detail": detail})
    except MemoryError:
        report({"ok": False, "kind": "memory", "detail": "memory limit exceeded"})
    except Exception as exc:  # the sealed code's own error: its type only, not its text
        report({"ok": False, "kind": "error", "detail": type(exc).__name__})


if __name__ == "__main__":
    main()
