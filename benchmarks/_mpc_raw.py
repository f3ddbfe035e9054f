"""Baseline for benchmarks/mpc.py: the same statistics written directly in MPyC.

One process per party::

    python benchmarks/_mpc_raw.py REPORT OUT.json COLUMN.bin [COLUMN.bin ...] -P ... -I i

Each ``COLUMN.bin`` holds this party's shares of one column, 16 big-endian bytes a
share, in a plain file (no sealing, no agreement checks). The code is what one would
write in MPyC 0.11 by hand for ``REPORT`` (mean, variance or correlation): secure
fixed-point arrays (``SecFxp(64)``), one numpy operation over all shares, one secure
inner product (matrix product) per statistic, division by a public count as
``mpyc.statistics.mean`` does it, MPyC's ``_fsqrt`` for the roots, ``mpc.output``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from mpyc.runtime import mpc
from mpyc.statistics import _fsqrt


def _divide(x, d):
    e = max(d.bit_length() - 1, 0)
    return x * (2**e / d) * 2**-e


async def main() -> None:
    report, out_path, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    started, cpu_started = time.perf_counter(), time.process_time()
    secfxp = mpc.SecFxp(64)
    columns = []
    for path in paths:
        with open(path, "rb") as handle:
            halves = np.frombuffer(handle.read(), dtype=">u8").reshape(-1, 2)
        values = (halves[:, 0].astype(object) << 64) | halves[:, 1].astype(object)
        columns.append(secfxp.array(secfxp.field.array(values, check=False), integral=False))
    n, k = columns[0].shape[0], len(columns)
    loaded, cpu_loaded = time.perf_counter(), time.process_time()
    await mpc.start()
    connected, cpu_connected = time.perf_counter(), time.process_time()
    if report == "mean":
        outs = [_divide(mpc.np_sum(x), n) for x in columns]
    elif report == "variance":
        outs = []
        for x in columns:
            y = x - _divide(mpc.np_sum(x), n)
            outs.append(_divide(y @ y, n - 1))
    else:
        matrix = mpc.np_vstack(columns)
        centred = matrix - mpc.np_reshape(_divide(mpc.np_sum(matrix, axis=1), n), (k, 1))
        cov = _divide(centred @ mpc.np_transpose(centred), n - 1)
        root = [_fsqrt(cov[i, i]) for i in range(k)]
        outs = [cov[i, j] / (root[i] * root[j]) for i in range(k) for j in range(i + 1, k)]
    values = await mpc.output(outs)
    await mpc.shutdown()
    done, cpu_done = time.perf_counter(), time.process_time()
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "load": loaded - started,
                "mpc": done - connected,
                "load_cpu": cpu_loaded - cpu_started,
                "mpc_cpu": cpu_done - cpu_connected,
                "values": [float(v) for v in values],
            },
            handle,
        )


if __name__ == "__main__":
    mpc.run(main())
