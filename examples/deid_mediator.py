"""Architecture 1 with a mediator, end to end on real data (no zone needed).

Two providers (a bank and a retailer) each hold half of ARX's Adult extract. Each
minimises its extract at home (only the columns the agreement names) and hands it to a
trusted mediator, which follows the KU Leuven flow **merge -> enrich / derive ->
de-identify**:

1. merge: takes only the columns the job reads from each extract, unifies their types,
   merges and shuffles the rows (provenance is dropped);
2. enrich: replaces ``education`` by UCI's years-of-schooling number from a reference
   table the owners approved (``examples/deid/education_years.csv``); the reference never
   reaches the providers;
3. derive: replaces ``age`` by a named life stage and a 10-year band;
4. de-identify: the union, 10-anonymous with 3 distinct occupations per class. The three
   added columns are not declared, so they are quasi-identifiers; ``salary-class`` is
   declared non-identifying (``keep``) and released unchanged.

    .venv/bin/python examples/deid_mediator.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from collabzone.techniques.deid import mediate, parse_config

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / ".." / "shared" / "data" / "arx_adult"
SHARED = ["sex", "age", "race", "marital-status", "education", "native-country"]
EXTRACT = [*SHARED, "occupation", "salary-class"]

MEDIATOR_CONFIG: dict[str, Any] = {
    "quasi_identifiers": {
        q: {"file": str(DATA / f"adult_hierarchy_{q}.csv")}
        for q in ["sex", "race", "marital-status", "native-country"]
    },
    "sensitive": ["occupation"],
    "keep": ["salary-class"],
    "privacy": {"k": 10, "l": 3},
    "suppression_limit": 0.02,
    "prepare": {
        "enrich": [
            {"column": "education", "reference": "education_years", "columns": ["education_num"]}
        ],
        "derive": [
            {
                "column": "life_stage",
                "kind": "bins",
                "source": "age",
                "edges": [25, 45, 65],
                "labels": ["young", "adult", "middle-aged", "senior"],
                "keep_source": True,
            },
            {"column": "age_band", "kind": "band", "source": "age", "width": 10},
        ],
    },
}


def _read(path: Path) -> pa.Table:
    return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=";"))


def extracts() -> list[pa.Table]:
    """Each provider's minimised extract (a provider column shows provenance is dropped)."""
    adult = _read(DATA / "adult.csv").select(EXTRACT)
    half = adult.num_rows // 2
    parts = []
    for name, part in (("bank", adult.slice(0, half)), ("retailer", adult.slice(half))):
        parts.append(part.append_column("provider", pa.array([name] * part.num_rows)))
    return parts


def run(rng: np.random.Generator) -> tuple[pa.Table, dict[str, Any]]:
    """The mediator's release and report."""
    references = {"education_years": _read(HERE / "deid" / "education_years.csv")}
    return mediate(extracts(), parse_config(MEDIATOR_CONFIG), rng, references=references)


def main() -> None:
    union, report = run(np.random.default_rng())
    print(f"mediator released {union.num_rows} rows, columns {union.column_names}")
    summary = {
        k: report[k] for k in ("transformation", "min_class_size", "suppressed_rows", "columns")
    }
    print(json.dumps({**summary, "l_distinct": report["privacy"]["l_distinct"]}, indent=2))


if __name__ == "__main__":
    main()
