"""One audited space: a protected dataset's entities and phantoms, and the atoms they form.

A :class:`Space` is everything the zone remembers of what was released about one
protected dataset (seen by every analyst, or by one when an agreement narrows it): each
entity's atom label, and a phantom on every point of the grid of regions the released
conditions tell apart. :func:`audit` adds one release (:class:`ReleasedCells`) and says
which atoms it would leave too small; the caller stores the new space only if the release
goes out. Nothing here holds a data value: entities are 64-bit keyed hashes, conditions
are the analyst's own SQL, and the grid's representatives come from the literals.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from collabzone.disclosure._atoms import (
    Counted,
    Finding,
    Flags,
    Hashes,
    Jitter,
    Labels,
    compact,
    content_hashes,
    membership_codes_sparse,
    refine_sparse,
)
from collabzone.disclosure._derive import small_atoms
from collabzone.disclosure._grid import AttributeDim, TokenDim, _sorted_unique
from collabzone.disclosure._lookup import positions, positions_found
from collabzone.disclosure._split import Split, recount, split_release
from collabzone.model import Column, ColumnType

if TYPE_CHECKING:
    import duckdb

_MAGIC = b"CZAS6"
_CODECS = {b"CZAS4": "zstd", b"CZAS5": "lz4"}
"""Formats 4 (zstd) and 5 (LZ4) compressed one stream of every array; 6 compresses each
array on its own (people's hashes not at all) and narrows labels to 32 bits."""
MAX_PHANTOMS = 2_000_000
"""Largest grid of regions audited; beyond it new exact answers on the dataset are refused."""


class GridTooLarge(Exception):
    """The released conditions split the dataset into more regions than can be audited."""

    def __init__(self, regions: int) -> None:
        super().__init__(f"{regions} regions")
        self.regions = regions


@dataclass(frozen=True)
class ReleasedCells:
    """One release's cells as one protected dataset sees them.

    Cell ``i`` holds the dataset's entities in ``members[i]``; as a condition, it is
    ``condition_sql`` (over the dataset's own columns) AND ``group_columns = own_values[i]``
    AND, for each joined key column ``c``, the key is in ``token_sets[c][i]`` (``None``: the
    cell does not restrict that key) and not in ``token_excluded[c][i]``. With
    ``any_token``, the key conditions combine with OR instead (a record linked on any key).
    Every column ``condition_sql`` reads must be a key of ``condition_literals`` (with the
    literals it is compared with; an empty list for IS NULL).
    """

    members: Sequence[Hashes]
    condition_sql: str | None = None
    condition_literals: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    group_columns: tuple[str, ...] = ()
    own_values: Sequence[tuple[Any, ...]] = ()
    token_sets: Mapping[str, Sequence[Hashes | None]] = field(default_factory=dict)
    token_excluded: Mapping[str, Sequence[Hashes | None]] = field(default_factory=dict)
    any_token: bool = False

    def __post_init__(self) -> None:
        n = len(self.members)
        if self.group_columns and len(self.own_values) != n:
            raise ValueError("one tuple of own group values per cell is needed")
        for column, sets in self.token_sets.items():
            if len(sets) != n:
                raise ValueError(f"one token set per cell is needed for {column!r}")


@dataclass
class Space:
    """The atoms of one protected dataset's released cells (see the module docstring)."""

    entities: Hashes = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    """Every person any release covered (64-bit keyed hashes), sorted."""
    entity_labels: Labels = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    covered: Flags = field(default_factory=lambda: np.zeros(1, dtype=np.bool_))
    people: NDArray[np.int64] = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    """People per atom label (kept as releases move them)."""
    attributes: list[AttributeDim] = field(default_factory=list)
    tokens: list[TokenDim] = field(default_factory=list)
    phantom_labels: Labels = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    releases: int = 0
    cells: int = 0
    """How many cells were released in this space (their global numbers are 0 .. cells-1)."""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple([len(d.cells()) for d in self.attributes] + [d.classes for d in self.tokens])

    @property
    def regions(self) -> int:
        return int(self.phantom_labels.size)

    def remapped(self, old: Hashes, new: Hashes) -> Space:
        """The same space with every entity and token hash in ``old`` replaced by the one
        at the same position in ``new`` (after a re-key changed the tokens it hashed)."""
        order = np.argsort(old)
        old, new = old[order], new[order]

        def swap(values: Hashes) -> Hashes:
            if values.size == 0 or old.size == 0:
                return values
            at = np.clip(np.searchsorted(old, values), 0, old.size - 1)
            hit = old[at] == values
            return np.where(hit, new[at], values).astype(np.uint64)

        def resort(values: Hashes, labels: Labels) -> tuple[Hashes, Labels]:
            moved = swap(values)
            keep = np.argsort(moved, kind="stable")
            return moved[keep], labels[keep]

        entities, entity_labels = resort(self.entities, self.entity_labels)
        tokens = []
        for dim in self.tokens:
            universe, labels = resort(dim.universe, dim.labels)
            tokens.append(TokenDim(dim.column, universe, labels, dim.classes))
        return Space(
            entities=entities,
            entity_labels=entity_labels,
            covered=self.covered,
            people=self.people,
            attributes=list(self.attributes),
            tokens=tokens,
            phantom_labels=self.phantom_labels,
            releases=self.releases,
            cells=self.cells,
        )

    # -- storage --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """A compact, versioned form to store: a JSON header, then each array, people's
        hashes raw (they do not compress), labels as 32-bit integers when they fit, LZ4.

        Format 6 (per-array codecs) stores a space of a million people about four times
        faster than format 5's one LZ4 stream of 64-bit arrays; 4 and 5 still read.
        """
        meta: dict[str, Any] = {
            "attributes": [d.to_json() for d in self.attributes],
            "tokens": [{"column": d.column, "classes": d.classes} for d in self.tokens],
            "releases": self.releases,
            "cells": self.cells,
            "format": 6,
        }
        arrays: dict[str, np.ndarray] = {
            "entities": self.entities,
            "entity_labels": self.entity_labels,
            "covered": self.covered,
            "people": self.people,
            "phantom_labels": self.phantom_labels,
        }
        for i, dim in enumerate(self.tokens):
            arrays[f"token_universe_{i}"] = dim.universe
            arrays[f"token_labels_{i}"] = dim.labels
        layout = []
        chunks = []
        for name, array in arrays.items():
            data = np.ascontiguousarray(array)
            item: dict[str, Any] = {"name": name, "dtype": data.dtype.str,
                                    "shape": list(data.shape)}  # fmt: skip
            if "labels" in name and data.size and int(data.max()) < 2**31:
                data = data.astype(np.int32)
                item["stored_dtype"] = data.dtype.str
            if name == "entities" or name.startswith("token_universe_"):
                chunk = data.tobytes()
            else:
                chunk = pa.compress(data, codec="lz4", asbytes=True)
                item["codec"] = "lz4"
                item["raw_bytes"] = data.nbytes
            item["bytes"] = len(chunk)
            layout.append(item)
            chunks.append(chunk)
        meta["arrays"] = layout
        header = json.dumps(meta).encode("utf-8")
        return b"".join([_MAGIC, len(header).to_bytes(8, "little"), header, *chunks])

    @classmethod
    def from_bytes(cls, blob: bytes) -> Space:
        """The space :meth:`to_bytes` stored (parsed once per content: spaces are values)."""
        return _parse(bytes(blob))


@functools.lru_cache(maxsize=4)
def _parse(blob: bytes) -> Space:
    if blob[: len(_MAGIC)] == _MAGIC:
        meta, doc = _parse_arrays(blob)
    else:
        meta, doc = _parse_stream(blob)
    tokens = [
        TokenDim(t["column"], doc[f"token_universe_{i}"], doc[f"token_labels_{i}"],
                 int(t["classes"]))
        for i, t in enumerate(meta["tokens"])
    ]  # fmt: skip
    attributes = [
        AttributeDim(a["column"], ColumnType(a["type"]), list(a["literals"]), a["nullable"],
                     a["domain"])
        for a in meta["attributes"]
    ]  # fmt: skip
    return Space(
        entities=doc["entities"],
        entity_labels=doc["entity_labels"],
        covered=doc["covered"],
        people=doc["people"],
        attributes=attributes,
        tokens=tokens,
        phantom_labels=doc["phantom_labels"],
        releases=int(meta["releases"]),
        cells=int(meta["cells"]),
    )


def _parse_arrays(blob: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Format 6: a header, then each array raw or LZ4 on its own."""
    head = int.from_bytes(blob[len(_MAGIC) : len(_MAGIC) + 8], "little")
    offset = len(_MAGIC) + 8
    meta = json.loads(blob[offset : offset + head].decode("utf-8"))
    offset += head
    doc: dict[str, np.ndarray] = {}
    view = memoryview(blob)
    for item in meta["arrays"]:
        chunk: Any = view[offset : offset + int(item["bytes"])]
        offset += int(item["bytes"])
        if item.get("codec") == "lz4":
            chunk = pa.decompress(chunk, decompressed_size=int(item["raw_bytes"]),
                                  codec="lz4", asbytes=True)  # fmt: skip
        stored = np.frombuffer(chunk, dtype=np.dtype(item.get("stored_dtype", item["dtype"])))
        # a copy (or a widening): aligned, writable, and not a view into the blob
        array = stored.astype(np.dtype(item["dtype"]), copy=True)
        doc[item["name"]] = array.reshape(item["shape"])
    return meta, doc


def _parse_stream(blob: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Formats 4 and 5: one compressed stream of a header and every array."""
    codec = _CODECS.get(blob[: len(_MAGIC)])
    if codec is None:
        raise ValueError("not a disclosure-audit space")
    size = int.from_bytes(blob[len(_MAGIC) : len(_MAGIC) + 8], "little")
    raw = pa.decompress(blob[len(_MAGIC) + 8 :], decompressed_size=size, codec=codec,
                        asbytes=True)  # fmt: skip
    head = int.from_bytes(raw[:8], "little")
    meta = json.loads(raw[8 : 8 + head].decode("utf-8"))
    offset = 8 + head
    doc: dict[str, np.ndarray] = {}
    for item in meta["arrays"]:
        dtype = np.dtype(item["dtype"])
        count = int(np.prod(item["shape"])) if item["shape"] else 1
        # copied: a view into the blob is unaligned (the header has any length), and every
        # numpy pass of a check over unaligned arrays is far slower
        view = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
        doc[item["name"]] = view.copy().reshape(item["shape"])
        offset += count * dtype.itemsize
    return meta, doc


@dataclass(frozen=True)
class Audit:
    """The outcome of adding one release to a space."""

    space: Space
    """The space with the release added (store it only if the release goes out)."""
    finding: Finding
    regions: int


def _grow_entities(
    space: Space, cells: Sequence[Hashes]
) -> tuple[Hashes, Labels, Flags, NDArray[np.int64], NDArray[np.int64] | None]:
    """The entity universe with the cells' new people added (in no cell yet), and, when
    nobody was new, every cell's people, one cell after another, as positions in it."""
    entities, labels, covered, people = (
        space.entities, space.entity_labels, space.covered, space.people,
    )  # fmt: skip
    members = np.concatenate(cells) if cells else np.zeros(0, dtype=np.uint64)
    if entities.size == 0:
        known = np.zeros(members.size, dtype=np.bool_)
    else:
        at, hits = positions_found(entities, members)
        if hits == members.size:  # everyone is known already (counted during the search)
            return entities, labels, covered, people, at
        # take(clip) is several times faster than fancy indexing on a large release
        known = entities.take(at, mode="clip") == members
    new = _sorted_unique(members[~known])
    empty = np.flatnonzero(~covered)
    if empty.size:
        root = int(empty[0])
    else:
        root = int(covered.size)
        covered = np.concatenate((covered, [False]))
        people = np.concatenate((people, [0]))
    merged = np.concatenate((entities, new))
    order = np.argsort(merged, kind="stable")
    entities = merged[order]
    labels = np.concatenate((labels, np.full(new.size, root, dtype=np.int64)))[order]
    people = people.copy()
    people[root] += new.size
    return entities, labels, covered, people, None


def _expand(space: Space, attributes: list[AttributeDim], tokens: list[TokenDim],
            token_parents: Mapping[str, np.ndarray]) -> Labels:  # fmt: skip
    """The phantom labels on the refined grid: each new point inherits its parent's label."""
    old_attr = {d.column: d for d in space.attributes}
    old_tok = {d.column: d for d in space.tokens}
    grid = space.phantom_labels.reshape(space.shape)
    old_order = [d.column for d in space.attributes] + [d.column for d in space.tokens]
    new_order = [d.column for d in attributes] + [d.column for d in tokens]
    for column in new_order:  # new dimensions enter as an axis of length 1
        if column not in old_order:
            grid = np.expand_dims(grid, axis=grid.ndim)
            old_order.append(column)
    grid = np.transpose(grid, [old_order.index(c) for c in new_order])
    for axis, attribute in enumerate(attributes):
        previous = old_attr.get(attribute.column)
        cells = attribute.cells()
        if previous is None:
            parents = np.zeros(len(cells), dtype=np.int64)
        else:
            ordinals = [c.representative for c in cells]
            parents = previous.classify(ordinals)
            if (parents < 0).any():
                raise AssertionError("a refined cell lies outside every earlier cell")
        grid = np.take(grid, parents, axis=axis)
    for offset, token in enumerate(tokens):
        axis = len(attributes) + offset
        if token.column in token_parents:
            parents = token_parents[token.column]
        elif token.column in old_tok:
            parents = np.arange(token.classes, dtype=np.int64)
        else:
            parents = np.zeros(token.classes, dtype=np.int64)
        grid = np.take(grid, parents, axis=axis)
    return np.ascontiguousarray(grid).reshape(-1)


def _attribute_points(
    con: duckdb.DuckDBPyConnection,
    dims: list[AttributeDim],
    columns: Mapping[str, Column],
    cells: ReleasedCells,
) -> tuple[np.ndarray, np.ndarray]:
    """Which attribute-grid points satisfy the release's own condition, and in which of its
    own-value parts they fall: (point index, part index) pairs.

    The condition and the group values read only some dimensions (``condition_literals``
    names every column the condition reads), so the engine evaluates them on the grid of
    those dimensions alone (a few hundred points, not the whole grid's hundreds of
    thousands) and each selected point stands for every grid point that agrees with it
    there."""
    read = set(cells.condition_literals) | set(cells.group_columns)
    used = tuple(i for i, d in enumerate(dims) if d.column in read)
    sub_points, parts = _sub_points(con, [dims[i] for i in used], columns, cells)
    shape = tuple(len(d.cells()) for d in dims)
    if len(used) == len(dims):
        return sub_points, parts
    order, starts = _by_sub_point(shape, used)
    lengths = starts[sub_points + 1] - starts[sub_points]
    total = int(lengths.sum())
    # the grid points of each selected sub-point: a run of ``order`` each
    first = np.repeat(starts[sub_points] - np.cumsum(lengths) + lengths, lengths)
    points = order.take(first + np.arange(total, dtype=np.int64))
    return points, np.repeat(parts, lengths)


@functools.lru_cache(maxsize=16)
def _by_sub_point(
    shape: tuple[int, ...], used: tuple[int, ...]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The grid's points ordered by their point on the sub-grid of the ``used`` axes, and
    where each sub-point's run starts (cached: the grid changes only with new literals)."""
    index = np.indices(shape).reshape(len(shape), -1)
    sub_shape = tuple(shape[i] for i in used)
    if used:
        sub = np.ravel_multi_index(tuple(index[i] for i in used), sub_shape)
    else:
        sub = np.zeros(index.shape[1] if shape else 1, dtype=np.int64)
    order = np.argsort(sub, kind="stable").astype(np.int64)
    counts = np.bincount(sub, minlength=math.prod(sub_shape) if sub_shape else 1)
    starts = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    return order, starts


def _sub_points(
    con: duckdb.DuckDBPyConnection,
    dims: list[AttributeDim],
    columns: Mapping[str, Column],
    cells: ReleasedCells,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_attribute_points` on the grid of ``dims`` (evaluated by the engine)."""
    import pyarrow as pa

    key = json.dumps(
        [[d.to_json(), columns[d.column].type.value] for d in dims], sort_keys=True, default=str
    )
    grid = _grid_table(key)
    con.register("_cz_grid", grid)
    try:
        where = f" WHERE {cells.condition_sql}" if cells.condition_sql else ""
        if not cells.group_columns:
            rows = con.sql(f"SELECT _cz_point FROM _cz_grid{where}").fetchnumpy()
            points = np.asarray(rows["_cz_point"], dtype=np.int64)
            return points, np.zeros(points.size, dtype=np.int64)
        parts: dict[str, Any] = {"_cz_part": pa.array(np.arange(len(cells.own_values)))}
        for position, column in enumerate(cells.group_columns):
            parts[column] = pa.array(
                [v[position] for v in cells.own_values], type=_arrow_type(columns[column].type)
            )
        con.register("_cz_parts", pa.table(parts))
        match = " AND ".join(f'g."{c}" IS NOT DISTINCT FROM p."{c}"' for c in cells.group_columns)
        rows = con.sql(
            f"SELECT g._cz_point, p._cz_part FROM (SELECT * FROM _cz_grid{where}) AS g "
            f"JOIN _cz_parts AS p ON {match}"
        ).fetchnumpy()
        con.unregister("_cz_parts")
        return (
            np.asarray(rows["_cz_point"], dtype=np.int64),
            np.asarray(rows["_cz_part"], dtype=np.int64),
        )
    finally:
        con.unregister("_cz_grid")


@functools.lru_cache(maxsize=8)
def _grid_table(key: str) -> pa.Table:
    """The phantom grid's points as a table, one column per dimension holding each point's
    representative (``key``: the dimensions and their column types as JSON). Cached: a
    release whose literals the grid already cuts at meets the same grid again."""
    dims = []
    for doc, kind in json.loads(key):
        column = ColumnType(kind)
        dims.append(
            (AttributeDim(doc["column"], ColumnType(doc["type"]), list(doc["literals"]),
                          doc["nullable"], doc["domain"]), column)
        )  # fmt: skip
    shape = [len(d.cells()) for d, _ in dims]
    total = int(np.prod(shape)) if shape else 1
    index = np.indices(shape).reshape(len(shape), -1) if shape else np.zeros((0, 1), np.int64)
    data: dict[str, Any] = {"_cz_point": pa.array(np.arange(total, dtype=np.int64))}
    for axis, (dim, kind) in enumerate(dims):
        reps = pa.array(dim.representatives(), type=_arrow_type(kind))
        data[dim.column] = reps.take(pa.array(index[axis]))
    return pa.table(data)


def _arrow_type(kind: ColumnType) -> Any:
    import pyarrow as pa

    return {
        ColumnType.STRING: pa.string(),
        ColumnType.INTEGER: pa.int64(),
        ColumnType.FLOAT: pa.float64(),
        ColumnType.BOOLEAN: pa.bool_(),
        ColumnType.DATE: pa.date32(),
        ColumnType.TIMESTAMP: pa.timestamp("us"),
    }[kind]


def audit(
    space: Space,
    cells: ReleasedCells,
    columns: Mapping[str, Column],
    con: duckdb.DuckDBPyConnection,
    *,
    min_size: int,
    jitter: Jitter | None = None,
    max_regions: int = MAX_PHANTOMS,
) -> Audit:
    """Add one release to ``space`` and find the atoms it would leave too small.

    Raises :class:`GridTooLarge` when the released conditions would split the dataset into
    more than ``max_regions`` regions (a decision that depends on the conditions and the
    joined token sets, not on the protected data).
    """
    # 1. the grid, refined by this release's literals, group values and token sets
    attributes = list(space.attributes)
    by_name = {d.column: i for i, d in enumerate(attributes)}
    wanted: dict[str, list[Any]] = {c: list(v) for c, v in cells.condition_literals.items()}
    for position, column in enumerate(cells.group_columns):
        wanted.setdefault(column, []).extend(v[position] for v in cells.own_values)
    for column, values in wanted.items():
        if column not in by_name:
            by_name[column] = len(attributes)
            attributes.append(AttributeDim.of(columns[column]))
        attributes[by_name[column]] = attributes[by_name[column]].with_literals(values)
    tokens = list(space.tokens)
    token_parents: dict[str, np.ndarray] = {}
    memo: dict[tuple[str, int], np.ndarray] = {}  # (column, id of a set): its token classes
    every = {c: list(v) for c, v in cells.token_sets.items()}
    for column, sets in cells.token_excluded.items():
        every.setdefault(column, []).extend(sets)
    for column, sets in every.items():
        found_at = next((i for i, d in enumerate(tokens) if d.column == column), None)
        if found_at is None:
            tokens.append(TokenDim(column))
        position = len(tokens) - 1 if found_at is None else found_at
        distinct: dict[int, Hashes] = {}
        for members in sets:  # cells of one release often share one set (the same object)
            if members is not None:
                distinct.setdefault(id(members), members)
        if distinct:
            tokens[position], token_parents[column], classes = tokens[position].refined_by(
                list(distinct.values())
            )
            for key, found in zip(distinct, classes, strict=True):
                memo[(column, key)] = found
    shape = [len(d.cells()) for d in attributes] + [d.classes for d in tokens]
    regions = math.prod(shape) if shape else 1
    if regions > max_regions:
        raise GridTooLarge(regions)
    phantom_labels = _expand(space, attributes, tokens, token_parents)

    # 2. phantoms in this release's cells
    token_shape = [d.classes for d in tokens]
    token_total = math.prod(token_shape) if token_shape else 1
    points, parts = _attribute_points(con, attributes, columns, cells)
    part_of_cell = (
        {i: i for i in range(len(cells.members))}
        if cells.group_columns
        else dict.fromkeys(range(len(cells.members)), 0)
    )
    none = np.zeros(0, dtype=np.int64)
    phantom_units: list[np.ndarray] = []
    for cell in range(len(cells.members)):
        mine = points[parts == part_of_cell[cell]]
        combos = _token_combos(tokens, cells, cell, token_shape, memo) if mine.size else none
        phantom_units.append((mine[:, None] * token_total + combos[None, :]).reshape(-1))

    # 3. refine the units in a cell (entities, then phantoms) and check the touched atoms
    released = [np.asarray(m, dtype=np.uint64) for m in cells.members]
    # the one pass (:mod:`._split`) when everyone is known or new and in one cell; a space
    # that grows gets its new people first
    entities, entity_labels, covered, people = (
        space.entities, space.entity_labels, space.covered, space.people,
    )  # fmt: skip
    at: NDArray[np.int64] | None = None
    fast = None
    if entities.size:
        fast = split_release(entities, entity_labels, phantom_labels, int(covered.size),
                             released, phantom_units)  # fmt: skip
    if fast is None:
        entities, entity_labels, covered, people, at = _grow_entities(space, released)
        if at is None:  # someone was new: the one pass on the grown universe
            fast = split_release(entities, entity_labels, phantom_labels, int(covered.size),
                                 released, phantom_units)  # fmt: skip
    n_entities = entities.size
    alive = people + _phantoms_per_atom(phantom_labels, covered.size)
    if fast is not None:
        step = _counted(covered, people, alive, fast)
    else:
        members = np.concatenate(released) if released else np.zeros(0, dtype=np.uint64)
        entity_units = at if at is not None else positions(entities, members)
        entity_cells = np.repeat(
            np.arange(len(released), dtype=np.int64), [m.size for m in released]
        )
        phantom_cells = [np.full(u.size, c, dtype=np.int64) for c, u in enumerate(phantom_units)]
        units = np.concatenate([entity_units, *(u + n_entities for u in phantom_units)])
        which = np.concatenate([entity_cells, *phantom_cells])
        coded = membership_codes_sparse(units, which)
        labels = np.concatenate((entity_labels, phantom_labels))
        step = refine_sparse(
            labels, covered, people, alive, coded.units, coded.codes, coded.units < n_entities
        )
    total_cells = space.cells + len(cells.members)
    new_entity_labels = step.labels[:n_entities]

    def content(wanted: Labels) -> Hashes:
        return content_hashes(new_entity_labels, entities, wanted)

    finding = small_atoms(
        step,
        min_size=min_size,
        jitter=jitter,
        content=content,
    )
    labels_after, covered_after, people_after = step.labels, step.covered, step.people
    if covered_after.size > 4 * int(np.count_nonzero(step.units)) + 1024:
        packed = compact(step.labels, step.covered, step.people, step.units)
        labels_after, covered_after, people_after = packed.labels, packed.covered, packed.people
    after = Space(
        entities=entities,
        entity_labels=labels_after[:n_entities],
        covered=covered_after,
        people=people_after,
        attributes=attributes,
        tokens=tokens,
        phantom_labels=labels_after[n_entities:],
        releases=space.releases + 1,
        cells=total_cells,
    )
    return Audit(after, finding, regions)


def _phantoms_per_atom(phantom_labels: Labels, n_atoms: int) -> NDArray[np.int64]:
    """Phantoms per atom label."""
    counts: NDArray[np.int64] = np.bincount(phantom_labels, minlength=n_atoms)[:n_atoms]
    return counts


def _counted(
    covered: Flags, people: NDArray[np.int64], units: NDArray[np.int64], split: Split
) -> Counted:
    """:func:`refine_sparse`'s result from the one-pass split (``people`` and ``units``:
    per atom before it)."""
    people_after, units_after, touched = recount(split, people, units)
    return Counted(
        labels=split.labels,
        covered=np.concatenate((covered, np.ones(split.parents.size, dtype=np.bool_))),
        people=people_after,
        units=units_after,
        touched=touched,
        parents=split.parents,
        codes=split.codes,
    )


def _token_combos(
    tokens: list[TokenDim],
    cells: ReleasedCells,
    cell: int,
    shape: list[int],
    memo: dict[tuple[str, int], np.ndarray],
) -> np.ndarray:
    """Flat indices of the token-class combinations that satisfy one cell's key conditions."""
    inside: list[np.ndarray] = []
    restricted: list[bool] = []

    def classes(token: TokenDim, members: Hashes) -> np.ndarray:
        key = (token.column, id(members))
        if key not in memo:  # cells of a release share their sets: look each up once
            memo[key] = token.classes_in(members)
        return memo[key]

    for token in tokens:
        per_cell = cells.token_sets.get(token.column)
        members = per_cell[cell] if per_cell is not None else None
        chosen = np.arange(token.classes) if members is None else classes(token, members)
        excluded_per_cell = cells.token_excluded.get(token.column)
        excluded = excluded_per_cell[cell] if excluded_per_cell is not None else None
        if excluded is not None:
            chosen = np.setdiff1d(chosen, classes(token, excluded))
        inside.append(chosen)
        restricted.append(members is not None or excluded is not None)
    if not cells.any_token or not any(restricted):
        return _combine(inside, shape)
    outside = [
        np.setdiff1d(np.arange(t.classes), chosen) if limited else np.arange(t.classes)
        for t, chosen, limited in zip(tokens, inside, restricted, strict=True)
    ]
    everything = np.arange(math.prod(shape) if shape else 1, dtype=np.int64)
    return np.setdiff1d(everything, _combine(outside, shape))


def _combine(choices: list[np.ndarray], shape: list[int]) -> np.ndarray:
    """Flat indices of every combination of chosen classes, one per token dimension."""
    if not choices:
        return np.zeros(1, dtype=np.int64)
    flat = np.zeros(1, dtype=np.int64)
    for chosen, size in zip(choices, shape, strict=True):
        flat = (flat[:, None] * size + chosen[None, :].astype(np.int64)).reshape(-1)
    return flat
