"""Every shipped de-identification config is checked independently (pycanon, pandas).

The configs in examples/deid/, the YAML configs in docs/deid.md, the mediator example
(examples/deid_mediator.py) and the demo's mediate step: each released table's k, l, t
and risk are recomputed from the released rows over exactly the released columns.
"""

from __future__ import annotations

import importlib.util
import io
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pacsv
import pytest
import yaml
from rich.console import Console

from collabzone.techniques.base import Outcome
from collabzone.techniques.deid import DeidConfig, Mediate, load_config, parse_config

from .conftest import ADULT
from .independent import check_release, frame_of

# typer 0.20 imports a name click 8.5 deprecated; pytest turns that warning into an error.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from collabzone.techniques.deid.cli import read_table, run_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "deid"
CONFIG_FILES = sorted([*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("*.toml")])
DOC = ROOT / "docs" / "deid.md"


def _doc_configs() -> list[dict[str, Any]]:
    """The YAML blocks of docs/deid.md that are whole jobs (they name an input)."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    return [data for b in blocks if isinstance(data := yaml.safe_load(b), dict) and "input" in data]


def _run_and_check(config: DeidConfig, tmp: Path) -> dict[str, Any]:
    if not (ADULT / "adult.csv").exists():
        pytest.skip(f"shared Adult data not found at {ADULT}")
    config = config.model_copy(
        update={"output": str(tmp / "out.csv"), "report": str(tmp / "r.json")}
    )
    report = run_config(config, EXAMPLES)
    released = pacsv.read_csv(
        tmp / "out.csv", parse_options=pacsv.ParseOptions(delimiter=config.delimiter)
    )
    source = read_table(EXAMPLES / str(config.input), config.delimiter)
    check_release(
        released.to_pandas(),
        report,
        sensitive=config.sensitive,
        keep=config.keep,
        privacy=config.privacy.model_dump(exclude_none=True),
        inputs={s: source.column(s).to_pylist() for s in config.sensitive},
    )
    return report


def test_there_are_example_configs_and_the_docs_show_them() -> None:
    assert len(CONFIG_FILES) >= 2
    docs = _doc_configs()
    assert docs, "docs/deid.md shows no runnable config"
    shipped = [yaml.safe_load(f.read_text()) for f in CONFIG_FILES if f.suffix == ".yaml"]
    assert any(d in shipped for d in docs), "the docs' config is not a shipped example"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[p.name for p in CONFIG_FILES])
def test_example_config_passes_independent_checks(path: Path, tmp_path: Path) -> None:
    report = _run_and_check(load_config(path), tmp_path)
    assert report["rows_out"] > 0


@pytest.mark.parametrize("index", range(len(_doc_configs())))
def test_docs_config_passes_independent_checks(index: int, tmp_path: Path) -> None:
    _run_and_check(parse_config(_doc_configs()[index]), tmp_path)


def _load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mediator_example_passes_independent_checks() -> None:
    example = _load_example("deid_mediator")
    union, report = example.run(np.random.default_rng(7))
    config = example.MEDIATOR_CONFIG
    check_release(
        union.to_pandas(),
        report,
        sensitive=config["sensitive"],
        keep=config["keep"],
        privacy=config["privacy"],
        inputs={"occupation": [v for e in example.extracts() for v in e["occupation"].to_pylist()]},
    )
    # merge -> enrich -> derive -> de-identify: the keys and the provenance are gone
    assert not {"education", "age", "provider"} & set(union.column_names)
    assert set(report["columns"]["defaulted_to_quasi_identifier"]) == {
        "education_num",
        "life_stage",
        "age_band",
    }


def test_demo_mediate_step_passes_independent_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collabzone import demo

    released: list[Outcome] = []
    original = Mediate.release

    def capture(self: Mediate, plan: Any, outcome: Outcome, rules: Any) -> Outcome:
        out = original(self, plan, outcome, rules)
        released.append(out)
        return out

    monkeypatch.setattr(Mediate, "release", capture)
    zone = demo._setup(tmp_path, 600, Console(file=io.StringIO()))
    demo.step_mediator(zone)
    assert len(released) == 1
    payload = released[0].payload
    check_release(
        frame_of(payload["columns"], payload["rows"]),
        payload["report"],
        sensitive=["spend_band"],
        keep=[],
        privacy={"k": 10, "l": 3},
    )
