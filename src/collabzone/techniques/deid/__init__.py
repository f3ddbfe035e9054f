"""De-identification (Architecture 1): generalisation to k-anonymity, l-diversity and
t-closeness with an optimal lattice search, risk and utility reports, pre-steps (enrich,
derive, scrub, pseudonymise, noise) and a mediator that merges several providers'
extracts, enriches / derives, then de-identifies the union.

The pure core is :func:`deidentify` (table + config -> released table + JSON report).
Every released column is accounted for (:func:`account`): a declared quasi-identifier,
sensitive attribute or non-identifying ``keep`` column, added columns defaulting to
quasi-identifiers. :class:`Deidentify` and :class:`Mediate` adapt it to the zone, with
strict request specs (:class:`DeidRequest`, :class:`MediateRequest`); ``collabzone deid
run`` runs it at the provider with no zone (:mod:`collabzone.techniques.deid.cli`).
"""

from __future__ import annotations

from collabzone.techniques.deid._config import (
    AgeDerive,
    BandDerive,
    BinsDerive,
    DatePartDerive,
    DeidConfig,
    DeriveSpec,
    EnrichSpec,
    HierarchySpec,
    PrepareSpec,
    PrivacySpec,
    load_config,
    parse_config,
)
from collabzone.techniques.deid._declare import Accounting, account, input_columns
from collabzone.techniques.deid._derive import derive
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
from collabzone.techniques.deid._population import population_uniques
from collabzone.techniques.deid._request import DeidRequest, MediateRequest, parse_request
from collabzone.techniques.deid._risk import risk_report
from collabzone.techniques.deid._risk_models import (
    AverageRisk,
    DeltaPresence,
    KMap,
    PopulationUniqueness,
    k_map_estimated_k,
)
from collabzone.techniques.deid._search import SearchResult, exhaustive, flash, greedy, search
from collabzone.techniques.deid._technique import Deidentify, Mediate

__all__ = [
    "Accounting",
    "AgeDerive",
    "AverageRisk",
    "BandDerive",
    "BinsDerive",
    "DatePartDerive",
    "DeidConfig",
    "DeidRequest",
    "Deidentify",
    "DeltaPresence",
    "DeriveSpec",
    "DistinctLDiversity",
    "Encoded",
    "EnrichSpec",
    "EntropyLDiversity",
    "Hierarchy",
    "HierarchySpec",
    "KAnonymity",
    "KMap",
    "Lattice",
    "Mediate",
    "MediateRequest",
    "NodeResult",
    "PopulationUniqueness",
    "PrepareSpec",
    "PrivacySpec",
    "RecursiveCLDiversity",
    "SearchResult",
    "TCloseness",
    "UnknownValueError",
    "account",
    "build_hierarchy",
    "build_models",
    "dates",
    "deidentify",
    "derive",
    "encode",
    "exhaustive",
    "flash",
    "flat",
    "greedy",
    "input_columns",
    "intervals",
    "k_map_estimated_k",
    "load_config",
    "masking",
    "mediate",
    "mondrian",
    "parse_config",
    "parse_request",
    "population_uniques",
    "prepare",
    "read_arx_csv",
    "risk_report",
    "search",
    "tree",
]
