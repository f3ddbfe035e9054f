"""Disclosure audit of validation feedback: the atoms of every evaluation set released (pure).

Everything the validator releases in exact form is a count over an *evaluation set*: the
labelled records of a submission, of a declared group, of its predicted-positive or
-negative part, of a calibration band (their positives, their size). Any linear
combination of such counts, from one ML party or several, is a count over a union of
*atoms*: the classes of records that lie in exactly the same released sets. The pairwise
monitor this replaces compared two sets at a time, so three overlapping files
(A + {x}, A + B, B) isolated x; here the audit keeps the partition of every record ever
submitted into atoms and refuses a submission that would cover an atom of fewer labelled
records than the minimum (Chin and Ozsoyoglu's auditing, via :mod:`collabzone.disclosure`).

Units are records, identified by a keyed digest of their token under the node's own key
(the zone stores only digests it cannot map back). A record's weight is 1 if the owner
held a label for it when it was last submitted, else 0: an atom of unlabelled records
alone would reveal that they are unlabelled, so it counts as small, like an empty region.
The decision reads only which records were sent and whether they are labelled, never a
label, and its threshold is jittered by a keyed hash of the atom's members, so one record
more or less at the boundary changes the outcome only by chance and asking again in other
words draws no new jitter.

State (one per audited space, stored by the zone with the release, compare-and-swap):
units (sorted digests), their atom labels and weights, which atoms are covered, the id of
the node key the digests were made under, and how many releases built it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from collabzone.disclosure import Finding, Jitter, check, membership_codes, refine

Hashes = NDArray[np.uint64]
Labels = NDArray[np.int64]
Flags = NDArray[np.bool_]
FORMAT = 1


def space_names(dataset: str, requester: str) -> tuple[str, str]:
    """The audited spaces of ``dataset``: every ML party's releases, and one party's.

    The zone hands a node these two spaces of its job (``<technique>:<dataset>:all`` and
    ``<technique>:<dataset>:requester:<name>``, see ``Zone.job_context``) and accepts
    updates to no other.
    """
    return f"validator:{dataset}:all", f"validator:{dataset}:requester:{requester}"


@dataclass(frozen=True)
class State:
    """One space's atoms: every record submitted so far, its atom and weight."""

    key_id: str
    units: Hashes = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    labels: Labels = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    weights: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    covered: Flags = field(default_factory=lambda: np.zeros(1, dtype=np.bool_))
    """Per atom label: whether a released set covers it."""
    releases: int = 0

    def to_bytes(self) -> bytes:
        meta = {"format": FORMAT, "key_id": self.key_id, "releases": self.releases}
        sink = io.BytesIO()
        np.savez_compressed(
            sink,
            units=self.units.astype("<u8"),
            labels=self.labels.astype("<i8"),
            weights=self.weights.astype(np.uint8),
            covered=self.covered,
            meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
        )
        return sink.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> State:
        with np.load(io.BytesIO(blob), allow_pickle=False) as doc:
            meta = json.loads(bytes(doc["meta"]).decode("utf-8"))
            if meta.get("format") != FORMAT:
                raise ValueError("unknown validator audit state format")
            return cls(
                key_id=str(meta["key_id"]),
                units=doc["units"].astype(np.uint64),
                labels=doc["labels"].astype(np.int64),
                weights=doc["weights"].astype(np.float64),
                covered=doc["covered"].astype(np.bool_),
                releases=int(meta["releases"]),
            )


@dataclass(frozen=True)
class Added:
    """A space with one more release, and what the check found in it."""

    state: State
    finding: Finding


def add(
    state: State,
    units: Hashes,
    labelled: Flags,
    cells: Sequence[Flags],
    *,
    min_size: int,
    jitter: Jitter | None = None,
) -> Added:
    """Refine ``state`` by one submission's released sets and check the atoms it touched.

    ``units`` are the submitted records' digests, ``labelled`` whether each has a label,
    ``cells`` one membership mask (over the submitted records) per released set. The new
    state is meant to be stored only if the release goes out.
    """
    if units.shape != labelled.shape or any(c.shape != units.shape for c in cells):
        raise ValueError("one digest, one label flag and one membership flag per record")
    universe = np.union1d(state.units, units)
    covered = state.covered
    uncovered = np.flatnonzero(~covered)
    if uncovered.size:
        root = int(uncovered[0])
    else:  # every atom was released: new records start in a new, uncovered one
        root = int(covered.size)
        covered = np.concatenate((covered, [False]))
    labels = np.full(universe.size, root, dtype=np.int64)
    weights = np.zeros(universe.size, dtype=np.float64)
    if state.units.size:
        earlier = np.searchsorted(universe, state.units)
        labels[earlier] = state.labels
        weights[earlier] = state.weights
    position = np.searchsorted(universe, units).astype(np.int64)
    weights[position] = labelled.astype(np.float64)
    members = [position[mask] for mask in cells]
    which = [np.full(m.size, i, dtype=np.int64) for i, m in enumerate(members)]
    codes = membership_codes(
        universe.size,
        np.concatenate(members) if members else np.zeros(0, dtype=np.int64),
        np.concatenate(which) if which else np.zeros(0, dtype=np.int64),
    )
    step = refine(labels, covered, codes)
    finding = check(
        step.labels,
        step.covered,
        weights,
        touched=step.touched,
        min_size=min_size,
        jitter=jitter,
        units=universe,
    )
    after = State(state.key_id, universe, step.labels, weights, step.covered, state.releases + 1)
    return Added(after, finding)


__all__ = ["FORMAT", "Added", "State", "add", "space_names"]
