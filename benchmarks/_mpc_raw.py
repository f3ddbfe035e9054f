"""Baseline for benchmarks/mpc.py: the same statistics written directly in MPyC.

One process per party: ``python benchmarks/_mpc_raw.py SHARES.json OUT.json -P ... -I i``.
Shares come from a plain JSON file (no sealing, no checks); the statistics are MPyC's own
``mpyc.statistics`` functions, opened with ``mpc.output``.
"""

from __future__ import annotations

import json
import sys
import time

from mpyc.runtime import mpc
from mpyc.statistics import correlation, mean, variance


async def main() -> None:
    shares_path, out_path = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    with open(shares_path, encoding="utf-8") as handle:
        columns = json.load(handle)
    secfxp = mpc.SecFxp(64)
    data = {c: [secfxp(secfxp.field(int(v))) for v in values] for c, values in columns.items()}
    loaded = time.perf_counter()
    await mpc.start()
    connected = time.perf_counter()
    names = list(data)
    outs = [mean(data[c]) for c in names] + [variance(data[c]) for c in names]
    outs += [correlation(data[a], data[b]) for i, a in enumerate(names) for b in names[i + 1 :]]
    await mpc.output(outs)
    await mpc.shutdown()
    done = time.perf_counter()
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump({"load": loaded - started, "mpc": done - connected}, handle)


if __name__ == "__main__":
    mpc.run(main())
