"""Reproduces ARX's score on the Grassberger parity rows by simulating ARX's check.

    PYTHONPATH=src:. python benchmarks/deid_arx_grassberger_order.py [EntropyLDiversity/0]

ARX's ``EntropyLDiversity.isAnonymous`` adds f G(f) over a class's sensitive values in the
order of its ``Distribution`` hash table and fails the class as soon as the running sum
passes n (G(n) - ln l). Grassberger's G_1 < 0, so that order matters. This script builds
the tables as ARX does (value codes by first appearance in the file; open addressing,
capacity 8 doubling past 3/4 load; a node rolled up from a finer node's packed tables) and
prints the score of ARX's node computed from the rows and rolled up from each node one
level finer, next to ARX's published score and the engine's (docs/deid.md "Parity with
ARX"). Not a timing; it prints figures for the record.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collabzone.techniques.deid import read_arx_csv  # noqa: E402
from collabzone.techniques.deid._models import grassberger_g  # noqa: E402
from tests.deid.arx_parity_cases import ADULT_COLUMNS, CASES, lattice_for  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "arx_adult"

Packed = list[tuple[int, int]]
Classes = tuple[list[tuple[int, ...]], list[Packed], list[int], list[int]]
"""Per class, in ARX's order: key, packed (value, count) pairs, size, first row."""


class Table:
    """ARX's ``Distribution``: open addressing on the value code, linear probing."""

    def __init__(self, capacity: int = 8) -> None:
        self.slots: list[tuple[int, int] | None] = [None] * capacity
        self.size = 0
        self.threshold = int(capacity * 0.75)

    def add(self, value: int, count: int) -> None:
        i = value & (len(self.slots) - 1)
        while True:
            slot = self.slots[i]
            if slot is None:
                self.slots[i] = (value, count)
                self.size += 1
                if self.size > self.threshold:
                    self._grow()
                return
            if slot[0] == value:
                self.slots[i] = (value, slot[1] + count)
                return
            i = (i + 1) & (len(self.slots) - 1)

    def _grow(self) -> None:
        old, self.slots = self.slots, [None] * (2 * len(self.slots))
        self.threshold = int(len(self.slots) * 0.75)
        for slot in old:
            if slot is not None:
                i = slot[0] & (len(self.slots) - 1)
                while self.slots[i] is not None:
                    i = (i + 1) & (len(self.slots) - 1)
                self.slots[i] = slot

    def packed(self) -> Packed:
        return [s for s in self.slots if s is not None]


def _capacity(x: int) -> int:
    """ARX's ``HashTableUtil.calculateCapacity``: the power of two at or above x."""
    return 16 if x == 0 else 1 << (x - 1).bit_length()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case", nargs="?", default="EntropyLDiversity/0")
    args = parser.parse_args()
    case = {c.id: c for c in CASES}[args.case]
    assert case.node is not None and case.sensitive is not None
    adult = pacsv.read_csv(DATA / "adult.csv", parse_options=pacsv.ParseOptions(delimiter=";"))
    hierarchies = {c: read_arx_csv(DATA / f"adult_hierarchy_{c}.csv", c) for c in ADULT_COLUMNS}
    lattice = lattice_for(case, adult, adult, hierarchies)
    levels = case.node
    ell = float(case.models[0][1][1])  # type: ignore[arg-type]
    values = adult.column(case.sensitive).to_pylist()
    codes = {v: i for i, v in enumerate(dict.fromkeys(values))}  # ARX's dictionary
    row_codes = [codes[v] for v in values]
    qis = lattice.encoded.qis

    def keys(node: tuple[int, ...]) -> np.ndarray:
        return np.stack([q.maps[lv][q.codes] for q, lv in zip(qis, node, strict=True)], axis=1)

    def from_rows(node: tuple[int, ...]) -> Classes:
        k = keys(node)
        index: dict[tuple[int, ...], int] = {}
        tables: list[Table] = []
        sizes: list[int] = []
        firsts: list[int] = []
        for row, code in enumerate(row_codes):
            key = tuple(int(v) for v in k[row])
            i = index.setdefault(key, len(tables))
            if i == len(tables):
                tables.append(Table())
                sizes.append(0)
                firsts.append(row)
            tables[i].add(code, 1)
            sizes[i] += 1
        return list(index), [t.packed() for t in tables], sizes, firsts

    def rolled(finer: Classes, node: tuple[int, ...]) -> Classes:
        k = keys(node)
        index: dict[tuple[int, ...], int] = {}
        tables: list[Table] = []
        sizes: list[int] = []
        firsts: list[int] = []
        for packed, size, first in zip(finer[1], finer[2], finer[3], strict=True):
            key = tuple(int(v) for v in k[first])
            i = index.setdefault(key, len(tables))
            if i == len(tables):
                tables.append(Table(_capacity(len(packed))))
                sizes.append(0)
                firsts.append(first)
            for value, count in packed:
                tables[i].add(value, count)
            sizes[i] += size
        return list(index), [t.packed() for t in tables], sizes, firsts

    def fails(packed: Packed, n: int) -> bool:
        if len(packed) < math.ceil(ell):
            return True
        bound, running = n * (grassberger_g(n) - math.log(ell)), 0.0
        for _, count in packed:
            running += count * grassberger_g(count)
            if bound < running:  # ARX's early abort
                return True
        return False

    snap = lattice._snapshot(levels)
    _, kept = lattice._stats(snap)
    position = {
        tuple(int(v) for v in key): i
        for i, key in enumerate(np.stack([snap.column(j) for j in range(len(levels))], axis=1))
    }
    base = lattice.costs.values(levels) if lattice.costs else None
    assert base is not None and lattice.costs is not None

    def score(mask: np.ndarray) -> tuple[float, int]:
        assert lattice.costs is not None
        gone = ~mask
        cut = [snap.column(j)[gone] for j in range(len(levels))]
        total = base + lattice.costs.suppression(levels, cut, snap.sizes[gone])
        return float(lattice.costs.score(total)), int(snap.sizes[gone].sum())

    def arx_score(classes: Classes) -> tuple[float, int]:
        mask = np.ones(snap.sizes.shape[0], dtype=bool)
        for key, packed, n in zip(classes[0], classes[1], classes[2], strict=True):
            if fails(packed, n):
                mask[position[key]] = False
        return score(mask)

    print(f"{case.id} node {levels}: ARX's published score {case.score!r}")
    print(f"  engine (whole estimate)        {score(kept)}")
    print(f"  ARX's check, from the rows     {arx_score(from_rows(levels))}")
    for j, level in enumerate(levels):
        if level:
            finer = tuple(v - (i == j) for i, v in enumerate(levels))
            print(f"  rolled up from {finer} {arx_score(rolled(from_rows(finer), levels))}")


if __name__ == "__main__":
    main()
