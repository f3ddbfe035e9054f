"""The phantom grid's points a release selects, evaluated on the sub-grid of the columns
its condition and groups read (``_space._attribute_points``) against the whole grid
evaluated by the engine (``_space._sub_points`` over every dimension): the same (point,
part) pairs, over random grids, conditions and group values."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone import disclosure
from collabzone.disclosure import _space
from collabzone.model import Column

COLUMNS = {
    "a": Column.model_validate({"name": "a", "type": "integer", "class": "dimension",
                                "nullable": False, "domain": {"min": 0, "max": 9}}),
    "b": Column.model_validate({"name": "b", "type": "string", "class": "dimension",
                                "nullable": True, "domain": ["x", "y", "z"]}),
    "c": Column.model_validate({"name": "c", "type": "integer", "class": "dimension",
                                "nullable": True}),
}  # fmt: skip
VALUES: dict[str, Any] = {"a": st.integers(0, 9), "b": st.sampled_from(["x", "y", "z"]),
                          "c": st.integers(-3, 3)}  # fmt: skip


def _literal(column: str, value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


@st.composite
def releases(draw: st.DrawFn) -> tuple[list[disclosure.AttributeDim], disclosure.ReleasedCells]:
    dims = []
    for name in draw(st.permutations(list(COLUMNS))):
        literals = draw(st.lists(VALUES[name], max_size=3))
        dims.append(disclosure.AttributeDim.of(COLUMNS[name]).with_literals(literals))
    conditions, literals_of = [], {}
    for name in draw(st.lists(st.sampled_from(list(COLUMNS)), max_size=2, unique=True)):
        value = draw(VALUES[name])
        op = draw(st.sampled_from(["=", "<>", ">=", "<"] if name != "b" else ["=", "<>"]))
        conditions.append(f'"{name}" {op} {_literal(name, value)}')
        literals_of[name] = [value]
        dims = [d.with_literals([value]) if d.column == name else d for d in dims]
    grouped = tuple(draw(st.lists(st.sampled_from(list(COLUMNS)), max_size=2, unique=True)))
    own = draw(
        st.lists(st.tuples(*(VALUES[g] for g in grouped)), min_size=1, max_size=4, unique=True)
    )
    for position, name in enumerate(grouped):
        dims = [d.with_literals([v[position] for v in own]) if d.column == name else d
                for d in dims]  # fmt: skip
    cells = disclosure.ReleasedCells(
        members=[np.zeros(0, dtype=np.uint64) for _ in (own if grouped else [()])],
        condition_sql=" AND ".join(conditions) or None,
        condition_literals=literals_of,
        group_columns=grouped,
        own_values=own if grouped else [],
    )
    return dims, cells


CON = duckdb.connect()


@settings(max_examples=20, deadline=None)
@given(releases())
def test_sub_grid_selects_the_points_the_whole_grid_does(
    drawn: tuple[list[disclosure.AttributeDim], disclosure.ReleasedCells],
) -> None:
    dims, cells = drawn
    con = CON
    points, parts = _space._attribute_points(con, dims, COLUMNS, cells)
    whole_points, whole_parts = _space._sub_points(con, dims, COLUMNS, cells)
    assert sorted(zip(points.tolist(), parts.tolist(), strict=True)) == sorted(
        zip(whole_points.tolist(), whole_parts.tolist(), strict=True)
    )
