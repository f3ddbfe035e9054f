"""Independent recomputation of a release's privacy levels (pycanon, pandas), trusting
only the released rows and the config's declarations, never the engine's report."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import pytest
from pandas.errors import Pandas4Warning

_pycanon = pytest.importorskip(
    "pycanon.anonymity", reason="pycanon is not installed (pip install --no-deps pycanon==1.3.6)"
)


class _Quiet:
    """pycanon's functions, with pandas' notice about grouping by a one-element list (which
    pycanon does for a single quasi-identifier) silenced for that call only."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        function = getattr(_pycanon, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Pandas4Warning)
                return function(*args, **kwargs)

        return call


anonymity = _Quiet()


def frame_of(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """A zone payload's rows as a DataFrame."""
    return pd.DataFrame([list(r) for r in rows], columns=list(columns))


def check_release(
    frame: pd.DataFrame,
    report: Mapping[str, Any],
    *,
    sensitive: Sequence[str],
    keep: Sequence[str],
    privacy: Mapping[str, Any],
    inputs: Mapping[str, Sequence[Any]] | None = None,
) -> int:
    """Assert that the report's k / l / t / risk are those of the released columns.

    The quasi-identifiers are every released column that the caller did not declare
    sensitive or keep: a column that leaked in undeclared is counted, so it lowers the
    independent k below the reported one and the check fails. ``inputs`` (the input's
    values of each sensitive attribute) lets t be recomputed when rows were suppressed.
    Returns k.
    """
    released = set(frame.columns)
    declared = report["columns"]
    assert released == {
        *declared["quasi_identifiers"],
        *declared["sensitive"],
        *declared["keep"],
    }, "released columns differ from the declared ones"
    assert set(declared["sensitive"]) == set(sensitive) and set(declared["keep"]) == set(keep)
    qis = [c for c in frame.columns if c not in set(sensitive) | set(keep)]
    assert sorted(qis) == sorted(declared["quasi_identifiers"])
    achieved = report["privacy"]
    assert len(frame) == report["rows_out"]
    if not len(frame):
        return 0
    k = int(anonymity.k_anonymity(frame, qis))
    assert k == achieved["k"] == report["min_class_size"]
    assert k >= privacy.get("k", 1)
    sizes = frame.groupby(qis, dropna=False).size().to_numpy()
    after = report["risk"]["after"]["prosecutor"]
    assert after["highest_risk"] == pytest.approx(1 / sizes.min())
    assert after["average_risk"] == pytest.approx(len(sizes) / len(frame))
    threshold = report["risk"]["after"]["threshold"]
    assert after["records_at_risk"] == pytest.approx(
        sizes[1 / sizes > threshold].sum() / len(frame)
    )
    for attr in sensitive:
        l_distinct = int(anonymity.l_diversity(frame, qis, [attr]))
        assert l_distinct == achieved["l_distinct"][attr]
        ent = achieved["l_entropy"][attr]
        canon = anonymity.entropy_l_diversity(frame, qis, [attr])
        # pycanon floors exp(H) with no tolerance (exactly 3 may come out as 2.999...)
        assert canon == math.floor(ent) or (
            abs(ent - round(ent)) < 1e-9 and canon == round(ent) - 1
        )
        if privacy.get("l") is not None:
            assert l_distinct >= math.ceil(privacy["l"] - 1e-9)
        if report["suppressed_rows"] == 0:
            # t is measured against the input's distribution; pycanon uses the released
            # one, which is the same only when nothing was suppressed
            numeric = pd.api.types.is_numeric_dtype(frame[attr])
            t = anonymity.t_closeness(frame, qis, [attr])
            assert t == pytest.approx(achieved["t_ordered" if numeric else "t_equal"][attr])
            if privacy.get("t") is not None:
                assert t <= privacy["t"] + 1e-9
        if inputs is not None:
            numeric = pd.api.types.is_numeric_dtype(frame[attr])
            t = emd(frame, qis, attr, inputs[attr], ordered=numeric)
            assert t == pytest.approx(achieved["t_ordered" if numeric else "t_equal"][attr])
            if privacy.get("t") is not None:
                assert t <= privacy["t"] + 1e-9
    return k


def emd(
    frame: pd.DataFrame, qis: Sequence[str], attr: str, inputs: Sequence[Any], *, ordered: bool
) -> float:
    """Largest Earth Mover's Distance of a class's ``attr`` distribution to the input's:
    total variation for equal distance, normalised cumulative difference for ordered."""
    domain = sorted({str(v) for v in inputs}) if not ordered else sorted(set(inputs))
    key = (lambda v: str(v)) if not ordered else (lambda v: v)
    overall = pd.Series([key(v) for v in inputs]).value_counts(normalize=True)
    overall = overall.reindex(domain, fill_value=0.0)
    worst = 0.0
    for _, group in frame.groupby(list(qis), dropna=False):
        dist = group[attr].map(key).value_counts(normalize=True).reindex(domain, fill_value=0.0)
        diff = (dist - overall).to_numpy()
        if ordered:
            value = abs(diff.cumsum()).sum() / max(len(domain) - 1, 1)
        else:
            value = abs(diff).sum() / 2
        worst = max(worst, float(value))
    return worst
