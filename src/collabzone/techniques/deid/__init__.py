"""De-identification (Architecture 1): generalisation to k-anonymity, l-diversity and
t-closeness with an optimal lattice search, risk and utility reports, pre-steps (scrub,
pseudonymise, noise, enrich) and a mediator that mixes several providers' extracts.

The pure core is :func:`deidentify` (table + config -> released table + JSON report);
:class:`Deidentify` and :class:`Mediate` adapt it to the zone; ``collabzone deid run``
runs it at the provider with no zone (:mod:`collabzone.techniques.deid.cli`).
"""

from __future__ import annotations

from collabzone.techniques.deid._config import (
    DeidConfig,
    HierarchySpec,
    PrivacySpec,
    load_config,
    parse_config,
)
from collabzone.techniques.deid._encode import Encoded, UnknownValueError, encode
from collabzone.techniques.deid._engine import build_hierarchy, build_models, deidentify, prepare
from collabzone.techniques.deid._hierarchy import (
    Hierarchy,
    dates,
    flat,
    intervals,
    masking,
    read_arx_csv,
    tree,
)
from collabzone.techniques.deid._lattice import Lattice, NodeResult
from collabzone.techniques.deid._mediator import mediate
from collabzone.techniques.deid._models import (
    DistinctLDiversity,
    EntropyLDiversity,
    KAnonymity,
    RecursiveCLDiversity,
    TCloseness,
)
from collabzone.techniques.deid._mondrian import mondrian
from collabzone.techniques.deid._risk import risk_report
from collabzone.techniques.deid._search import SearchResult, exhaustive, flash, greedy, search
from collabzone.techniques.deid._technique import Deidentify, Mediate

__all__ = [
    "DeidConfig",
    "Deidentify",
    "DistinctLDiversity",
    "Encoded",
    "EntropyLDiversity",
    "Hierarchy",
    "HierarchySpec",
    "KAnonymity",
    "Lattice",
    "Mediate",
    "NodeResult",
    "PrivacySpec",
    "RecursiveCLDiversity",
    "SearchResult",
    "TCloseness",
    "UnknownValueError",
    "build_hierarchy",
    "build_models",
    "dates",
    "deidentify",
    "encode",
    "exhaustive",
    "flash",
    "flat",
    "greedy",
    "intervals",
    "load_config",
    "masking",
    "mediate",
    "mondrian",
    "parse_config",
    "prepare",
    "read_arx_csv",
    "risk_report",
    "search",
    "tree",
]
