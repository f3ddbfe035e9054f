"""ARX's published expectations on Adult, as data (facts to test against, no ARX code).

Each case is one row of ARX's parameterised anonymisation tests
(``src/test/org/deidentifier/arx/test/TestAnonymization*.java`` in arx-deidentifier/arx):
the configuration, the expected optimal transformation (levels in the column order of
``adult.csv``, sensitive attribute left out) and ARX's score of that optimum
(``getHighestScore``). ``None`` as the node means ARX finds no solution. Cases that use a
model or metric the engine does not offer (AECS, sample uniqueness, local recoding,
b-likeness, differential privacy with its randomised search, k-map with a statistical
population model) are not listed; cases that differ from the one kept only by ARX's
"practical monotonicity" switch (a search shortcut that does not change the optimum in
these rows) are listed once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from collabzone.techniques.deid import (
    AverageRisk,
    DeltaPresence,
    EntropyLDiversity,
    Hierarchy,
    KAnonymity,
    KMap,
    Lattice,
    PopulationUniqueness,
    RecursiveCLDiversity,
    TCloseness,
    encode,
    search,
)
from collabzone.techniques.deid._encode import with_population

USA = 317_238_626  # ARX ARXPopulationModel.Region.USA

ENT = "non_uniform_entropy"
ENT_M = "non_uniform_entropy_monotonic"
DM_M = "discernibility_monotonic"


@dataclass(frozen=True)
class Case:
    source: str
    """ARX test class and row index."""
    models: tuple[tuple[str, tuple[object, ...]], ...]
    suppression: float
    metric: str
    score: float
    node: tuple[int, ...] | None
    sensitive: str | None = None
    subset: bool = False
    """The table is adult_subset.csv, the population adult.csv (ARX ``DataSubset``)."""
    heavy: bool = False
    tags: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return self.source


K = "k"
ELS = "entropy_l_shannon"
ELG = "entropy_l_grassberger"
RCL = "recursive_cl"
TEQ = "t_equal"
THI = "t_hierarchical"
DP = "delta_presence"
KMAP = "k_map"
AVG = "average_risk"
PU = "population_uniqueness"
OCC = "occupation"

CASES: tuple[Case, ...] = (
    # TestAnonymizationKAnonymity (Adult, 9 QIs)
    Case(
        "KAnonymity/0", ((K, (5,)),), 0.04, ENT_M, 255559.85455731067, (1, 0, 1, 1, 3, 2, 2, 0, 1)
    ),
    Case(
        "KAnonymity/1", ((K, (100,)),), 0.04, ENT_M, 379417.3460570988, (1, 1, 1, 1, 3, 2, 2, 1, 1)
    ),
    Case("KAnonymity/2", ((K, (5,)),), 0.0, ENT_M, 407289.5388925293, (1, 2, 1, 1, 3, 2, 2, 1, 1)),
    Case(
        "KAnonymity/3", ((K, (100,)),), 0.0, ENT_M, 453196.8932458743, (0, 4, 1, 1, 3, 2, 2, 1, 1)
    ),
    # TestAnonymizationLDiversity (occupation sensitive, 8 QIs)
    Case(
        "LDiversity/0",
        ((ELS, (OCC, 5)),),
        0.04,
        ENT,
        228878.2039109517,
        (1, 0, 1, 1, 2, 2, 2, 1),
        OCC,
    ),
    Case("LDiversity/1", ((ELS, (OCC, 100)),), 0.04, ENT, 0.0, None, OCC),
    Case(
        "LDiversity/2",
        ((ELS, (OCC, 5)),),
        0.0,
        ENT,
        324620.5269918692,
        (1, 1, 1, 1, 3, 2, 2, 1),
        OCC,
    ),
    Case("LDiversity/3", ((ELS, (OCC, 100)),), 0.0, ENT, 0.0, None, OCC),
    # TestAnonymizationEntropyLDiversity
    Case(
        "EntropyLDiversity/0",
        ((ELG, (OCC, 5)),),
        0.04,
        ENT,
        216092.124036387,
        (1, 0, 1, 0, 3, 2, 2, 0),
        OCC,
    ),
    Case(
        "EntropyLDiversity/2",
        ((ELG, (OCC, 5)),),
        0.0,
        ENT,
        324620.5269918692,
        (1, 1, 1, 1, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "EntropyLDiversity/3",
        ((ELG, (OCC, 3)),),
        0.05,
        ENT,
        180347.4325366015,
        (0, 0, 1, 1, 2, 2, 2, 0),
        OCC,
    ),
    Case("EntropyLDiversity/5", ((ELG, (OCC, 100)),), 0.1, ENT, 0.0, None, OCC),
    # TestAnonymizationTCloseness (t = 0.2 with k: equal distance, or hierarchical where the
    # test adds it to a configuration without t-closeness)
    Case(
        "TCloseness/0",
        ((TEQ, (OCC, 0.2)), (K, (5,))),
        0.04,
        DM_M,
        3.11880088e8,
        (1, 4, 1, 0, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "TCloseness/1",
        ((TEQ, (OCC, 0.2)), (K, (100,))),
        0.04,
        DM_M,
        3.11880088e8,
        (1, 4, 1, 0, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "TCloseness/2",
        ((K, (5,)), (THI, (OCC, 0.2))),
        0.04,
        ENT_M,
        377622.78458729305,
        (1, 4, 0, 0, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "TCloseness/3",
        ((K, (100,)), (THI, (OCC, 0.2))),
        0.04,
        ENT_M,
        390765.61326019815,
        (1, 4, 1, 0, 3, 1, 2, 1),
        OCC,
    ),
    Case(
        "TCloseness/4",
        ((TEQ, (OCC, 0.2)), (K, (5,))),
        0.0,
        DM_M,
        4.56853172e8,
        (1, 4, 1, 1, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "TCloseness/5",
        ((TEQ, (OCC, 0.2)), (K, (100,))),
        0.0,
        DM_M,
        4.56853172e8,
        (1, 4, 1, 1, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "TCloseness/6",
        ((K, (5,)), (THI, (OCC, 0.2))),
        0.0,
        ENT_M,
        398400.0741806447,
        (0, 4, 1, 1, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "TCloseness/7",
        ((K, (100,)), (THI, (OCC, 0.2))),
        0.0,
        ENT_M,
        398400.0741806447,
        (0, 4, 1, 1, 3, 2, 2, 1),
        OCC,
    ),
    # TestAnonymizationRiskBased (Adult, 9 QIs, USA population)
    Case(
        "RiskBased/0", ((AVG, (0.01,)),), 0.04, ENT, 314637.8461904862, (1, 0, 1, 1, 3, 2, 2, 1, 1)
    ),
    Case(
        "RiskBased/2",
        ((PU, (0.0001, USA, "dankar")),),
        0.04,
        ENT,
        144298.1603344462,
        (0, 0, 1, 1, 1, 2, 1, 0, 0),
    ),
    Case(
        "RiskBased/3",
        ((PU, (0.0001, USA, "zayatz")),),
        0.04,
        "loss",
        0.16078200456326086,
        (0, 3, 0, 0, 1, 1, 1, 1, 0),
    ),
    Case(
        "RiskBased/4",
        ((PU, (0.0001, USA, "pitman")),),
        0.04,
        ENT,
        144298.1603344462,
        (0, 0, 1, 1, 1, 2, 1, 0, 0),
    ),
    Case(
        "RiskBased/5",
        ((PU, (0.0001, USA, "snb")),),
        0.04,
        "loss",
        0.17599055898432758,
        (0, 3, 0, 0, 2, 1, 1, 1, 0),
        heavy=True,
    ),
    # TestAnonymizationDPresence (table adult_subset.csv, population adult.csv)
    Case(
        "DPresence/1",
        ((DP, (0.0, 0.2)),),
        0.0,
        ENT_M,
        30238.2081484441,
        (0, 1, 1, 2, 3, 2, 2, 0),
        OCC,
        True,
    ),
    Case(
        "DPresence/2",
        ((DP, (0.0, 0.2)),),
        0.0,
        ENT,
        30238.2081484441,
        (0, 1, 1, 2, 3, 2, 2, 0),
        OCC,
        True,
    ),
    Case(
        "DPresence/4",
        ((DP, (0.0, 0.2)),),
        0.05,
        ENT_M,
        19804.2887675027,
        (1, 0, 1, 1, 2, 2, 2, 0),
        OCC,
        True,
    ),
    Case(
        "DPresence/5",
        ((DP, (0.0, 0.2)),),
        0.05,
        ENT,
        20747.362350403302,
        (1, 0, 1, 1, 2, 2, 2, 0),
        OCC,
        True,
    ),
    Case(
        "DPresence/7",
        ((DP, (0.05, 0.15)),),
        0.0,
        ENT_M,
        37223.2491248282,
        (1, 4, 1, 1, 1, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "DPresence/8",
        ((DP, (0.05, 0.15)),),
        0.0,
        ENT,
        37223.2491248282,
        (1, 4, 1, 1, 1, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "DPresence/10",
        ((DP, (0.05, 0.15)),),
        0.05,
        ENT_M,
        33649.9118226187,
        (1, 4, 1, 1, 0, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "DPresence/11",
        ((DP, (0.05, 0.15)),),
        0.05,
        ENT,
        33660.3063277646,
        (1, 4, 1, 1, 0, 2, 2, 1),
        OCC,
        True,
    ),
    # TestAnonymizationKMap with a population table (table adult_subset.csv)
    Case(
        "KMap/3",
        ((KMAP, (3,)),),
        0.0,
        ENT_M,
        23387.494246375998,
        (0, 0, 1, 2, 3, 2, 2, 0),
        OCC,
        True,
    ),
    Case(
        "KMap/4", ((KMAP, (5,)),), 0.0, ENT, 28551.7222913157, (1, 0, 1, 2, 3, 2, 2, 1), OCC, True
    ),
    Case(
        "KMap/6",
        ((KMAP, (7,)),),
        0.05,
        ENT_M,
        17075.7181747451,
        (0, 0, 1, 1, 2, 2, 2, 0),
        OCC,
        True,
    ),
    Case(
        "KMap/7",
        ((KMAP, (3,)),),
        0.05,
        ENT,
        15121.633326877098,
        (0, 0, 1, 1, 1, 2, 1, 0),
        OCC,
        True,
    ),
    Case(
        "KMap/9", ((KMAP, (2,)),), 0.0, ENT_M, 23108.1673304724, (1, 0, 1, 1, 3, 2, 2, 0), OCC, True
    ),
    Case(
        "KMap/10", ((KMAP, (10,)),), 0.0, ENT, 30238.2081484441, (0, 1, 1, 2, 3, 2, 2, 0), OCC, True
    ),
    Case(
        "KMap/12",
        ((KMAP, (5,)),),
        0.05,
        ENT_M,
        17053.8743069776,
        (0, 0, 1, 0, 2, 2, 2, 1),
        OCC,
        True,
    ),
    # TestAnonymizationCombinations (occupation sensitive or left out, 8 QIs)
    Case(
        "Combinations/k5+dp",
        ((K, (5,)), (DP, (0.05, 0.15))),
        0.0,
        ENT_M,
        35461.300017243804,
        (0, 2, 1, 2, 3, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/k5+th+dp",
        ((K, (5,)), (THI, (OCC, 0.2)), (DP, (0.05, 0.15))),
        0.0,
        ENT_M,
        42481.619746031596,
        (1, 4, 1, 1, 3, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/k5+th",
        ((K, (5,)), (THI, (OCC, 0.2))),
        0.0,
        ENT_M,
        398400.0741806447,
        (0, 4, 1, 1, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "Combinations/k5",
        ((K, (5,)),),
        0.0,
        ENT_M,
        324620.5269918692,
        (1, 1, 1, 1, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "Combinations/th",
        ((THI, (OCC, 0.2)),),
        0.0,
        ENT_M,
        398400.0741806447,
        (0, 4, 1, 1, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "Combinations/rcl+dp",
        ((RCL, (OCC, 4.0, 5)), (DP, (0.05, 0.15))),
        0.0,
        ENT_M,
        39177.7411830619,
        (1, 4, 1, 1, 2, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/rcl",
        ((RCL, (OCC, 4.0, 5)),),
        0.0,
        ENT_M,
        324620.5269918692,
        (1, 1, 1, 1, 3, 2, 2, 1),
        OCC,
    ),
    Case(
        "Combinations/k5-s5",
        ((K, (5,)),),
        0.05,
        ENT,
        180132.40848244698,
        (0, 0, 1, 1, 2, 2, 2, 0),
        OCC,
    ),
    Case(
        "Combinations/k5+dp-s5",
        ((K, (5,)), (DP, (0.05, 0.15))),
        0.05,
        ENT_M,
        25247.843728345997,
        (1, 0, 1, 2, 2, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/k5+th+dp-s5",
        ((K, (5,)), (THI, (OCC, 0.2)), (DP, (0.05, 0.15))),
        0.05,
        ENT_M,
        40089.9423426752,
        (1, 4, 0, 1, 3, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/k5+th-s5",
        ((K, (5,)), (THI, (OCC, 0.2))),
        0.05,
        ENT_M,
        367390.5779876774,
        (1, 4, 0, 0, 3, 1, 2, 1),
        OCC,
    ),
    Case(
        "Combinations/rcl+dp-s5",
        ((RCL, (OCC, 4.0, 5)), (DP, (0.05, 0.15))),
        0.05,
        ENT_M,
        28551.7222913157,
        (1, 0, 1, 2, 3, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/rcl-s5",
        ((RCL, (OCC, 4.0, 5)),),
        0.05,
        ENT_M,
        198181.4042332967,
        (1, 0, 1, 1, 2, 2, 2, 0),
        OCC,
    ),
    Case(
        "Combinations/k5+dp-s5-nm",
        ((K, (5,)), (DP, (0.05, 0.15))),
        0.05,
        ENT,
        25949.0068665567,
        (1, 0, 1, 2, 2, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/k5+th+dp-s5-nm",
        ((K, (5,)), (THI, (OCC, 0.2)), (DP, (0.05, 0.15))),
        0.05,
        ENT,
        40282.23779327559,
        (1, 4, 0, 1, 3, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/k5+th-s5-nm",
        ((K, (5,)), (THI, (OCC, 0.2))),
        0.05,
        ENT,
        374778.01889889664,
        (1, 4, 0, 0, 3, 1, 2, 1),
        OCC,
    ),
    Case(
        "Combinations/rcl+dp-s5-nm",
        ((RCL, (OCC, 4.0, 5)), (DP, (0.05, 0.15))),
        0.05,
        ENT,
        28759.669970588497,
        (1, 0, 1, 2, 3, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/rcl-s5-nm",
        ((RCL, (OCC, 4.0, 5)),),
        0.05,
        ENT,
        209764.96161974416,
        (1, 0, 1, 1, 2, 2, 2, 0),
        OCC,
    ),
    Case(
        "Combinations/th+dp-s5",
        ((THI, (OCC, 0.2)), (DP, (0.05, 0.15))),
        0.05,
        ENT_M,
        40089.9423426752,
        (1, 4, 0, 1, 3, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/th-s5",
        ((THI, (OCC, 0.2)),),
        0.05,
        ENT_M,
        367390.5779876774,
        (1, 4, 0, 0, 3, 1, 2, 1),
        OCC,
    ),
    Case(
        "Combinations/th+dp-s5-nm",
        ((THI, (OCC, 0.2)), (DP, (0.05, 0.15))),
        0.05,
        ENT,
        40282.23779327559,
        (1, 4, 0, 1, 3, 2, 2, 1),
        OCC,
        True,
    ),
    Case(
        "Combinations/th-s5-nm",
        ((THI, (OCC, 0.2)),),
        0.05,
        ENT,
        374778.01889889664,
        (1, 4, 0, 0, 3, 1, 2, 1),
        OCC,
    ),
)


ADULT_COLUMNS = (
    "sex",
    "age",
    "race",
    "marital-status",
    "education",
    "native-country",
    "workclass",
    "occupation",
    "salary-class",
)


def _model(kind: str, args: tuple[Any, ...], hierarchies: Mapping[str, Hierarchy]) -> Any:
    if kind == K:
        return KAnonymity(*args)
    if kind == ELS:
        return EntropyLDiversity(args[0], args[1], "shannon")
    if kind == ELG:
        return EntropyLDiversity(args[0], args[1], "grassberger")
    if kind == RCL:
        return RecursiveCLDiversity(*args)
    if kind == TEQ:
        return TCloseness(args[0], args[1], "equal")
    if kind == THI:
        return TCloseness(args[0], args[1], "hierarchical", hierarchies[args[0]])
    if kind == DP:
        return DeltaPresence(*args)
    if kind == KMAP:
        return KMap(*args)
    if kind == AVG:
        return AverageRisk(*args)
    if kind == PU:
        return PopulationUniqueness(*args)
    raise ValueError(kind)


def lattice_for(
    case: Case, adult: pa.Table, subset: pa.Table, hierarchies: Mapping[str, Hierarchy]
) -> Lattice:
    """The engine's lattice for ``case``: ARX's column order, the sensitive column out."""
    qis = [c for c in ADULT_COLUMNS if c != case.sensitive]
    sensitive = [case.sensitive] if case.sensitive and _needs_sensitive(case) else []
    table = subset if case.subset else adult
    encoded = encode(table, qis, hierarchies, sensitive)
    if case.subset:
        encoded = with_population(encoded, adult)
    models = [_model(kind, args, hierarchies) for kind, args in case.models]
    return Lattice(encoded, models, case.suppression, case.metric)  # type: ignore[arg-type]


def _needs_sensitive(case: Case) -> bool:
    return any(kind in (ELS, ELG, RCL, TEQ, THI) for kind, _ in case.models)


def run_case(
    case: Case, adult: pa.Table, subset: pa.Table, hierarchies: Mapping[str, Hierarchy]
) -> tuple[tuple[int, ...] | None, float | None]:
    """The optimum our engine finds for ``case`` and its score (None, None: no solution)."""
    best = search(lattice_for(case, adult, subset, hierarchies)).best
    if best is None:
        return None, None
    return tuple(best.levels), best.score


def matches(case: Case, node: tuple[int, ...] | None, score: float | None) -> bool:
    """Same optimum and same score as ARX (relative tolerance 1e-9)."""
    if case.node is None:
        return node is None
    return node == case.node and score is not None and math.isclose(score, case.score, rel_tol=1e-9)
