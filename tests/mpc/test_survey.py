"""Surveys as zone requests: opened on approval, answered once per invitation, tallied in MPC.

The browser's split and seal are simulated here with their Python twins
(``_survey.split_answers``, ``_survey.seal``); tests/mpc/test_survey_browser.py drives
the real page in Chromium. One server with threshold 0 (in-process MPyC) stands in for
the three servers in the lifecycle test, three shares at threshold 1 everywhere else.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.errors import ConflictError, InvalidInputError, NotAuthorisedError
from collabzone.model import Request, RequestStatus
from collabzone.techniques import registry
from collabzone.techniques.mpc import (
    InProcessDriver,
    ProcessDriver,
    ShareStore,
    Survey,
    SurveyBox,
    SurveyDriver,
    SurveySpec,
    open_survey,
    publish_server_key,
)
from collabzone.techniques.mpc._shares import field, frac_length, recombine
from collabzone.techniques.mpc._survey import one_hot, seal, split_answers
from collabzone.techniques.mpc._survey_box import open_inbox
from tests.conftest import Parties

PURPOSE = "member satisfaction"
POPULATION = {"columns": [{"name": "member", "type": "string", "class": "join_key"}]}
QUESTIONS = [
    {"text": "How satisfied are you?", "answers": ["1", "2", "3", "4", "5"]},
    {"text": "Would you recommend us?", "answers": ["yes", "no"]},
]


def survey_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "title": "Members 2026", "questions": QUESTIONS, "recipient": "bank",
        "dataset": "members", "servers": ["s0"], "threshold": 0, "invitations": 8,
        "min_respondents": 3,
    }  # fmt: skip
    spec.update(changes)
    return spec


def answer(box: SurveyBox, token: str, choices: list[int]) -> None:
    """What the respondent's browser does, in Python."""
    doc = box.document()
    spec = box.spec()
    parts = split_answers(one_hot(spec, choices), len(doc["keys"]), spec.threshold)
    box.answer(token, [seal(k, parts[i], box.id, i) for i, k in enumerate(doc["keys"])])


@dataclass
class World:
    parties: Parties
    root: Path
    store: ShareStore


@pytest.fixture
def world(sqlite_zone: Parties, tmp_path: Path, master_key: str) -> Iterator[World]:
    """Partner owns the population ``members``; bank organises and receives; s0 computes."""
    sqlite_zone.operator.add_party("s0", ["compute"])
    store = ShareStore(tmp_path / "s0", master_key)
    root = tmp_path / "surveys"
    publish_server_key(root, "s0", store.inbox_public())
    driver = SurveyDriver([store], InProcessDriver(store, tmp_path / "outbox"))
    registry.register("survey", Survey(root, driver))
    sqlite_zone.partner.register_dataset("members", POPULATION, row_count=50)
    yield World(sqlite_zone, root, store)
    registry.register("survey", "collabzone.techniques.mpc:Survey")


def _agree(parties: Parties, **rules: Any) -> None:
    parties.partner.add_agreement(
        "members", grantees=["bank"], technique="survey", purposes=[PURPOSE],
        rules={"recipients": ["bank"], "min_group_size": 3, **rules},
    )  # fmt: skip


def _submit(world: World, spec: dict[str, Any]) -> Request:
    request = world.parties.bank.submit("survey", spec, PURPOSE)
    assert isinstance(request, Request)
    return request


def test_survey_lifecycle_counts_reach_the_recipient_only(world: World) -> None:
    _agree(world.parties)
    opened = _submit(world, survey_spec())
    assert opened.status is RequestStatus.RELEASED, opened.reasons
    payload = world.parties.bank.result(opened.id).payload
    assert "invitation_links" not in payload  # the organiser learns no invitation
    links = world.parties.partner.result(opened.id).payload["invitation_links"]
    assert len(links) == 8 and all(link.startswith(payload["page"] + "#") for link in links)
    box = SurveyBox(world.root, payload["survey"])
    tokens = [link.split("#", 1)[1] for link in links]
    choices = [[4, 0], [4, 1], [2, 0], [0, 0]]
    for token, chosen in zip(tokens, choices, strict=False):
        answer(box, token, chosen)
    assert box.status() == {"answered": 4, "unused": 4}

    report = _submit(world, {"close": box.id})
    assert report.status is RequestStatus.RELEASED, report.reasons
    release = world.parties.bank.result(report.id)
    assert release.payload["respondents"] == 4
    assert any("did not see" in note for note in release.receipt.notes)
    result = open_survey(release.payload, box.spec(), "bank")
    first, second = result["questions"]
    assert first["counts"] == {"1": 1, "2": 0, "3": 1, "4": 0, "5": 2}
    assert first["mean"] == pytest.approx((5 + 5 + 3 + 1) / 4)
    assert second["counts"] == {"yes": 3, "no": 1} and "mean" not in second
    # closed: no more answers
    with pytest.raises(ConflictError, match="closed"):
        answer(box, tokens[5], [0, 0])


def test_dp_noise_on_survey_counts_is_drawn_inside_mpc_and_debited(world: World) -> None:
    """The counts the recipient opens carry binomial noise no server knows (drawn inside
    MPC before the output shares leave), and the population's ledger pays for it."""
    _agree(world.parties, epsilon_budget=5.0, delta_budget=1e-4, max_epsilon_per_request=4.0)
    opened = _submit(world, survey_spec())
    links = world.parties.partner.result(opened.id).payload["invitation_links"]
    box = SurveyBox(world.root, world.parties.bank.result(opened.id).payload["survey"])
    for link, chosen in zip(links, [[4, 0], [4, 1], [2, 0], [0, 0]], strict=False):
        answer(box, link.split("#", 1)[1], chosen)
    too_much = _submit(world, {"close": box.id, "epsilon": 4.5})
    assert too_much.status is RequestStatus.REFUSED and not box.closed
    report = _submit(world, {"close": box.id, "epsilon": 4.0})
    assert report.status is RequestStatus.RELEASED, report.reasons
    release = world.parties.bank.result(report.id)
    assert release.receipt.budget_spent["members"]["epsilon"] == 4.0
    assert release.receipt.budget_spent["members"]["delta"] == pytest.approx(1e-6)
    assert release.receipt.mechanism is not None and "inside MPC" in release.receipt.mechanism
    assert release.payload["epsilon"] == 4.0
    result = open_survey(release.payload, box.spec(), "bank")
    noisy = [c for q in result["questions"] for c in q["counts"].values()]
    exact = [1, 0, 1, 0, 2, 3, 1]
    # 7 counts, epsilon 4/7 each: about 3,200 coins, noise sd about 28 per count
    assert noisy != exact
    assert all(abs(a - b) < 8 * 28 for a, b in zip(noisy, exact, strict=True))


def test_an_invitation_answers_once_and_is_not_linked_to_its_answer(world: World) -> None:
    _agree(world.parties)
    opened = _submit(world, survey_spec())
    links = world.parties.partner.result(opened.id).payload["invitation_links"]
    box = SurveyBox(world.root, world.parties.bank.result(opened.id).payload["survey"])
    tokens = [link.split("#", 1)[1] for link in links]
    answer(box, tokens[0], [0, 0])
    with pytest.raises(NotAuthorisedError, match="already used"):
        answer(box, tokens[0], [1, 1])
    with pytest.raises(NotAuthorisedError):
        answer(box, "made-up", [1, 1])
    answer(box, tokens[1], [1, 1])
    stored = (box.path / "tokens.bin").read_bytes()
    assert tokens[0].encode() not in stored  # hashes only, sorted: no order of invitation
    digests = [stored[i : i + 32] for i in range(0, len(stored), 32)]
    assert digests == sorted(digests) and len(digests) == 8
    # the used flags follow the sorted hashes, not the order of use
    flags = (box.path / "used.bin").read_bytes()
    spent = {hashlib.sha256(t.encode()).digest() for t in tokens[:2]}
    assert [d in spent for d in digests] == [f == 1 for f in flags]
    used = [d.hex() for d in digests]
    files = sorted((box.path / "inbox" / "0").glob("*.json"))
    assert len(files) == 2 and {f.stat().st_mtime for f in files} == {0}  # no time of answer
    # the answer files' names say nothing of the invitations
    for name in (f.stem for f in files):
        assert all(name not in t and name not in h for t in tokens for h in used)


def test_survey_refusals(world: World) -> None:
    _agree(world.parties)
    low = _submit(world, survey_spec(min_respondents=2))
    assert low.status is RequestStatus.REFUSED
    assert any(r.startswith("GROUP_TOO_SMALL") for r in low.reasons), low.reasons
    other = _submit(world, survey_spec(recipient="partner"))
    assert other.status is RequestStatus.REFUSED
    assert any(r.startswith("RECIPIENT_NOT_GRANTED") for r in other.reasons), other.reasons
    for changes, words in (({"servers": ["bank"]}, "compute"), ({"invitations": 51}, "population")):
        try:
            bad = _submit(world, survey_spec(**changes))
        except InvalidInputError as error:
            assert words in error.message
        else:
            assert bad.status is not RequestStatus.RELEASED
            assert any(words in r for r in bad.reasons), bad.reasons
    opened = _submit(world, survey_spec())
    survey = world.parties.bank.result(opened.id).payload["survey"]
    early = _submit(world, {"close": survey})  # nobody answered yet
    assert early.status is not RequestStatus.RELEASED
    assert not SurveyBox(world.root, survey).closed


@settings(max_examples=25, deadline=None)
@given(
    choices=st.lists(st.integers(0, 4), min_size=1, max_size=6),
    pick=st.sampled_from([(0, 1), (0, 2), (1, 2)]),
)
def test_one_server_share_is_not_the_answer_and_two_reconstruct(
    choices: list[int], pick: tuple[int, int]
) -> None:
    spec = SurveySpec.from_json(
        survey_spec(
            questions=[{"text": f"q{i}", "answers": list("abcde")} for i in range(len(choices))],
            servers=["s0", "s1", "s2"], threshold=1,
        )
    )  # fmt: skip
    vector = one_hot(spec, choices)
    parts = split_answers(vector, 3, 1)
    one = 1 << frac_length()
    for share in parts:
        assert not set(share) <= {0, one}
    assert recombine({i: parts[i] for i in pick}, 1) == vector


def test_a_server_opens_only_its_own_inbox(tmp_path: Path, master_key: str) -> None:
    stores = [ShareStore(tmp_path / f"s{i}", master_key) for i in range(3)]
    for i, store in enumerate(stores):
        publish_server_key(tmp_path / "surveys", f"s{i}", store.inbox_public())
    spec = SurveySpec.from_json(survey_spec(servers=["s0", "s1", "s2"], threshold=1))
    box, tokens = SurveyBox.create(tmp_path / "surveys", spec)
    answer(box, tokens[0], [3, 1])
    width = len(spec.columns())
    # server 1's key opens nothing in server 0's inbox (nor does the zone, holding no key)
    assert open_inbox(box.inbox(0), stores[1].inbox_key(), box.id, 0, width) == {}
    # server 0's shares replayed as if addressed to server 1 do not open either
    assert open_inbox(box.inbox(0), stores[0].inbox_key(), box.id, 1, width) == {}
    mine = open_inbox(box.inbox(0), stores[0].inbox_key(), box.id, 0, width)
    assert len(mine) == 1 and all(0 <= v < int(field().modulus) for v in next(iter(mine.values())))


def test_racing_answers_with_one_invitation_store_one(tmp_path: Path, master_key: str) -> None:
    store = ShareStore(tmp_path / "s0", master_key)
    publish_server_key(tmp_path / "surveys", "s0", store.inbox_public())
    box, tokens = SurveyBox.create(tmp_path / "surveys", SurveySpec.from_json(survey_spec()))
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            answer(box, tokens[0], [0, 0])
            outcomes.append("stored")
        except NotAuthorisedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["stored"]
    assert len(box.inbox(0)) == 1 and box.status() == {"answered": 1, "unused": 7}


def _post_vector(box: SurveyBox, token: str, vector: list[int]) -> None:
    """A respondent's own script posting any vector it likes, split and sealed properly."""
    doc, spec = box.document(), box.spec()
    parts = split_answers(
        [v % int(field().modulus) for v in vector], len(doc["keys"]), spec.threshold
    )
    box.answer(token, [seal(k, parts[i], box.id, i) for i, k in enumerate(doc["keys"])])


def test_malformed_answers_are_left_out_inside_mpc(world: World) -> None:
    """Ballot stuffing (5 on one answer), two choices, a negative entry, no choice: dropped
    by the servers' check in MPC; the counts are those of the well-formed answers."""
    _agree(world.parties)
    opened = _submit(world, survey_spec())
    links = world.parties.partner.result(opened.id).payload["invitation_links"]
    box = SurveyBox(world.root, world.parties.bank.result(opened.id).payload["survey"])
    tokens = [link.split("#", 1)[1] for link in links]
    for token, chosen in zip(tokens, [[4, 0], [4, 1], [2, 0]], strict=False):
        answer(box, token, chosen)
    one = 1 << frac_length()
    _post_vector(box, tokens[3], [0, 0, 0, 0, 5 * one, one, 0])  # stuffing
    _post_vector(box, tokens[4], [one, 0, 0, 0, one, one, 0])  # two choices
    _post_vector(box, tokens[5], [2 * one, -one, 0, 0, 0, 0, one])  # sums to one, not 0/1
    _post_vector(box, tokens[6], [0, 0, 0, 0, 0, one, 0])  # no choice on question 1
    report = _submit(world, {"close": box.id})
    assert report.status is RequestStatus.RELEASED, report.reasons
    result = open_survey(world.parties.bank.result(report.id).payload, box.spec(), "bank")
    assert result["respondents"] == 3
    first, second = result["questions"]
    assert first["counts"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 2}
    assert second["counts"] == {"yes": 2, "no": 1}


@pytest.mark.slow
def test_three_servers_leave_out_malformed_answers(
    sqlite_zone: Parties, tmp_path: Path, master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check in MPC with three real server processes (threshold 1, degree reduction)."""
    monkeypatch.setenv("COLLABZONE_MASTER_KEY", master_key)
    stores = [ShareStore(tmp_path / f"s{i}", master_key) for i in range(3)]
    root = tmp_path / "surveys"
    for i, store in enumerate(stores):
        sqlite_zone.operator.add_party(f"s{i}", ["compute"])
        publish_server_key(root, f"s{i}", store.inbox_public())
    driver = SurveyDriver(stores, ProcessDriver([s.root for s in stores], tmp_path / "outbox"))
    registry.register("survey", Survey(root, driver))
    try:
        world = World(sqlite_zone, root, stores[0])
        sqlite_zone.partner.register_dataset("members", POPULATION, row_count=50)
        _agree(sqlite_zone)
        opened = _submit(world, survey_spec(servers=["s0", "s1", "s2"], threshold=1))
        links = sqlite_zone.partner.result(opened.id).payload["invitation_links"]
        box = SurveyBox(root, sqlite_zone.bank.result(opened.id).payload["survey"])
        tokens = [link.split("#", 1)[1] for link in links]
        for token, chosen in zip(tokens, [[4, 0], [4, 1], [2, 0]], strict=False):
            answer(box, token, chosen)
        one = 1 << frac_length()
        _post_vector(box, tokens[3], [0, 0, 0, 0, 5 * one, one, 0])
        _post_vector(box, tokens[4], [2 * one, -one, 0, 0, 0, 0, one])
        report = _submit(world, {"close": box.id})
        assert report.status is RequestStatus.RELEASED, report.reasons
        result = open_survey(sqlite_zone.bank.result(report.id).payload, box.spec(), "bank")
        assert result["respondents"] == 3
        assert result["questions"][0]["counts"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 2}
        assert result["questions"][1]["counts"] == {"yes": 2, "no": 1}
    finally:
        registry.register("survey", "collabzone.techniques.mpc:Survey")
