"""Spark: the governed join + threshold with results as Arrow and views kept, against the
previous path (a Python object per value through ``collect()``, the Parquet views made
again before every statement), in one JVM, alternating, on the same files.

    nice -n 5 .venv/bin/python benchmarks/spark_collect.py --data /tmp/cz-scale/n1000000

(the files of ``benchmarks/scale.py``). Prints wall and CPU seconds of the process tree
(the JVM included) per request and the ratio; nothing is asserted.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks.scale import JOIN, MASTER, measure

from collabzone.remote_tables import Location, SparkTable, spark_session
from tests.sql.remote_support import remote_copy
from tests.sql.sql_support import AGG_RULES, make_fake_zone


class CollectedSparkTable(SparkTable):
    """The previous path: the view made again for each statement, rows collected."""

    query_arrow = None  # type: ignore[assignment]  # (the engine then calls query())

    def prepare(self) -> None:
        self._frame()

    def query(self, sql: str, *, timeout_s: float) -> tuple[list[str], list[tuple[Any, ...]]]:
        self.prepare()
        frame = spark_session(self._master).sql(sql)
        return list(frame.columns), [tuple(r) for r in frame.collect()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    paths = {n: str(Path(args.data) / f"{n}.parquet") for n in ("bank", "shop")}
    spark_session(MASTER).sql("SELECT 1").collect()
    rules = {**AGG_RULES, "threshold_jitter": 0, "timeout_seconds": 3600}
    kinds: dict[str, type[SparkTable]] = {"arrow": SparkTable, "collect": CollectedSparkTable}
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        for label, kind in kinds.items():

            def opener(dataset: str, kind: type[SparkTable] = kind) -> SparkTable:
                return kind(Location("spark", ("parquet", paths[dataset]), MASTER))

            zone = remote_copy(make_fake_zone(rules, rules), opener=opener)
            got = measure(lambda z=zone: z.submit("analyst", {"sql": JOIN}))
            if label not in best or got["cpu_s"] < best[label]["cpu_s"]:
                best[label] = got
            print(f"{label:8s} {got['wall_s']:7.1f} s  cpu {got['cpu_s']:7.1f} s", flush=True)
    new, old = best["arrow"], best["collect"]
    print(f"best: collect/arrow wall {old['wall_s'] / new['wall_s']:.1f}x, "
          f"cpu {old['cpu_s'] / new['cpu_s']:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
