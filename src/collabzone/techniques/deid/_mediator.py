"""The mediator (Architecture 1 with a trusted third party): merge -> enrich / derive ->
de-identify.

Several providers hand in (possibly already de-identified) extracts. The mediator takes
from each only the columns the job reads (a column only one provider sends would tell
whose rows they are; each must be in every extract), gives each column one type, merges
and shuffles the rows, then runs the pre-steps on the union: enrichment with reference
tables the owners approved (the ML party's reference data need not reach any provider,
as the KU Leuven paper suggests) and derived attributes (bands, age from a birth date).
It de-identifies the union to the agreement's model (lifting every quasi-identifier to
one common granularity, since a provider that generalised more would otherwise stand
out; every added column is a quasi-identifier unless declared) and releases the rows
sorted by their released values, so neither a column nor the row order depends on which
provider a record came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._config import DeidConfig
from collabzone.techniques.deid._declare import input_columns
from collabzone.techniques.deid._engine import deidentify
from collabzone.techniques.deid._hierarchy import Hierarchy, format_value


def _common_columns(extracts: Sequence[pa.Table], needed: Sequence[str]) -> list[str]:
    """Only the columns the job reads are merged; each must be in every extract."""
    missing = [c for c in needed if not all(c in t.column_names for t in extracts)]
    if missing:
        raise InvalidInputError(
            f"mediate: column(s) {missing} are not in every extract: each provider must send them"
        )
    return list(needed)


def merge(
    extracts: Sequence[pa.Table], needed: Sequence[str], rng: np.random.Generator
) -> pa.Table:
    """The ``needed`` columns only, one type per column, rows of all extracts shuffled."""
    if len(extracts) < 2:
        raise InvalidInputError("mediate needs extracts from at least two providers")
    columns = _common_columns(extracts, needed)
    parts = []
    for table in extracts:
        parts.append(table.select(columns))
    for name in columns:
        types = {t.schema.field(name).type for t in parts}
        if len(types) > 1:  # mixed types would betray the source: one text form for all
            for i, t in enumerate(parts):
                text = pa.array(
                    [None if v is None else format_value(v) for v in t.column(name).to_pylist()],
                    type=pa.string(),
                )
                parts[i] = t.set_column(t.column_names.index(name), name, text)
    union = pa.concat_tables(parts)
    return union.take(pa.array(rng.permutation(union.num_rows)))


def mediate(
    extracts: Sequence[pa.Table],
    config: DeidConfig,
    rng: np.random.Generator,
    *,
    hierarchies: Mapping[str, Hierarchy] | None = None,
    references: Mapping[str, pa.Table] | None = None,
    pseudonym_key: bytes | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """Merge, shuffle, drop provenance, run the pre-steps (enrich with ``references``,
    derive, ...) on the union, de-identify it; return the table and the report.

    Example:
        >>> import numpy as np, pyarrow as pa
        >>> from collabzone.techniques.deid import parse_config
        >>> a = pa.table({"age": [30, 31, 32], "sex": ["m", "f", "m"]})
        >>> b = pa.table({"age": [33, 34, 35], "sex": ["f", "m", "f"]})
        >>> cfg = parse_config({"quasi_identifiers": {"age": None, "sex": None},
        ...                     "privacy": {"k": 2}})
        >>> out, report = mediate([a, b], cfg, np.random.default_rng(0))
        >>> out.num_rows + report["suppressed_rows"]
        6
    """
    union = merge(extracts, input_columns(config), rng)
    # columns that were never merged need no scrubbing
    scrub = [c for c in config.prepare.scrub if c in union.column_names]
    plain = config.model_copy(
        update={
            "shuffle": False,
            "prepare": config.prepare.model_copy(update={"scrub": scrub}),
        }
    )
    released, report = deidentify(
        union,
        plain,
        hierarchies=hierarchies,
        references=references,
        pseudonym_key=pseudonym_key,
        rng=rng,
    )
    released = released.sort_by([(c, "ascending") for c in released.column_names])
    report["extracts"] = len(extracts)
    return released, report
