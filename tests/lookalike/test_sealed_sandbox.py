"""The sandbox's layers on their own: the network namespace has no route even for code
the audit hook would not see, the chroot hides the zone's files, limits stop runaways,
and a platform without namespaces refuses instead of running unsandboxed."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from collabzone.sandbox import _run as _sandbox
from collabzone.techniques.sealed import (
    Limits,
    SandboxUnavailable,
    SealedCodeStopped,
    check_output,
    isolation_mode,
    run_sealed,
)

needs_ns = pytest.mark.skipif(isolation_mode() is None, reason="no network namespace here")
OUT = {"token": "string"}


@needs_ns
@pytest.mark.parametrize("mode", ["root", "userns"])
def test_namespace_has_no_network_beneath_the_hook(mode: str) -> None:
    """Layer 1 without layer 4: a plain Python in the same namespace cannot connect."""
    mode_checked = isolation_mode()
    if mode == "root" and mode_checked != "root":
        pytest.skip("not root")
    unshare = shutil.which("unshare")
    assert unshare is not None
    probe = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print('blocked', exc.errno)\n"
    )
    done = subprocess.run(
        [*_sandbox._prefix(mode, unshare), sys.executable, "-c", probe],  # type: ignore[arg-type]
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.stdout.startswith("blocked"), done.stdout + done.stderr


@needs_ns
@pytest.mark.parametrize("mode", ["root", "userns"])
def test_well_behaved_code_runs_in_both_modes(mode: str) -> None:
    if mode == "root" and isolation_mode() != "root":
        pytest.skip("not root")
    code = "def f(inputs):\n    return [{'token': r['t']} for r in inputs['x'] if r['v'] > 1]\n"
    rows = run_sealed(code, "f", {"x": [{"t": "a", "v": 2}, {"t": "b", "v": 0}]}, OUT,
                      Limits(), mode=mode)  # type: ignore[arg-type]  # fmt: skip
    assert rows == [{"token": "a"}]


@needs_ns
def test_cpu_limit_and_wall_clock_stop_runaways() -> None:
    spin = "def f(inputs):\n    while True:\n        pass\n"
    with pytest.raises(SealedCodeStopped) as stopped:
        run_sealed(spin, "f", {"x": []}, OUT, Limits(cpu_seconds=1, wall_seconds=20))
    assert stopped.value.kind == "cpu"
    sleep = "def f(inputs):\n    import time\n    time.sleep(30)\n"
    with pytest.raises(SealedCodeStopped) as stopped:
        run_sealed(sleep, "f", {"x": []}, OUT, Limits(wall_seconds=1))
    assert stopped.value.kind in ("time", "import")


def test_no_namespace_means_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sandbox, "isolation_mode", lambda: None)
    with pytest.raises(SandboxUnavailable, match="refused rather than run unsandboxed"):
        run_sealed("def f(i):\n    return []\n", "f", {"x": []}, OUT, Limits())


@pytest.mark.parametrize(
    "rows",
    [None, [{"token": 1}], [{"token": "a", "extra": "b"}], ["a"], [{"token": True}]],
)
def test_output_schema_is_checked_before_release(rows: object) -> None:
    with pytest.raises(SealedCodeStopped) as stopped:
        check_output(rows, {"token": "string"})
    assert stopped.value.kind == "output"
