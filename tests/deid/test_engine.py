"""deidentify(): report fields, suppression, pre-steps, risk, errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid import deidentify, parse_config, risk_report
from collabzone.techniques.deid._prepare import token

from .conftest import ADULT, ADULT_QIS

REQUIRED = [
    "transformation",
    "suppressed_rows",
    "equivalence_classes",
    "min_class_size",
    "discernibility",
    "non_uniform_entropy",
    "loss",
    "precision",
    "average_class_size",
    "risk",
]


def _adult_config(**extra: object) -> dict[str, object]:
    return {
        "quasi_identifiers": {
            q: {"file": str(ADULT / f"adult_hierarchy_{q}.csv")} for q in ADULT_QIS[:5]
        },
        "privacy": {"k": 5},
        "undeclared": "drop",
        **extra,
    }


def test_report_has_the_required_fields_and_they_match_the_output(adult) -> None:  # type: ignore[no-untyped-def]
    sub = adult.slice(0, 3000)
    released, report = deidentify(sub, parse_config(_adult_config(suppression_limit=0.05)))
    for field in REQUIRED:
        assert field in report
    assert list(report["transformation"]) == ADULT_QIS[:5]
    assert released.num_rows == 3000 - report["suppressed_rows"]
    assert report["suppressed_rows"] <= 0.05 * 3000
    sizes = (
        released.group_by(ADULT_QIS[:5])
        .aggregate([([], "count_all")])
        .column("count_all")
        .to_numpy()
    )
    assert sizes.min() == report["min_class_size"] >= 5
    assert len(sizes) == report["equivalence_classes"]
    assert report["discernibility"] == int((sizes**2).sum() + report["suppressed_rows"] * 3000)
    assert report["risk"]["after"]["prosecutor"]["highest_risk"] == pytest.approx(1 / sizes.min())
    assert (
        report["risk"]["before"]["prosecutor"]["highest_risk"]
        >= report["risk"]["after"]["prosecutor"]["highest_risk"]
    )
    assert 0 <= report["loss"] <= 1 and 0 <= report["precision"] <= 1


def test_suppression_lowers_information_loss(adult) -> None:  # type: ignore[no-untyped-def]
    sub = adult.slice(0, 3000)
    _, strict = deidentify(sub, parse_config(_adult_config()))
    _, loose = deidentify(sub, parse_config(_adult_config(suppression_limit=0.1)))
    assert strict["suppressed_rows"] == 0
    assert loose["discernibility"] <= strict["discernibility"]


def test_k_larger_than_the_table_is_a_clear_error() -> None:
    table = pa.table({"age": [30, 40, 50]})
    with pytest.raises(InvalidInputError, match="k=10 is larger than the table"):
        deidentify(table, parse_config({"quasi_identifiers": {"age": None}, "privacy": {"k": 10}}))


def test_no_solution_says_what_to_change() -> None:
    table = pa.table({"age": [30, 31, 32, 33], "d": ["a", "a", "a", "b"]})
    cfg = parse_config(
        {"quasi_identifiers": {"age": None}, "sensitive": ["d"], "privacy": {"k": 2, "l": 3}}
    )
    with pytest.raises(InvalidInputError, match="no transformation satisfies"):
        deidentify(table, cfg)


def test_bad_config_names_the_field() -> None:
    with pytest.raises(InvalidInputError, match="suppression_limit"):
        parse_config({"quasi_identifiers": {"a": None}, "suppression_limit": 2})
    with pytest.raises(InvalidInputError, match="sensitive attribute"):
        parse_config({"quasi_identifiers": {"a": None}, "privacy": {"l": 2}})


def test_mondrian_keeps_k_and_loses_less_than_full_domain(adult) -> None:  # type: ignore[no-untyped-def]
    sub = adult.slice(0, 2000)
    released, local = deidentify(sub, parse_config(_adult_config(algorithm="mondrian")))
    _, full = deidentify(sub, parse_config(_adult_config()))
    sizes = (
        released.group_by(ADULT_QIS[:5])
        .aggregate([([], "count_all")])
        .column("count_all")
        .to_numpy()
    )
    assert sizes.min() >= 5 and local["suppressed_rows"] == 0
    assert local["discernibility"] <= full["discernibility"]


def test_prepare_scrubs_pseudonymises_enriches_and_adds_noise() -> None:
    table = pa.table(
        {
            "name": ["Ann", "Bob", "Cy", "Di"],
            "customer": ["C1", "C2", "C1", "C3"],
            "company": ["X", "Y", "X", "Y"],
            "income": [10.0, 20.0, 30.0, 40.0],
            "age": [31, 33, 35, 37],
        }
    )
    ref = pa.table({"company": ["X", "Y"], "sector": ["retail", "retail"], "region": ["N", "N"]})
    cfg = parse_config(
        {
            "quasi_identifiers": {"age": {"intervals": [10]}, "sector": {"flat": True}},
            "keep": ["customer", "income"],
            "privacy": {"k": 2},
            "prepare": {
                "scrub": ["name"],
                "pseudonymise": ["customer"],
                "enrich": [
                    {"column": "company", "reference": "ref", "columns": ["sector", "region"]}
                ],
                "noise": {"income": {"epsilon": 1.0, "lower": 0, "upper": 50}},
            },
        }
    )
    key = b"k" * 32
    out, report = deidentify(table, cfg, references={"ref": ref}, pseudonym_key=key)
    assert "name" not in out.column_names and "company" not in out.column_names
    assert {"sector", "region"} <= set(out.column_names)
    tokens = out.column("customer").to_pylist()
    assert tokens[0] == tokens[2] == token(key, "C1") != tokens[1]
    assert "C1" not in tokens and token(b"z" * 32, "C1") != token(key, "C1")
    assert out.column("income").to_pylist() != [10.0, 20.0, 30.0, 40.0]
    assert report["prepare"]["noise"]["income"]["scale"] == 50.0
    with pytest.raises(InvalidInputError, match="secret key"):
        deidentify(table, cfg, references={"ref": ref})
    missing = pa.table({"company": ["X"], "sector": ["r"], "region": ["N"]})
    with pytest.raises(InvalidInputError, match="1 row\\(s\\) of column 'company' have no match"):
        deidentify(table.slice(1, 1), cfg, references={"ref": missing}, pseudonym_key=key)


def test_noise_has_the_stated_laplace_scale() -> None:
    # mean absolute deviation of Laplace(b) is b; with 4000 draws its sd is b/sqrt(4000),
    # so 7 sd (false-positive rate < 1e-6) is a safe critical value.
    n = 4000
    table = pa.table({"x": np.full(n, 50.0), "age": np.arange(n) % 40})
    cfg = parse_config(
        {
            "quasi_identifiers": {"age": None},
            "keep": ["x"],
            "privacy": {"k": 1},
            "prepare": {"noise": {"x": {"epsilon": 2.0, "lower": 0, "upper": 100}}},
        }
    )
    out, _ = deidentify(table, cfg)
    deviations = np.abs(out.column("x").to_numpy() - 50.0)
    assert abs(deviations.mean() - 50.0) < 7 * 50.0 / np.sqrt(n)


def test_risk_report_with_a_population() -> None:
    report = risk_report(np.array([1, 2, 5]), threshold=0.4, population=np.array([4, 2, 50]))
    assert report["prosecutor"]["highest_risk"] == 1.0
    assert report["journalist"]["highest_risk"] == 0.5
    assert report["prosecutor"]["records_at_risk"] == pytest.approx(3 / 8)
    assert report["journalist"]["records_at_risk"] == pytest.approx(2 / 8)
    assert report["marketer"]["expected_reidentified"] == pytest.approx(
        (1 / 4 + 2 / 2 + 5 / 50) / 8
    )
    assert report["sample_uniqueness"] == pytest.approx(1 / 8)


def test_pseudonyms_match_the_linking_modules_tokens() -> None:
    linking = pytest.importorskip("collabzone.techniques.linking")
    key = bytes(range(32))
    expected = linking.hmac_tokens(linking.LinkKey(3, key), pa.array(["a@b.com"])).to_pylist()
    assert [token(key, " A@B.com ", version=3)] == expected


def test_mondrian_respects_l_diversity(adult) -> None:  # type: ignore[no-untyped-def]
    sub = adult.slice(0, 1500)
    cfg = parse_config(
        _adult_config(algorithm="mondrian", sensitive=["occupation"], privacy={"k": 4, "l": 3})
    )
    released, report = deidentify(sub, cfg)
    groups = released.group_by(ADULT_QIS[:5]).aggregate([("occupation", "count_distinct")])
    assert min(groups.column("occupation_count_distinct").to_pylist()) >= 3
    assert report["privacy"]["l_distinct"]["occupation"] >= 3


def test_journalist_risk_uses_the_population(adult) -> None:  # type: ignore[no-untyped-def]
    sample = adult.slice(0, 1000)
    cfg = parse_config(_adult_config())
    _, alone = deidentify(sample, cfg)
    _, with_pop = deidentify(sample, cfg, population=adult)
    after, after_pop = alone["risk"]["after"], with_pop["risk"]["after"]
    assert after["journalist"] == after["prosecutor"]
    assert after_pop["journalist"]["average_risk"] < after_pop["prosecutor"]["average_risk"]
    assert after_pop["population_model"] == "population table"
