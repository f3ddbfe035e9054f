"""Server throughput: catalogue and a governed DP query over HTTP vs the embedded call.

Creates a zone (SQLite by default, or --db postgresql://...) with a bank and a partner,
starts ``python -m collabzone.server`` on a free loopback port, and measures, in this one
process, (a) the embedded ``Zone`` calls (baseline, 1 thread and --clients threads) and (b)
the same calls through ``RemoteZone`` over HTTP with --clients concurrent clients. Prints
requests/s and the ratio HTTP / embedded for each operation.

    .venv/bin/python benchmarks/server.py [--calls 200] [--clients 8] [--db URL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from collabzone.client import connect_remote
from collabzone.keys import MASTER_KEY_ENV, new_master_key
from collabzone.zone import init

SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "region", "type": "string", "class": "dimension", "domain": ["n", "s", "e"]},
    ]
}
QUERY = {"dataset": "partner_data", "epsilon": 0.001, "by": "region"}


def _rate(calls: int, clients: int, make: Callable[[], Any], op: Callable[[Any], Any]) -> float:
    handles = [make() for _ in range(clients)]
    per = calls // clients
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(lambda h=h: [op(h) for _ in range(per)]) for h in handles]:
            future.result()
    return per * clients / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "zone"
        operator, _ = init(root, db_url=args.db)
        tokens = {n: operator.add_party(n, ["provider", "analyst"])[1] for n in ("bank", "partner")}
        csv = Path(tmp) / "p.csv"
        csv.write_text(
            "token,region\n" + "".join(f"t{i},{'nse'[i % 3]}\n" for i in range(2000)), "utf-8"
        )
        partner = operator.as_party(tokens["partner"])
        partner.add_dataset("partner_data", csv, SPEC)
        partner.add_agreement(
            "partner_data",
            grantees=["bank"],
            technique="dp_count",
            purposes=["bench"],
            rules={"epsilon_budget": 1e9},
        )
        port = 20000 + os.getpid() % 20000
        server = subprocess.Popen(
            [sys.executable, "-m", "collabzone.server", "--zone", str(root), "--port", str(port),
             "--rate", "1e6", "--burst", "1000000"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)

            def embedded() -> Any:
                return operator.as_party(tokens["bank"])

            def remote() -> Any:
                handle = connect_remote(url, client_id="bank", client_secret=tokens["bank"])
                handle.me  # noqa: B018 - fetch the token before timing
                return handle

            operations: dict[str, Callable[[Any], Any]] = {
                "catalogue": lambda z: z.catalogue(),
                "dp_count (governed query)": lambda z: z.submit("dp_count", QUERY, "bench"),
                "datasets (read only)": lambda z: z.datasets(),
            }
            store = "PostgreSQL" if args.db else "SQLite"
            print(f"metadata store: {store}; {args.calls} calls per figure; 2-core machine")
            print(
                f"{'operation':28} {'embedded 1t':>12} {'embedded':>10} {'HTTP':>10} {'ratio':>7}"
            )
            for name, op in operations.items():
                one = _rate(args.calls // 2, 1, embedded, op)
                emb = _rate(args.calls, args.clients, embedded, op)
                http = _rate(args.calls, args.clients, remote, op)
                print(
                    f"{name:28} {one:10.1f}/s {emb:8.1f}/s {http:8.1f}/s {http / emb:7.2f}"
                    f"   (HTTP with {args.clients} clients / embedded with {args.clients} threads)"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
