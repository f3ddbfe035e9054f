"""The ``lp`` report: a linear program over secret constraints, MPyC's secure simplex.

Follows MPyC's demo ``demos/lpsolverfxp.py`` (v0.11): a simplex tableau of secure
fixed-point numbers, pivot column and row chosen with secure ``argmin`` (the row by the
ratio test on secure fractions), the tableau updated by ``mpc.gauss``. Each record is one
constraint ``sum_j a_ij x_j <= b_i`` (its ``columns`` and its ``bound``), ``x >= 0``, and
the public ``objective`` is maximised. Unlike the demo nothing is opened but one bit per
iteration (whether the tableau is optimal yet): the servers learn the number of simplex
iterations, which docs/mpc.md lists among what a server sees.

Columns must have lower bound 0: the values are the providers' normalised ``a / high``,
so the program is solved for ``x'_j = x_j * high_j / high_b`` with objective
``c_j * high_b / high_j`` and mapped back by the recipient (:func:`read_solution`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from collabzone.errors import InvalidInputError

MAX_CONSTRAINTS = 100
"""The secure simplex costs O(rows * columns) secure operations per pivot: small programs only."""


class _SecureFraction:
    """A ratio ``n / d`` compared without division (the demo's ``SecureFraction``)."""

    def __init__(self, mpc: Any, triple: Sequence[Any]) -> None:
        self.mpc = mpc
        self.n, self.d, self.pos = triple
        self.pos.integral = True

    def __lt__(self, other: _SecureFraction) -> Any:
        mpc = self.mpc
        c = mpc.in_prod([self.n, -self.d], [other.d, other.n]) < 0
        c = mpc.if_else(self.pos, c, 0)
        return mpc.if_else(other.pos, c, 1)


def scaled_objective(
    objective: Sequence[float],
    columns: Sequence[str],
    bound: str,
    bounds: Mapping[str, tuple[float, float]],
) -> list[float]:
    """The objective of the normalised program (see the module docstring)."""
    if any(bounds[c][0] != 0 for c in (*columns, bound)):
        raise InvalidInputError("report 'lp' needs columns declared with lower bound 0")
    high_b = bounds[bound][1]
    return [w * high_b / bounds[c][1] for w, c in zip(objective, columns, strict=True)]


async def maximise(
    mpc: Any, objective: Sequence[float], rows: Sequence[Sequence[Any]], bound: Sequence[Any]
) -> list[Any]:
    """``[max c.x, x_1, ..., x_k]`` as secure values; ``rows`` are the constraint rows."""
    m, n = len(rows), len(objective)
    if m > MAX_CONSTRAINTS:
        raise InvalidInputError(
            f"report 'lp' takes at most {MAX_CONSTRAINTS} constraints (records), got {m}"
        )
    secfxp = type(bound[0])
    tableau = [[secfxp(-w) for w in objective] + [secfxp(0)]]
    tableau += [[*row, b] for row, b in zip(rows, bound, strict=True)]
    # slack variables live in the basis; the tableau keeps only the cobasis columns
    cobasis = [secfxp(j) for j in range(n)]
    basis = [secfxp(n + i) for i in range(m)]
    for _ in range(4 * (m + n)):  # simplex pivots; the cap guards against cycling
        index, minimum = mpc.argmin(tableau[0][:-1])
        if not await mpc.output(minimum < 0):
            break
        p_col_index = mpc.unit_vector(index, n)
        p_col = mpc.matrix_prod([p_col_index], tableau, True)[0]
        ratios = [[tableau[i][-1], p_col[i], p_col[i] > 0.0001] for i in range(1, m + 1)]
        row_at, best = mpc.argmin(ratios, key=lambda t: _SecureFraction(mpc, t))
        pivot = best[1]
        p_row_index = mpc.unit_vector(row_at, m)
        delta = mpc.in_prod(basis, p_row_index) - mpc.in_prod(cobasis, p_col_index)
        cobasis = mpc.vector_add(cobasis, mpc.scalar_mul(delta, p_col_index))
        basis = mpc.vector_sub(basis, mpc.scalar_mul(delta, p_row_index))
        p_col_index.append(secfxp(0))
        p_row_index.insert(0, secfxp(0))
        p_col = mpc.vector_sub(p_col, p_row_index)
        p_col = mpc.scalar_mul(1 / pivot, p_col)
        p_row = mpc.matrix_prod([p_row_index], tableau)[0]
        p_row = mpc.vector_add(p_row, p_col_index)
        tableau = mpc.gauss(tableau, secfxp(1), p_col, p_row)
    x = [secfxp(0) for _ in range(n)]
    for i in range(m):
        unit = mpc.unit_vector(basis[i], m + n)[:n]
        x = mpc.vector_add(x, mpc.scalar_mul(tableau[i + 1][-1], unit))
    return [tableau[0][-1], *x]


def read_solution(
    columns: Sequence[str],
    bound: str,
    values: Sequence[float],
    bounds: Mapping[str, tuple[float, float]],
) -> dict[str, Any]:
    """The recipient's reading: the optimum and ``x`` in the columns' units."""
    high_b = bounds[bound][1]
    x = {c: v * high_b / bounds[c][1] for c, v in zip(columns, values[1:], strict=True)}
    return {"maximum": values[0], "x": x}
