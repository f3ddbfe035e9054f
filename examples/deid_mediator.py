"""Architecture 1 with a mediator, end to end on real data (no zone needed).

Two providers each hold half of ARX's Adult extract. Each de-identifies its half at home
(client-side, 5-anonymous), then hands the extract to a mediator, which merges and
shuffles them, drops provenance and de-identifies the union to the agreement's model
(10-anonymous, 3-diverse occupation) before releasing it to the ML party.

    .venv/bin/python examples/deid_mediator.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

from collabzone.techniques.deid import deidentify, mediate, parse_config

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "arx_adult"
QIS = ["sex", "age", "race", "marital-status", "education", "native-country", "workclass"]


def config(k: int, diversity: int | None = None) -> object:
    return parse_config(
        {
            "quasi_identifiers": {q: {"file": str(DATA / f"adult_hierarchy_{q}.csv")} for q in QIS},
            "sensitive": ["occupation"],
            "privacy": {"k": k} if diversity is None else {"k": k, "l": diversity},
            "suppression_limit": 0.02,
        }
    )


def main() -> None:
    adult = pacsv.read_csv(DATA / "adult.csv", parse_options=pacsv.ParseOptions(delimiter=";"))
    adult = adult.select([*QIS, "occupation"])
    half = adult.num_rows // 2
    extracts = []
    for name, part in (("bank", adult.slice(0, half)), ("retailer", adult.slice(half))):
        released, report = deidentify(part, config(5))  # type: ignore[arg-type]
        print(f"{name}: {report['rows_out']} rows, transformation {report['transformation']}")
        extracts.append(released)
    union, report = mediate(extracts, config(10, 3), np.random.default_rng())  # type: ignore[arg-type]
    print(f"mediator released {union.num_rows} rows, columns {union.column_names}")
    summary = {k: report[k] for k in ("transformation", "min_class_size", "suppressed_rows")}
    print(json.dumps({**summary, "l_distinct": report["privacy"]["l_distinct"]}, indent=2))


if __name__ == "__main__":
    main()
