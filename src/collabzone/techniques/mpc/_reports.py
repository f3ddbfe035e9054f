"""Predefined reports: what each computes inside MPyC, who may ask, how the recipient reads it.

A report runs on every compute server at once (one MPyC party each) over the shares of the
named datasets' columns, which the providers normalised to ``[0, 1]`` with the declared
bounds (:func:`~collabzone.techniques.mpc._shares.normalise`). Results are never opened:
each server re-randomises its shares of the outputs (a fresh Shamir sharing, so the
recipient learns the outputs and nothing of the inputs' polynomials) and sends them to the
recipient's client, which recombines them and maps them back to the columns' units.

Optional DP noise is drawn **inside** MPC: binomial noise, the centred sum of ``N`` secret
random bits that no server knows (Dwork, Kenthapadi, McSherry, Mironov, Naor, "Our data,
ourselves", EUROCRYPT 2006: ``N >= 64 ln(2/delta) / epsilon**2`` gives (epsilon, delta)-DP
for a sensitivity-1 statistic). Normalised values make a sum's sensitivity 1; a count's is 1.
DP applies to ``count``, ``sum`` and ``mean`` (the row count itself is public to the
servers: they hold one share per row).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collabzone.errors import InvalidInputError, PolicyRefusal, Reason

REPORTS = ("count", "sum", "mean", "variance", "correlation", "regression", "lp")
DP_REPORTS = ("count", "sum", "mean")


@dataclass(frozen=True)
class ReportSpec:
    """One report request: which report, on which datasets and columns, for whom.

    ``lp`` maximises ``objective . x`` subject to ``A x <= b`` where the rows of ``A`` are
    the secret columns (one constraint per record) and ``b`` is the ``bound`` column.
    """

    report: str
    datasets: tuple[str, ...]
    columns: tuple[str, ...] = ()
    recipient: str = ""
    epsilon: float | None = None
    delta: float = 1e-6
    objective: tuple[float, ...] = ()
    bound: str = ""
    join: bool = False
    """Join the datasets on their secret-key pseudonyms (see ``_join``) instead of
    stacking their rows; each column is then read from the dataset that has it."""

    def __post_init__(self) -> None:
        if self.report not in REPORTS:
            raise InvalidInputError(f"unknown report {self.report!r}; choose one of {REPORTS}")
        if not self.datasets:
            raise InvalidInputError("a report needs at least one dataset")
        if self.join and len(self.datasets) < 2:
            raise InvalidInputError("a join needs at least two datasets")
        if not self.recipient:
            raise InvalidInputError("a report needs a recipient (the party that opens it)")
        needed = {"count": 0, "correlation": 2, "regression": 2}.get(self.report, 1)
        if len(self.columns) < needed:
            raise InvalidInputError(
                f"report {self.report!r} needs {needed} column(s)"
                + (" (the x columns, then y)" if self.report == "regression" else "")
            )
        if self.epsilon is not None:
            if self.report not in DP_REPORTS:
                raise InvalidInputError(
                    f"DP noise is offered for {DP_REPORTS}, not {self.report!r}"
                )
            if not (self.epsilon > 0 and 0 < self.delta < 1):
                raise InvalidInputError("DP needs epsilon > 0 and 0 < delta < 1")
        if self.report == "lp" and (len(self.objective) != len(self.columns) or not self.bound):
            raise InvalidInputError(
                "report 'lp' needs one objective weight per column and a bound column"
            )

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ReportSpec:
        unknown = set(doc) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidInputError(f"unknown report keys: {sorted(unknown)}")
        if "report" not in doc or "datasets" not in doc:
            raise InvalidInputError("a report spec needs 'report' and 'datasets'")
        for key in ("report", "recipient", "bound"):
            if key in doc and not isinstance(doc[key], str):
                raise InvalidInputError(f"report key {key!r} must be text")
        for key, kinds in (("datasets", (str,)), ("columns", (str,)), ("objective", (int, float))):
            value = doc.get(key, ())
            if not isinstance(value, list | tuple) or not all(
                isinstance(v, kinds) and not isinstance(v, bool) for v in value
            ):
                raise InvalidInputError(f"report key {key!r} must be a list of {kinds[0].__name__}")
        for key in ("epsilon", "delta"):
            value = doc.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise InvalidInputError(f"report key {key!r} must be a number")
        if not isinstance(doc.get("join", False), bool):
            raise InvalidInputError("report key 'join' must be true or false")
        tuples = {k: tuple(doc[k]) for k in ("datasets", "columns", "objective") if k in doc}
        return cls(**{**doc, **tuples})


@dataclass(frozen=True)
class Holding:
    """What a server knows of one uploaded dataset (public metadata, no values)."""

    dataset: str
    provider: str
    rows: int
    bounds: Mapping[str, tuple[float, float]]
    reports: tuple[str, ...]
    """Reports the provider accepted its data may feed (its ``mpc`` agreement)."""
    recipients: tuple[str, ...]
    min_group_size: int
    extra: Mapping[str, Any] = field(default_factory=dict)


def check(spec: ReportSpec, holdings: Mapping[str, Holding]) -> list[Reason]:
    """Each reason an agreement refuses ``spec`` (empty: allowed). Pure: reads no shares."""
    reasons: list[Reason] = []
    for name in spec.datasets:
        held = holdings.get(name)
        if held is None:
            reasons.append(Reason("NOT_HELD", "dataset", f"no shares of dataset {name!r} here"))
            continue
        if spec.report not in held.reports:
            reasons.append(
                Reason(
                    "REPORT_NOT_ACCEPTED",
                    "reports",
                    f"the provider accepted {list(held.reports)} on {name!r}, not {spec.report!r}",
                    held.provider,
                )
            )
        if spec.recipient not in held.recipients and "*" not in held.recipients:
            reasons.append(
                Reason(
                    "RECIPIENT_NOT_GRANTED",
                    "recipients",
                    f"{spec.recipient!r} may not receive reports on {name!r}",
                    held.provider,
                )
            )
        if spec.join:
            if not held.extra.get("join"):
                reasons.append(
                    Reason("NO_JOIN_KEY", "join", f"{name!r} was uploaded without join keys")
                )
            continue
        wanted = (*spec.columns, *([spec.bound] if spec.bound else []))
        missing = [c for c in wanted if c not in held.bounds]
        if missing:
            reasons.append(
                Reason("UNKNOWN_COLUMN", "columns", f"{name!r} has no shared column {missing}")
            )
        elif spec.datasets and name != spec.datasets[0]:
            first = holdings.get(spec.datasets[0])
            if first and any(first.bounds.get(c) != held.bounds[c] for c in spec.columns):
                reasons.append(
                    Reason(
                        "BOUNDS_DIFFER", "bounds", f"{name!r} declares other bounds for the columns"
                    )
                )
    if spec.join:
        for column in (*spec.columns, *([spec.bound] if spec.bound else [])):
            owners = [n for n in spec.datasets if n in holdings and column in holdings[n].bounds]
            if len(owners) != 1:
                reasons.append(
                    Reason("UNKNOWN_COLUMN", "columns",
                           f"column {column!r} must be in exactly one joined dataset")
                )  # fmt: skip
    present = [holdings[n] for n in spec.datasets if n in holdings]
    # a join covers at most the smallest dataset; the servers re-check the matched count.
    # In a union every dataset must reach its own floor: else a report on a big dataset
    # plus a one-record one, minus the same report without it, opens that record.
    floor = max((h.min_group_size for h in present), default=0)
    if spec.join:
        small = min((h.rows for h in present), default=0) < floor
    else:
        total = sum(h.rows for h in present)
        small = total < floor or any(h.rows < h.min_group_size for h in present)
    if present and small:
        reasons.append(
            Reason(
                "GROUP_TOO_SMALL",
                "min_group_size",
                f"the report covers fewer records than the minimum group size {floor} "
                "(in a union, each dataset must reach its own)",
            )
        )
    return reasons


def enforce(spec: ReportSpec, holdings: Mapping[str, Holding]) -> None:
    """Raise :class:`PolicyRefusal` naming every rule ``spec`` breaks."""
    reasons = check(spec, holdings)
    if reasons:
        raise PolicyRefusal(reasons)


def binomial_coins(epsilon: float, delta: float) -> int:
    """Secret coins for (epsilon, delta)-DP binomial noise on a sensitivity-1 statistic."""
    return math.ceil(64 * math.log(2 / delta) / epsilon**2)


async def compute(
    mpc: Any,
    spec: ReportSpec,
    columns: Mapping[str, Any],
    rows: int,
    bounds: Mapping[str, tuple[float, float]],
) -> list[Any]:
    """The report's secure outputs (secfxp objects), computed by every server alike.

    ``columns`` maps a column name to this server's secure values (normalised): a secure
    fixed-point array (vectorised: one numpy operation over the shares, and one resharing
    per inner product, rather than one Python object per value) or a list of secure
    values; nothing is opened here (the ``lp`` report opens one bit per simplex iteration).
    """
    from collabzone.techniques.mpc._shares import secfxp_type

    secfxp = secfxp_type()
    n = rows
    outs: list[Any]
    per = len(spec.columns) or 1

    def noise() -> Any:
        if spec.epsilon is None:
            return secfxp(0)
        # basic composition over the columns: each gets epsilon / per and delta / per
        coins = binomial_coins(spec.epsilon / per, spec.delta / per)
        bits = mpc.np_random_bits(secfxp, coins)
        return mpc.np_sum(bits) - coins / 2

    if spec.report == "count":
        outs = [secfxp(n) + noise()]
    elif spec.report in ("sum", "mean"):
        # a mean's sum is divided by the public row count at the recipient: exact, where
        # multiplying by 1/n in 32 fractional bits would round the reciprocal
        outs = [_total(mpc, columns[c]) + noise() for c in spec.columns]
    elif spec.report == "variance":
        outs = []
        for c in spec.columns:
            x = _array(mpc, columns[c])
            y = x - divide(mpc.np_sum(x), n)
            outs.append(divide(y @ y, n - 1))  # one secure inner product (one resharing)
    elif spec.report == "correlation":
        from mpyc.statistics import _fsqrt  # MPyC's secure fixed-point square root

        k = len(spec.columns)
        matrix = mpc.np_vstack([_array(mpc, columns[c]) for c in spec.columns])
        means = divide(mpc.np_sum(matrix, axis=1), n)
        centred = matrix - mpc.np_reshape(means, (k, 1))
        cov = divide(centred @ mpc.np_transpose(centred), n - 1)  # k x k, one resharing
        diagonal = [cov[i, i] for i in range(k)]
        root = [_fsqrt(v) for v in diagonal]
        outs = [cov[i, j] / (root[i] * root[j]) for i in range(k) for j in range(i + 1, k)]
    elif spec.report == "regression" and len(spec.columns) == 2:
        from mpyc.statistics import linear_regression

        model = linear_regression(list(columns[spec.columns[0]]), list(columns[spec.columns[1]]))
        outs = [model.slope, model.intercept]
    elif spec.report == "regression":
        outs = least_squares(mpc, secfxp, [list(columns[c]) for c in spec.columns], n)
    else:
        from collabzone.techniques.mpc._simplex import maximise, scaled_objective

        objective = scaled_objective(spec.objective, spec.columns, spec.bound, bounds)
        matrix = [list(r) for r in zip(*(columns[c] for c in spec.columns), strict=True)]
        outs = await maximise(mpc, objective, matrix, list(columns[spec.bound]))
    return outs


def divide(x: Any, d: int) -> Any:
    """``x / d`` for a public whole ``d``, as MPyC's ``statistics.mean`` divides: by
    ``2**e / d`` (in [1/2, 1), kept to 32 fractional bits) then by ``2**e`` (exact),
    where ``x * (1 / d)`` would round ``1 / d`` to a few significant bits for a large ``d``."""
    e = max(d.bit_length() - 1, 0)
    return x * (2**e / d) * 2**-e


def _array(mpc: Any, column: Any) -> Any:
    """A column as a secure fixed-point array (a list of secure values is stacked)."""
    if isinstance(column, mpc.SecureArray):
        return column
    return mpc.np_fromlist(list(column))


def _total(mpc: Any, column: Any) -> Any:
    if isinstance(column, mpc.SecureArray):
        return mpc.np_sum(column)
    return mpc.sum(list(column))


def least_squares(mpc: Any, secfxp: Any, columns: Sequence[list[Any]], n: int) -> list[Any]:
    """Secure ordinary least squares: the intercept then one coefficient per x column
    (``columns`` are the x columns then y), all secret.

    Forms the normal equations (X'X) b = X'y with a column of ones, one secure inner product
    per pair of columns (entries at most ``n`` for values in [0, 1]), and solves them by
    Gaussian elimination with secure fixed-point division (X'X is positive definite, so no
    pivoting); each multiplier is a quotient of two entries, so nothing grows beyond ``n``.
    Only the coefficients leave, as shares: the Gram matrix stays secret.
    """
    xs, y = columns[:-1], columns[-1]
    k = len(xs)
    sums = [mpc.sum(c) for c in xs]
    gram: list[list[Any]] = [[secfxp(0)] * (k + 1) for _ in range(k + 1)]
    gram[0][0] = secfxp(n)
    for i in range(k):
        gram[0][i + 1] = gram[i + 1][0] = sums[i]
        for j in range(i, k):
            gram[i + 1][j + 1] = gram[j + 1][i + 1] = mpc.in_prod(xs[i], xs[j])
    rhs = [mpc.sum(y), *(mpc.in_prod(x, y) for x in xs)]
    m = k + 1
    for j in range(m):
        for i in range(j + 1, m):
            factor = gram[i][j] / gram[j][j]
            for c in range(j, m):
                gram[i][c] = gram[i][c] - factor * gram[j][c]
            rhs[i] = rhs[i] - factor * rhs[j]
    beta: list[Any] = [secfxp(0)] * m
    for i in reversed(range(m)):
        rest = [gram[i][c] * beta[c] for c in range(i + 1, m)]
        beta[i] = (rhs[i] - mpc.sum(rest) if rest else rhs[i]) / gram[i][i]
    return beta


def interpret(spec: ReportSpec, values: Sequence[float], holding: Holding) -> dict[str, Any]:
    """The recipient's reading of the opened outputs, in the columns' own units."""

    def scale(c: str) -> tuple[float, float]:
        low, high = holding.bounds[c]
        return low, high - low

    cols = spec.columns
    if spec.report == "count":
        return {"count": values[0]}
    if spec.report == "sum":
        return {
            c: scale(c)[0] * holding.rows + scale(c)[1] * v
            for c, v in zip(cols, values, strict=True)
        }
    if spec.report == "mean":
        n = holding.rows
        return {c: scale(c)[0] + scale(c)[1] * v / n for c, v in zip(cols, values, strict=True)}
    if spec.report == "variance":
        return {c: scale(c)[1] ** 2 * v for c, v in zip(cols, values, strict=True)}
    if spec.report == "correlation":
        k, it = len(cols), iter(values)
        matrix = [[1.0] * k for _ in range(k)]
        for i in range(k):
            for j in range(i + 1, k):
                matrix[i][j] = matrix[j][i] = next(it)
        return {"columns": list(cols), "matrix": matrix}
    if spec.report == "regression" and len(cols) == 2:
        (lx, rx), (ly, ry) = scale(cols[0]), scale(cols[1])
        slope = values[0] * ry / rx
        intercept = ly + ry * values[1] - slope * lx
        return {"x": cols[0], "y": cols[1], "slope": slope, "intercept": intercept}
    if spec.report == "regression":
        # y' = b0' + sum bj' xj' over values mapped to [0, 1]: back to the columns' units
        (ly, ry), xs = scale(cols[-1]), cols[:-1]
        coefficients = {x: values[j + 1] * ry / scale(x)[1] for j, x in enumerate(xs)}
        intercept = ly + ry * values[0] - sum(b * scale(x)[0] for x, b in coefficients.items())
        return {"x": list(xs), "y": cols[-1], "coefficients": coefficients, "intercept": intercept}
    from collabzone.techniques.mpc._simplex import read_solution

    return read_solution(spec.columns, spec.bound, values, holding.bounds)
