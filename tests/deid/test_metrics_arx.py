"""The quality metrics as ARX defines them, pinned to hand-computed values.

ARX's small example (test.csv, 7 rows: age, gender, zipcode) at the node (age 1, gender 1,
zipcode 2) with k = 3:

    row  age  gender  zipcode   generalised           class
    1    34   male    81667     <50,  *, 816**        A (2 rows)  suppressed
    2    45   female  81675     <50,  *, 816**        A
    3    66   male    81925     >=50, *, 819**        B (3 rows)  kept
    4    70   female  81931     >=50, *, 819**        B
    5    34   female  81931     <50,  *, 819**        C (2 rows)  suppressed
    6    70   male    81931     >=50, *, 819**        B
    7    45   male    81931     <50,  *, 819**        C

Hierarchies: age 1..100 (<50 covers 49 leaves, >=50 51), gender 2 leaves, zipcode 10,000
leaves (819** covers 100).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pytest

from collabzone.techniques.deid import KAnonymity, Lattice, deidentify, encode, parse_config
from collabzone.techniques.deid._hierarchy import read_arx_csv
from collabzone.techniques.deid._search import exhaustive, flash

from .conftest import ADULT, ADULT_QIS

SMALL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "arx_small_examples"
QIS = ["age", "gender", "zipcode"]
NODE = (1, 1, 2)
L2 = math.log2

# per-attribute hand computations (see the module docstring)
NUE_MONO = {
    # rows 34, 34, 45, 45 share <50 (4 rows) with 2 of the same age each; 66 alone and
    # 70, 70 share >=50 (3 rows)
    "age": 4 * L2(4 / 2) + L2(3 / 1) + 2 * L2(3 / 2),
    # * covers all 7 rows: 4 male, 3 female
    "gender": 4 * L2(7 / 4) + 3 * L2(7 / 3),
    # 816** holds 81667 and 81675 (1 row each); 819** holds 81925 (1) and 81931 (4)
    "zipcode": 2 * L2(2 / 1) + L2(5 / 1) + 4 * L2(5 / 4),
}
# suppressed rows 1, 2, 5, 7 (S = 4): age all <50, gender all *, zipcode 816** x2, 819** x2
NUE_EXTRA = {"age": 4 * L2(4 / 4), "gender": 4 * L2(4 / 4), "zipcode": 2 * (2 * L2(4 / 2))}
LOSS = {  # kept rows 3, 4, 6 cost (leaves - 1) / (domain - 1); suppressed rows cost 1
    "age": (3 * (51 - 1) / (100 - 1) + 4) / 7,
    "gender": (3 * (2 - 1) / (2 - 1) + 4) / 7,
    "zipcode": (3 * (100 - 1) / (10000 - 1) + 4) / 7,
}
PRECISION = {
    "age": (3 * 1 / 2 + 4) / 7,
    "gender": (3 * 1 / 1 + 4) / 7,
    "zipcode": (3 * 2 / 5 + 4) / 7,
}


def _gm(values: list[float]) -> float:
    return math.prod(v + 1 for v in values) ** (1 / len(values)) - 1


@pytest.fixture(scope="module")
def small():  # type: ignore[no-untyped-def]
    if not (SMALL / "test.csv").exists():
        pytest.skip(f"ARX's small example not found at {SMALL}")
    table = pacsv.read_csv(SMALL / "test.csv", parse_options=pacsv.ParseOptions(delimiter=";"))
    hs = {q: read_arx_csv(SMALL / f"test_hierarchy_{q}.csv", q) for q in QIS}
    return table, hs


def _evaluate(small, metric: str, aggregate: str | None = None):  # type: ignore[no-untyped-def]
    table, hs = small
    lattice = Lattice(encode(table, QIS, hs), [KAnonymity(3)], 1.0, metric, aggregate)  # type: ignore[arg-type]
    return lattice.evaluate(NODE)


def test_discernibility_both_variants_on_the_small_example(small) -> None:  # type: ignore[no-untyped-def]
    result = _evaluate(small, "discernibility")
    assert result.suppressed_rows == 4
    assert result.score == 3**2 + (2 + 2) * 7  # kept B: 9; A and C: |E| * |D| each
    assert _evaluate(small, "discernibility_monotonic").score == 2**2 + 3**2 + 2**2


def test_non_uniform_entropy_both_variants_on_the_small_example(small) -> None:  # type: ignore[no-untyped-def]
    mono = _evaluate(small, "non_uniform_entropy_monotonic")
    assert mono.per_attribute == pytest.approx([NUE_MONO[q] for q in QIS])
    assert mono.score == pytest.approx(sum(NUE_MONO.values()))
    nm = _evaluate(small, "non_uniform_entropy")
    assert nm.per_attribute == pytest.approx([NUE_MONO[q] + NUE_EXTRA[q] for q in QIS])
    assert nm.score == pytest.approx(sum(NUE_MONO.values()) + 4.0)


@pytest.mark.parametrize(
    ("aggregate", "combine"),
    [
        ("sum", sum),
        ("arithmetic_mean", lambda v: sum(v) / len(v)),
        ("geometric_mean", _gm),
        ("max", max),
    ],
)
def test_loss_and_precision_with_every_aggregate(small, aggregate, combine) -> None:  # type: ignore[no-untyped-def]
    loss = _evaluate(small, "loss", aggregate)
    assert loss.per_attribute == pytest.approx([LOSS[q] for q in QIS])
    assert loss.score == pytest.approx(combine([LOSS[q] for q in QIS]))
    precision = _evaluate(small, "precision", aggregate)
    assert precision.score == pytest.approx(combine([PRECISION[q] for q in QIS]))


def test_rank_compares_the_sorted_values_lexicographically(small) -> None:  # type: ignore[no-untyped-def]
    loss = _evaluate(small, "loss", "rank")
    assert loss.rank == pytest.approx(sorted(LOSS.values(), reverse=True))
    assert loss.score == pytest.approx(_gm(list(LOSS.values())))  # ARX's scalar for RANK
    table, hs = small
    enc = encode(table, QIS, hs)
    best = flash(Lattice(enc, [KAnonymity(2)], 0.3, "loss", "rank")).best
    reference = exhaustive(Lattice(enc, [KAnonymity(2)], 0.3, "loss", "rank")).best
    assert best is not None and reference is not None and best.rank == reference.rank


def test_the_default_aggregates_are_arx_defaults(small) -> None:  # type: ignore[no-untyped-def]
    assert _evaluate(small, "loss").score == pytest.approx(_gm(list(LOSS.values())))
    assert _evaluate(small, "precision").score == pytest.approx(sum(PRECISION.values()) / 3)


@pytest.mark.parametrize(
    "metric",
    [
        "discernibility",
        "discernibility_monotonic",
        "non_uniform_entropy",
        "non_uniform_entropy_monotonic",
        "loss",
        "precision",
    ],
)
def test_the_report_score_is_what_the_search_minimised(small, metric) -> None:  # type: ignore[no-untyped-def]
    table, _ = small
    config = parse_config(
        {
            "quasi_identifiers": {q: {"file": str(SMALL / f"test_hierarchy_{q}.csv")} for q in QIS},
            "privacy": {"k": 2},
            "suppression_limit": 0.3,
            "metric": metric,
        }
    )
    _, report = deidentify(table, config)
    lattice = Lattice(encode(table, QIS, small[1]), [KAnonymity(2)], 0.3, metric)  # type: ignore[arg-type]
    best = exhaustive(lattice).best
    assert best is not None
    assert report["score"] == pytest.approx(best.score)
    assert report[metric] == pytest.approx(report["score"])
    assert report["metric"] == metric


def test_aggregate_is_refused_for_discernibility() -> None:
    with pytest.raises(Exception, match="aggregate applies to attribute-wise metrics"):
        parse_config({"quasi_identifiers": {"a": None}, "privacy": {"k": 2}, "aggregate": "sum"})


# --- Adult: an independent pandas computation, with suppression -----------------------


def _adult_reference(adult, node: dict[str, int], k: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Every metric recomputed from the CSV strings and the hierarchy files with pandas."""
    df = adult.select(list(node)).to_pandas().astype(str)
    gen = pd.DataFrame(index=df.index)
    domain, covered = {}, {}
    for q, level in node.items():
        h = pd.read_csv(ADULT / f"adult_hierarchy_{q}.csv", sep=";", header=None, dtype=str)
        mapping = dict(zip(h[0], h[level], strict=True))
        gen[q] = df[q].map(mapping)
        domain[q] = len(h)
        covered[q] = h[level].value_counts()
    size = gen.groupby(list(node))[next(iter(node))].transform("size")
    gone = size < k
    n, s = len(df), int(gone.sum())
    classes = gen.groupby(list(node)).size()
    out: dict[str, object] = {
        "suppressed": s,
        "discernibility": int((classes[classes >= k] ** 2).sum() + classes[classes < k].sum() * n),
        "discernibility_monotonic": int((classes**2).sum()),
    }
    mono, extra, loss, precision = [], [], [], []
    for q in node:
        orig = df[q].map(df[q].value_counts())
        shared = gen[q].map(gen[q].value_counts())
        mono.append(float(np.log2(shared / orig).sum()))
        c = gen[q][gone].value_counts()
        extra.append(float((c * np.log2(s / c)).sum()))
        per_row = (gen[q].map(covered[q]) - 1) / (domain[q] - 1)
        loss.append(float((per_row[~gone].sum() + s) / n))
        height = (
            len(pd.read_csv(ADULT / f"adult_hierarchy_{q}.csv", sep=";", header=None).columns) - 1
        )
        precision.append(((n - s) * node[q] / height + s) / n)
    out["non_uniform_entropy_monotonic"] = sum(mono)
    out["non_uniform_entropy"] = sum(mono) + sum(extra)
    out["loss"] = _gm(loss)
    out["precision"] = sum(precision) / len(precision)
    return out


def test_every_metric_on_adult_with_suppression(adult, adult_hierarchies) -> None:  # type: ignore[no-untyped-def]
    qis = ADULT_QIS[:5]  # sex, age, race, marital-status, education
    node = dict(zip(qis, (0, 1, 1, 1, 2), strict=True))
    reference = _adult_reference(adult, node, k=5)
    assert reference["suppressed"] > 0  # the case exercises suppression
    enc = encode(adult, qis, adult_hierarchies)
    for metric in (
        "discernibility",
        "discernibility_monotonic",
        "non_uniform_entropy",
        "non_uniform_entropy_monotonic",
        "loss",
        "precision",
    ):
        result = Lattice(enc, [KAnonymity(5)], 1.0, metric).evaluate(tuple(node.values()))  # type: ignore[arg-type]
        assert result.suppressed_rows == reference["suppressed"]
        assert result.score == pytest.approx(reference[metric], rel=1e-9), metric
    assert reference["discernibility"] != reference["discernibility_monotonic"]
    assert reference["non_uniform_entropy"] > reference["non_uniform_entropy_monotonic"]
