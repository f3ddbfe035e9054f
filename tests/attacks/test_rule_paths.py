"""Issue 20's broken rule paths, kept as attacks (``rule_paths``) and run on a real zone.

Three providers in one embedded zone: the bank (the attacker: it also asks), the shop
(the partner whose people leak) and an insurer (a third party). Every agreement allows
aggregation, lists and templates, lists only ``token`` to the bank and the insurer, and
matches on ``pid`` only; the bank's agreement defines a template reading the shop's
``spend``, which the shop never approved. Each attack must be refused with the rule's
code and every request must end in a terminal state (issue 20 found one left in
``submitted``). Against a target that releases everything, each attack isolates people:
a refusal on the zone then means the rule held.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collabzone.attacks import (
    Answer,
    AttackResult,
    Question,
    SpecQuestion,
    TableTruth,
    ZoneTarget,
    judge,
    list_self_join,
    list_unlisted_key,
    template_cross_owner,
)
from collabzone.attacks._target import from_payload
from collabzone.model import RequestStatus
from collabzone.zone import Zone, init

PURPOSE = "marketing"
MIN = 5
TERMINAL = {RequestStatus.RELEASED, RequestStatus.REFUSED, RequestStatus.FAILED}
REPORT = {
    "sql": "SELECT b.segment, MAX(s.spend) AS top, COUNT(*) AS n FROM bank b JOIN shop s "
    "ON b.pid = s.pid WHERE s.spend >= :floor GROUP BY b.segment",
    "params": {"floor": {"type": "float", "min": 0, "max": 500}},
}
RIVAL = {**REPORT, "sql": str(REPORT["sql"]).replace("MAX(s.spend)", "MIN(s.spend)")}
RULES: dict[str, Any] = {"analysis": ["aggregation", "list", "template"], "min_group_size": MIN,
                         "list_recipients": ["bank", "insurer"], "list_columns": ["token"],
                         "join_keys": ["pid"]}  # fmt: skip
KEYS = [{"name": "pid", "type": "string", "class": "join_key"},
        {"name": "phone", "type": "string", "class": "join_key"}]  # fmt: skip


def _people(ids: range, **columns: Callable[[int], Any]) -> pa.Table:
    data: dict[str, list[Any]] = {"pid": [f"p{i:03d}" for i in ids],
                                  "phone": [f"+41{i:07d}" for i in ids]}  # fmt: skip
    for name, make in columns.items():
        data[name] = [make(i) for i in ids]
    return pa.table(data)


TABLES = {
    "bank": _people(range(0, 40), segment=lambda i: ["gold", "silver"][i % 2]),
    "shop": _people(
        range(20, 80),
        token=lambda i: f"t{i:03d}",
        spend=lambda i: 3.5 * i,
        shop_segment=lambda i: ["sport", "kids"][i % 2],
    ),
    "policy": _people(range(10, 70), ref=lambda i: f"r{i:03d}"),
}
SPECS = {
    "bank": [
        *KEYS,
        {"name": "segment", "type": "string", "class": "dimension", "domain": ["gold", "silver"]},
    ],
    "shop": [
        *KEYS,
        {"name": "token", "type": "string", "class": "other"},
        {"name": "spend", "type": "float", "class": "measure", "domain": {"min": 0, "max": 500}},
        {
            "name": "shop_segment",
            "type": "string",
            "class": "dimension",
            "domain": ["sport", "kids"],
        },
    ],
    "policy": [*KEYS, {"name": "ref", "type": "string", "class": "other"}],
}
OWNED = {"bank": "bank", "shop": "shop", "insurer": "policy"}
TEMPLATES = {
    "bank": {"report": REPORT, "rival": REPORT, "shared": REPORT},
    "shop": {"rival": RIVAL, "shared": REPORT},
    "insurer": {},
}


@pytest.fixture
def parties(tmp_path: Path) -> dict[str, Zone]:
    """The bank, the shop and the insurer, each sharing its dataset with the other two."""
    operator, _ = init(tmp_path / "zone")
    handles = {}
    for name in OWNED:
        _, token = operator.add_party(name, ["provider", "analyst"])
        handles[name] = operator.as_party(token)
    for owner, dataset in OWNED.items():
        path = tmp_path / f"{dataset}.parquet"
        pq.write_table(TABLES[dataset], path)
        handles[owner].add_dataset(dataset, path, {"columns": SPECS[dataset]})
        rules = {**RULES, "templates": TEMPLATES[owner]} if TEMPLATES[owner] else RULES
        others = [p for p in OWNED if p != owner]
        handles[owner].add_agreement(
            dataset, grantees=others, technique="sql", purposes=[PURPOSE], rules=rules
        )
    return handles


def attack_as(
    zone: Zone, attack: Callable[[ZoneTarget], AttackResult]
) -> tuple[AttackResult, list[Any]]:
    """Run ``attack`` as the party of ``zone``; the result and the requests it recorded,
    each of which must have reached a terminal state."""
    me = zone.me.name
    before = {r.id for r in zone.requests()}
    result = attack(ZoneTarget(zone, purpose=PURPOSE))
    new = [r for r in zone.requests() if r.id not in before and r.requester == me]
    assert len(new) == result.queries, result.notes  # every question was recorded
    assert {r.status for r in new} <= TERMINAL, [(r.status, r.reasons) for r in new]
    return result, new


def assert_all_refused(result: AttackResult, *codes: str) -> None:
    assert result.queries > 0 and result.refused == result.queries, result.notes
    assert result.released == 0 and not result.claims, result.notes
    for note in result.notes:  # one per question: "refused CODE, CODE: request"
        assert note.startswith("refused "), note
        assert set(codes) <= set(note.split(":", 1)[0][len("refused ") :].split(", ")), note


# -- the zone refuses every broken path ----------------------------------------------------


def test_a_list_of_the_partners_dataset_joined_with_itself_is_refused(
    parties: dict[str, Zone],
) -> None:
    result, _ = attack_as(
        parties["bank"],
        lambda t: list_self_join(t, "shop", "pid", "token", where="p.shop_segment = 'kids'"),
    )
    assert_all_refused(result, "SELF_JOIN", "LIST_NEEDS_OVERLAP")


@pytest.mark.parametrize("other", ["bank", "policy"])  # the requester's own, a third party's
def test_a_list_through_a_join_key_the_rule_does_not_name_is_refused(
    parties: dict[str, Zone], other: str
) -> None:
    result, _ = attack_as(
        parties["bank"], lambda t: list_unlisted_key(t, "shop", other, "phone", "token")
    )
    assert_all_refused(result, "JOIN_NOT_ALLOWED")


def test_the_same_list_through_the_named_key_is_released(parties: dict[str, Zone]) -> None:
    """The control: the attack's requests are well formed; on ``pid`` the overlap is
    listed, and every claim about it is right."""
    result, _ = attack_as(
        parties["bank"], lambda t: list_unlisted_key(t, "shop", "bank", "pid", "token")
    )
    assert result.released == result.queries == 2, result.notes
    assert {c.where for c in result.claims} == {f"token = 't{i:03d}'" for i in range(20, 40)}


@pytest.mark.parametrize(
    ("requester", "template", "codes"),
    [
        # a third party asks for the bank's template: the shop approved nothing
        ("insurer", "report", ({"TEMPLATE_NOT_APPROVED"},)),
        # the bank asks for its own template. The technique says TEMPLATE_NOT_APPROVED
        # (tests/sql/test_rules_every_path.py); through the zone the owner's own rules are
        # not passed to the check, so it is INVALID_INPUT ("no agreement shared with you
        # defines template 'report'"): refused either way
        ("bank", "report", ({"TEMPLATE_NOT_APPROVED"}, {"INVALID_INPUT"})),
        # the shop defines "rival" with MIN where the bank has MAX (the bank itself sees
        # only the shop's definition, which the shop approved: not a broken path)
        ("insurer", "rival", ({"INVALID_INPUT"},)),
    ],
)
def test_a_template_reading_another_owners_columns_is_refused(
    parties: dict[str, Zone], requester: str, template: str, codes: tuple[set[str], ...]
) -> None:
    result, requests = attack_as(
        parties[requester],
        lambda t: template_cross_owner(t, template, {"floor": 10.0}, reads={"top": "spend"}),
    )
    assert_all_refused(result)
    assert set(result.reasons) in codes, result.reasons
    if template == "rival":
        assert "differently" in " ".join(requests[0].reasons)


def test_a_template_both_owners_approved_runs(parties: dict[str, Zone]) -> None:
    """The control: the same body under a name both owners define is released."""
    result, _ = attack_as(
        parties["insurer"],
        lambda t: template_cross_owner(t, "shared", {"floor": 10.0}, reads={"top": "spend"}),
    )
    assert result.released == result.queries == 1, result.notes


# -- each attack does detect a leak --------------------------------------------------------


@dataclass
class OpenTarget:
    """Releases every answer exactly, templates included (the bodies it was given): what
    the broken paths did. Tests only."""

    tables: dict[str, pa.Table]
    templates: dict[str, str] = field(default_factory=dict)
    con: duckdb.DuckDBPyConnection = field(default_factory=duckdb.connect)

    def __post_init__(self) -> None:
        for name, table in self.tables.items():
            self.con.register(name, table)

    def ask(self, question: Question) -> Answer:
        started = time.perf_counter()
        sql = question.sql
        if isinstance(question, SpecQuestion) and question.template is not None:
            sql = self.templates[question.template]
            for name, value in question.params:
                sql = sql.replace(f":{name}", repr(value))
        cursor = self.con.execute(sql)
        columns = [d[0] for d in cursor.description]
        rows = [list(r) for r in cursor.fetchall()]
        payload = {"columns": columns, "rows": rows}
        return from_payload(payload, seconds=time.perf_counter() - started)


@pytest.fixture
def shop_truth() -> Iterator[TableTruth]:
    truth = TableTruth(TABLES["shop"], "shop", "pid")
    yield truth
    truth.close()


ATTACKS: dict[str, Callable[[OpenTarget], AttackResult]] = {
    "list_self_join": lambda t: list_self_join(t, "shop", "pid", "token"),
    "list_unlisted_key": lambda t: list_unlisted_key(t, "shop", "bank", "phone", "token"),
    "template_cross_owner": lambda t: template_cross_owner(
        t, "report", {"floor": 10.0}, reads={"top": "spend"}
    ),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_each_attack_reports_the_leak_on_a_target_that_releases_everything(
    name: str, shop_truth: TableTruth
) -> None:
    target = OpenTarget(dict(TABLES), {"report": str(REPORT["sql"])})
    try:
        result = ATTACKS[name](target)
    finally:
        target.con.close()
    assert result.attack == name
    assert result.released == result.queries > 0 and not result.reasons
    assert all(n.startswith("released") for n in result.notes), result.notes
    verdict = judge(result, shop_truth, min_group_size=MIN)
    assert verdict.claims > 0 and verdict.correct_claims == verdict.claims, verdict.summary()
    assert verdict.isolated > 0 and verdict.smallest == 1, verdict.summary()
    if name == "list_self_join":  # the shop's people the bank does not hold were listed
        assert f"token = 't{79:03d}'" in {c.where for c in result.claims}
