"""End to end: three real MPyC server processes on 127.0.0.1 ports (one test, ~10-30 s).

The only multi-process test of the package: the servers each hold one share of Adult's
columns, run the report over TCP between themselves, and write their output shares; the
recipient opens them (any two suffice) and gets what numpy computes on the plain data.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from collabzone.techniques.mpc import ReportSpec, open_report

from .conftest import make_stores


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_three_server_processes_compute_what_numpy_computes(
    tmp_path: Path, master_key: str
) -> None:
    stores, data = make_stores(tmp_path, master_key, servers=3, threshold=1, rows=200)
    spec = ReportSpec("regression", ("adult",), ("education_num", "hours"), "ministry")
    ports = _free_ports(3)
    env = {
        **os.environ,
        "COLLABZONE_MASTER_KEY": master_key,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    results = []
    for number, report in enumerate((spec,)):
        (tmp_path / f"report{number}.json").write_text(json.dumps(report.to_json()))
        procs = []
        for index, store in enumerate(stores):
            command = [
                sys.executable,
                "-m",
                "collabzone.techniques.mpc._process",
                "--store",
                str(store.root),
                "--report",
                str(tmp_path / f"report{number}.json"),
                "--shares-to",
                str(tmp_path / f"out{number}-{index}.json"),
                *(arg for port in ports for arg in ("-P", f"127.0.0.1:{port}")),
                "-I",
                str(index),
            ]
            procs.append(
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            )
        try:
            for proc in procs:
                out, _ = proc.communicate(timeout=120)
                assert proc.returncode == 0, out.decode()[-2000:]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        outputs = [json.loads((tmp_path / f"out{number}-{i}.json").read_text()) for i in range(3)]
        # a single server's output share is not the result; any two open it
        results.append(
            (outputs, open_report(outputs[:2], "ministry"), open_report(outputs[1:], "ministry"))
        )
        ports = _free_ports(3)

    (outputs, first, again) = results[0]
    slope, intercept = np.polyfit(data["education_num"], data["hours"], 1)
    for opened in (first, again):
        assert opened["result"]["slope"] == pytest.approx(slope, rel=1e-4)
        assert opened["result"]["intercept"] == pytest.approx(intercept, rel=1e-4)
    for doc in outputs:  # what each server saw and wrote: a share, never the slope
        share = int(doc["shares"][0])
        assert abs(share - round(slope * 20 / 100 * 2**32)) > 2**40


@pytest.mark.slow
def test_three_server_processes_over_mutual_tls(tmp_path: Path, master_key: str) -> None:
    """``--ssl`` with generated certificates: each server's directory holds its own key only."""
    from collabzone.techniques.mpc._tls import make_test_certificates

    stores, data = make_stores(tmp_path, master_key, servers=3, threshold=1, rows=100)
    homes = [tmp_path / f"home{i}" for i in range(3)]
    make_test_certificates(homes)
    for index, home in enumerate(homes):
        keys = sorted(p.name for p in (home / ".config").glob("*.key"))
        assert keys == [f"party_{index}.key"]
    spec = ReportSpec("mean", ("adult",), ("age",), "ministry")
    (tmp_path / "report.json").write_text(json.dumps(spec.to_json()))
    ports = _free_ports(3)
    env = {**os.environ, "COLLABZONE_MASTER_KEY": master_key,
           "PYTHONPATH": os.pathsep.join(sys.path)}  # fmt: skip
    procs = []
    for index, store in enumerate(stores):
        command = [sys.executable, "-m", "collabzone.techniques.mpc._process",
                   "--store", str(store.root), "--report", str(tmp_path / "report.json"),
                   "--shares-to", str(tmp_path / f"tls{index}.json"),
                   *(a for p in ports for a in ("-P", f"127.0.0.1:{p}")), "-I", str(index),
                   "--ssl", "--connect-timeout", "120"]  # fmt: skip
        procs.append(
            subprocess.Popen(command, env=env, cwd=homes[index], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        )  # fmt: skip
    logs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=180)
            logs.append(out.decode())
            assert proc.returncode == 0, out.decode()[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert any("connected via SSL" in log for log in logs), logs[0][-1000:]
    outputs = [json.loads((tmp_path / f"tls{i}.json").read_text()) for i in range(3)]
    opened = open_report(outputs[:2], "ministry")["result"]
    assert opened["age"] == pytest.approx(data["age"].mean(), abs=1e-6)
