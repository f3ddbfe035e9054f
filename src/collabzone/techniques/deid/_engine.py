"""``deidentify(table, config)``: pre-steps, search, recoding, and the JSON report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid import _hierarchy as hier
from collabzone.techniques.deid._config import DeidConfig, HierarchySpec
from collabzone.techniques.deid._declare import account
from collabzone.techniques.deid._derive import derive, derived_hierarchy, derived_labels
from collabzone.techniques.deid._encode import (
    Encoded,
    column_strings,
    encode,
    encode_qi,
    row_groups,
    with_population,
)
from collabzone.techniques.deid._lattice import Lattice
from collabzone.techniques.deid._metrics import METRICS, aggregate_of, quality_report
from collabzone.techniques.deid._models import (
    ClassStats,
    DistinctLDiversity,
    EntropyLDiversity,
    KAnonymity,
    PrivacyModel,
    RecursiveCLDiversity,
    TCloseness,
    entropy_l,
)
from collabzone.techniques.deid._mondrian import mondrian
from collabzone.techniques.deid._prepare import add_noise, enrich, pseudonymise, scrub
from collabzone.techniques.deid._risk import risk_report
from collabzone.techniques.deid._risk_models import (
    AverageRisk,
    DeltaPresence,
    KMap,
    PopulationUniqueness,
    k_map_estimated_k,
)
from collabzone.techniques.deid._safepub import safepub_parameters, safepub_search
from collabzone.techniques.deid._safepub import sample as safepub_sample
from collabzone.techniques.deid._search import SearchResult, search

Progress = Callable[[str], None]


def build_hierarchy(
    name: str, spec: HierarchySpec | None, table: pa.Table, base_dir: Path | None = None
) -> hier.Hierarchy:
    """The hierarchy ``spec`` describes for column ``name`` (a default one if None:
    intervals of 5/10/20/40 for numbers, month/year/decade for dates, value-or-* else)."""
    if spec is not None and spec.file is not None:
        path = Path(spec.file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return hier.read_arx_csv(path, name)
    if spec is not None and spec.rows is not None:
        return hier.Hierarchy.from_rows(name, spec.rows)
    if spec is not None and spec.tree is not None:
        return hier.tree(name, spec.tree)
    _, distinct = column_strings(table, name)
    kind = table.schema.field(name).type
    if spec is not None and spec.intervals is not None:
        return hier.intervals(
            name, [float(v) for v in _numbers(name, distinct)], spec.intervals, spec.origin
        )
    if spec is not None and spec.dates is not None:
        return hier.dates(name, distinct, spec.dates)
    if spec is not None and spec.masking:
        return hier.masking(name, distinct)
    if spec is not None and spec.flat:
        return hier.flat(name, distinct)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return hier.intervals(name, _numbers(name, distinct), [5, 10, 20, 40])
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return hier.dates(name, distinct)
    return hier.flat(name, distinct)


def _numbers(name: str, values: list[str]) -> list[float]:
    try:
        return [float(v) for v in values]
    except ValueError:
        raise InvalidInputError(
            f"column {name!r} has a value that is not a number: interval hierarchies need numbers"
        ) from None


def build_models(
    config: DeidConfig,
    sensitive_hierarchies: Mapping[str, hier.Hierarchy],
    rows: int = 0,
    has_population: bool = False,
) -> list[PrivacyModel]:
    """The privacy models the config asks for (one l / t model per sensitive attribute).
    k-map is checked against the population table if there is one, else (with
    ``population_size``) it becomes k-anonymity with ARX's derived k for ``rows`` rows."""
    p = config.privacy
    models: list[PrivacyModel] = []
    if p.k is not None:
        models.append(KAnonymity(p.k))
    if p.k_map is not None:
        if has_population:
            models.append(KMap(p.k_map))
        elif p.population_size is not None:
            derived = k_map_estimated_k(
                p.k_map, rows, p.population_size, p.k_map_significance, p.k_map_estimator
            )
            models.append(KAnonymity(derived))
        else:
            raise InvalidInputError(
                "k_map needs a population table (`population`) or privacy.population_size"
            )
    if p.delta_min is not None and p.delta_max is not None:
        if not has_population:
            raise InvalidInputError("delta-presence needs a population table (`population`)")
        models.append(DeltaPresence(p.delta_min, p.delta_max))
    if p.average_risk is not None:
        models.append(AverageRisk(p.average_risk, p.highest_risk, p.records_at_risk))
    if p.population_uniqueness is not None and p.population_size is not None:
        models.append(
            PopulationUniqueness(p.population_uniqueness, p.population_size, p.uniqueness_model)
        )
    for attr in config.sensitive:
        if p.l is not None:
            if p.l_variant == "distinct":
                models.append(DistinctLDiversity(attr, int(np.ceil(p.l))))
            elif p.l_variant == "entropy":
                models.append(EntropyLDiversity(attr, p.l, p.l_estimator))
            else:
                models.append(RecursiveCLDiversity(attr, p.c or 1.0, int(np.ceil(p.l))))
        if p.t is not None:
            models.append(TCloseness(attr, p.t, p.t_distance, sensitive_hierarchies.get(attr)))
    if not models:
        raise InvalidInputError("the config states no privacy model: set at least privacy.k")
    return models


def prepare(
    table: pa.Table,
    config: DeidConfig,
    references: Mapping[str, pa.Table] | None = None,
    pseudonym_key: bytes | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """Apply the config's pre-steps in order: enrich, derive, scrub, pseudonymise, noise.

    Returns the prepared table and a summary for the report (column names and noise
    scales, never values)."""
    steps = config.prepare
    for spec in steps.enrich:
        ref = (references or {}).get(spec.reference)
        if ref is None:
            raise InvalidInputError(f"enrich: reference table {spec.reference!r} was not supplied")
        table = enrich(table, spec, ref)
    for step in steps.derive:
        table = derive(table, step)
    table = scrub(table, steps.scrub)
    table = pseudonymise(table, steps.pseudonymise, pseudonym_key)
    table = add_noise(table, steps.noise)
    summary = {
        "enriched": [s.column for s in steps.enrich],
        "derived": {d.column: f"{d.kind} of {d.source}" for d in steps.derive},
        "scrubbed": list(steps.scrub),
        "pseudonymised": list(steps.pseudonymise),
        "noise": {
            k: {"epsilon": v.epsilon, "scale": (v.upper - v.lower) / v.epsilon}
            for k, v in steps.noise.items()
        },
    }
    return table, summary


def _privacy_levels(
    stats: ClassStats, sensitive: list[str], trees: Mapping[str, hier.Hierarchy]
) -> dict[str, Any]:
    out: dict[str, Any] = {"k": int(stats.sizes.min()) if len(stats.sizes) else 0}
    for attr in sensitive:
        hist = stats.hists[attr]
        out.setdefault("l_distinct", {})[attr] = (
            int((hist > 0).sum(axis=1).min()) if len(hist) else 0
        )
        out.setdefault("l_entropy", {})[attr] = float(entropy_l(hist).min()) if len(hist) else 0.0
        for distance in ("equal", "ordered"):
            t = TCloseness(attr, 1.0, distance).measure(stats) if len(hist) else np.zeros(1)
            out.setdefault(f"t_{distance}", {})[attr] = float(t.max())
        if attr in trees and len(hist):
            t = TCloseness(attr, 1.0, "hierarchical", trees[attr]).measure(stats)
            out.setdefault("t_hierarchical", {})[attr] = float(t.max())
    return out


def _class_stats(encoded: Encoded, row_class: np.ndarray, rows: np.ndarray) -> ClassStats:
    """Stats of the released classes (rows = kept input rows), against the input's
    sensitive distributions."""
    ids, cls = np.unique(row_class[rows], return_inverse=True)
    sizes = np.bincount(cls, minlength=len(ids))
    hists, overall, values = {}, {}, {}
    for s in encoded.sensitive:
        m = len(s.values)
        hists[s.name] = np.bincount(cls * m + s.codes[rows], minlength=len(ids) * m).reshape(
            len(ids), m
        )
        overall[s.name] = np.bincount(s.codes, minlength=m) / encoded.n_rows
        values[s.name] = s.values
    return ClassStats(sizes, hists, overall, values)


def deidentify(
    table: pa.Table,
    config: DeidConfig,
    *,
    hierarchies: Mapping[str, hier.Hierarchy] | None = None,
    references: Mapping[str, pa.Table] | None = None,
    pseudonym_key: bytes | None = None,
    population: pa.Table | None = None,
    rng: np.random.Generator | None = None,
    base_dir: Path | None = None,
    progress: Progress | None = None,
    diagnostics: dict[str, Any] | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """De-identify ``table`` as ``config`` says; return the released table and the report.

    ``diagnostics``, if given, is filled for the owner's visual report (``_html.py``):
    class sizes before and after, population class sizes, the prepared table before
    generalisation and the input rows released (in output order).

    The pre-steps run first; then every column is accounted for (``_declare.account``):
    declared quasi-identifiers, sensitive and ``keep`` columns are released, columns the
    pre-steps added default to quasi-identifiers, and any other column is an error (or
    dropped with ``undeclared: drop``). The QI columns of the result hold generalised
    labels; rows in classes that fail the privacy model are suppressed (removed) within
    the suppression limit, so the report's k / l / t / risk are those of exactly the
    released columns. Raises InvalidInputError for an undeclared column or when no
    transformation satisfies the model.

    Example:
        >>> import pyarrow as pa
        >>> from collabzone.techniques.deid import parse_config
        >>> t = pa.table({"age": [31, 33, 35, 37], "sex": ["m", "f", "m", "f"]})
        >>> cfg = parse_config({"quasi_identifiers": {"age": None, "sex": None},
        ...                     "privacy": {"k": 2}})
        >>> out, report = deidentify(t, cfg)
        >>> report["min_class_size"] >= 2
        True
    """
    note = progress or (lambda _msg: None)
    table, prepared = prepare(table, config, references, pseudonym_key)
    columns = account(table.column_names, config)
    released = set(columns.released)
    table = table.select([c for c in table.column_names if c in released])
    qis = list(columns.quasi_identifiers)
    hs = _qi_hierarchies(table, config, qis, hierarchies or {}, base_dir)
    sens_h = {
        a: (hierarchies or {}).get(a) or build_hierarchy(a, spec, table, base_dir)
        for a, spec in config.sensitive_hierarchies.items()
    }
    if population is not None:  # the population needs the same enriched and derived QIs
        for step in config.prepare.enrich:
            population = enrich(population, step, (references or {})[step.reference])
        for d in config.prepare.derive:
            population = derive(population, d)
    dp_params = None
    n_input = table.num_rows
    if config.safepub is not None:  # SafePub: random sample, then k from (epsilon, delta)
        sp = config.safepub
        dp_params = safepub_parameters(sp.epsilon, sp.delta, sp.search_epsilon, sp.steps)
        table = table.filter(pa.array(safepub_sample(table.num_rows, dp_params.beta)))
        if table.num_rows == 0:
            raise InvalidInputError("SafePub's random sample is empty: raise epsilon")
        models: list[PrivacyModel] = [KAnonymity(dp_params.k)]
    else:
        models = build_models(config, sens_h, table.num_rows, population is not None)
    if config.privacy.k is not None and config.privacy.k > table.num_rows:
        raise InvalidInputError(
            f"k={config.privacy.k} is larger than the table ({table.num_rows} rows): lower k "
            "or de-identify more rows together"
        )
    note("encoding")
    encoded = encode(table, qis, hs, list(columns.sensitive))
    if population is not None and any(isinstance(m, KMap | DeltaPresence) for m in models):
        encoded = with_population(encoded, population)
    n = encoded.n_rows
    sizes_before = np.bincount(
        row_groups([q.codes for q in encoded.qis], [q.maps.shape[1] for q in encoded.qis])
    )
    before = risk_report(sizes_before, config.risk_threshold)
    note("searching")
    report: dict[str, Any] = {"algorithm": config.algorithm}
    if config.algorithm == "mondrian":
        local = mondrian(encoded, models)
        if local is None:
            raise InvalidInputError(_no_solution(config))
        kept = np.ones(n, dtype=bool)
        row_class = local.row_class
        labels, levels, covered = list(local.labels), list(local.levels), list(local.covered)
        node = None
        report["transformation"] = dict.fromkeys(qis, "local")
        report["lattice_size"] = None
        report["nodes_checked"] = None
    else:
        limit = 1.0 if dp_params is not None else config.suppression_limit
        lattice = Lattice(encoded, models, limit, config.metric, config.aggregate)
        if dp_params is not None:
            found = safepub_search(lattice, dp_params, n_input)
            result = SearchResult(
                lattice.evaluate(found.best), "safepub", lattice.size, lattice.checked
            )
            report["dp"] = {
                "mechanism": "SafePub (Bild et al. 2018), as ARX",
                "epsilon": dp_params.epsilon,
                "delta": dp_params.delta,
                "search_epsilon": dp_params.search_epsilon,
                "search_epsilon_spent": found.epsilon_spent,
                "anonymisation_epsilon": dp_params.anonymisation_epsilon,
                "sampling_probability": dp_params.beta,
                "k": dp_params.k,
                "steps": len(found.pivots) - 1,
                "input_rows": n_input,
            }
        else:
            result = search(lattice, config.algorithm)
        if result.best is None:
            raise InvalidInputError(_no_solution(config))
        node = result.best.levels
        report["score"] = result.best.score
        if result.best.rank is not None:
            report["score_rank"] = list(result.best.rank)
        report["optimal"] = result.algorithm != "greedy"
        part = lattice.partition(node)
        row_class = part.group_class[encoded.row_group]
        kept = part.kept[row_class]
        labels, levels, covered = [], [], []
        for q, level in zip(encoded.qis, node, strict=True):
            codes = q.maps[level][q.codes]
            labels.append(np.array(q.labels[level], dtype=object)[codes])
            levels.append(np.full(n, level))
            covered.append(np.bincount(q.maps[level])[codes])
        report["algorithm"] = result.algorithm
        report["transformation"] = {
            q: int(lv) + e.floor for q, lv, e in zip(qis, node, encoded.qis, strict=True)
        }
        report["lattice_size"] = result.lattice_size
        report["nodes_checked"] = result.checked
    note("writing")
    rows = np.flatnonzero(kept)
    pop_sizes = _population_sizes(population, hs, encoded, node, labels, row_class, rows)
    stats = _class_stats(encoded, row_class, rows)
    out = table
    for name, lab in zip(qis, labels, strict=True):
        out = out.set_column(
            out.column_names.index(name), name, pa.array(lab.tolist(), type=pa.string())
        )
    order = rows if not config.shuffle else (rng or np.random.default_rng()).permutation(rows)
    out = out.take(pa.array(order))
    quality = quality_report(
        encoded, config.metric, config.aggregate, kept, row_class, labels, levels, covered
    )
    if node is None:  # local recoding: the score is the quality metric of the release
        report["score"] = quality[config.metric]
    sizes = stats.sizes
    report.update(
        {
            "transformation_levels": list(report["transformation"].values()),
            "node": None if node is None else list(node),
            "rows_in": n,
            "rows_out": len(rows),
            "suppressed_rows": int(n - len(rows)),
            "equivalence_classes": len(sizes),
            "min_class_size": int(sizes.min()) if len(sizes) else 0,
            "average_class_size": float(sizes.mean()) if len(sizes) else 0.0,
            **quality,
            "metric": config.metric,
            "aggregate": aggregate_of(config.metric, config.aggregate),
            "privacy": _privacy_levels(stats, config.sensitive, sens_h),
            "requirements": {
                **config.privacy.model_dump(exclude_none=True),
                "suppression_limit": config.suppression_limit,
            },
            "risk": {
                "before": before,
                "after": risk_report(sizes, config.risk_threshold, pop_sizes),
            },
            "utility": {
                q: {
                    "level": report["transformation"][q],
                    "height": e.height + e.floor,
                    "distinct_before": len(e.labels[0]),
                    "distinct_after": len(set(lab[kept].tolist())),
                }
                for q, e, lab in zip(qis, encoded.qis, labels, strict=True)
            },
            "prepare": prepared,
            "columns": columns.report(),
        }
    )
    assert set(METRICS) <= set(report)
    if diagnostics is not None:
        diagnostics.update(
            {
                "sizes_before": sizes_before,
                "sizes_after": sizes,
                "population_after": pop_sizes,
                "prepared": table,
                "rows": order,
                "heights": {q: e.height + e.floor for q, e in zip(qis, encoded.qis, strict=True)},
            }
        )
    columns.verify(out.column_names)
    return out, report


def _qi_hierarchies(
    table: pa.Table,
    config: DeidConfig,
    qis: list[str],
    given: Mapping[str, hier.Hierarchy],
    base_dir: Path | None,
) -> dict[str, hier.Hierarchy]:
    """Per QI: the hierarchy passed in, else the config's spec, else (for a derived
    column) its natural hierarchy, else the default for the column's type."""
    derived = {d.column: d for d in config.prepare.derive}
    out = {}
    for q in qis:
        spec = config.quasi_identifiers.get(q)
        h = given.get(q)
        if h is None and spec is None and q in derived:
            h = derived_hierarchy(derived[q], derived_labels(table.column(q)))
        out[q] = h or build_hierarchy(q, spec, table, base_dir)
    return out


def _population_sizes(
    population: pa.Table | None,
    hs: Mapping[str, hier.Hierarchy],
    encoded: Encoded,
    node: tuple[int, ...] | None,
    labels: list[np.ndarray],
    row_class: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray | None:
    """Per released class (in class-id order), its size in ``population`` generalised the
    same way; None without a population (or for local recoding)."""
    if population is None or node is None:
        return None
    pop_labels = []
    for e, level in zip(encoded.qis, node, strict=True):
        pq = encode_qi(population, e.hierarchy.attribute, hs[e.hierarchy.attribute])
        lvl = level + e.floor - pq.floor
        if lvl < 0:
            raise InvalidInputError(
                f"the population's column {e.hierarchy.attribute!r} is coarser than the table's"
            )
        pop_labels.append(np.array(pq.labels[lvl], dtype=object)[pq.maps[lvl][pq.codes]])
    counts = Counter(zip(*[lab.tolist() for lab in pop_labels], strict=True))
    _, first = np.unique(row_class[rows], return_index=True)
    keys = [tuple(lab[rows[i]] for lab in labels) for i in first]
    return np.array([counts.get(k, 0) for k in keys], dtype=np.int64)


def _no_solution(config: DeidConfig) -> str:
    return (
        "no transformation satisfies the privacy model "
        f"({config.privacy.model_dump(exclude_none=True)}, suppression limit "
        f"{config.suppression_limit}): lower k / l, raise t or the suppression limit, or use "
        "hierarchies with more levels"
    )
