"""The console views of look-alike and sealed releases draw only the reader's own part."""

from __future__ import annotations

from collabzone.techniques.lookalike import Lookalike
from collabzone.techniques.sealed import Sealed
from collabzone.techniques.view import MAX_TABLE_ROWS

COMMON = {"model": "logistic_regression", "audience_size": 70}
BANK = {**COMMON, "quality": {"auc": 0.71, "lift_top_decile": 2.4}, "delivery_rate": 0.5}
PARTNER = {**COMMON, "match_key": "email",
           "audience": {"columns": ["token"], "rows": [[f"v1:{i:012x}"] for i in range(70)]}}  # fmt: skip


def test_bank_reads_size_quality_and_delivery_facts_only() -> None:
    view = Lookalike().result_view(BANK)
    facts = dict(view.facts)
    assert facts["Audience size"] == "70" and facts["AUC (held-out overlap)"] == "0.71"
    assert facts["Lift in the top decile"] == "2.4" and "rate 0.5" in facts["Delivery"]
    assert "rounded" in facts["Quality protection"] and not view.tables
    noisy = dict(Lookalike().result_view({**BANK, "quality_epsilon": 0.5}).facts)
    assert "Laplace noise at epsilon 0.5" in noisy["Quality protection"]
    withheld = dict(Lookalike().result_view({**BANK, "quality": {"auc": None}}).facts)
    assert withheld["AUC (held-out overlap)"].startswith("withheld")


def test_partner_reads_its_audience_cut_to_the_page_limit() -> None:
    view = Lookalike().result_view(PARTNER)
    (table,) = view.tables
    assert table.columns == ("token",) and len(table.rows) == MAX_TABLE_ROWS
    assert table.more == 70 - MAX_TABLE_ROWS and table.rows[0] == ("v1:000000000000",)
    assert not any("AUC" in label for label, _ in view.facts)


def test_sealed_views_show_hash_and_own_outputs_never_more() -> None:
    common = {"module": "bank_rules", "code_sha256": "ab" * 32}
    requester = dict(Sealed().result_view({**common, "count": None}).facts)
    assert requester["Code SHA-256"] == "ab" * 32
    assert requester["Rows delivered"].startswith("withheld")
    rows = {"columns": ["token"], "rows": [["v1:1"], ["v1:2"]]}
    recipient = Sealed().result_view({**common, "rows": rows})
    assert dict(recipient.facts)["Rows delivered to you"] == "2"
    assert recipient.tables[0].rows == (("v1:1",), ("v1:2",))
