"""Attacks an ML party would send, and the refusal or noise that must come back.

Pairwise variants (one record more or less, a sliding window, a moved group member, a
moved threshold, a flipped prediction) and the per-submission checks; combinations of
three or more answers and magnified scores are in test_validator_combinations.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collabzone.model import RequestStatus
from tests.conftest import Parties
from tests.validator.validator_support import World, make_world


def _codes(world: World, request_id: str) -> str:
    return " ".join(world.ml.request(request_id).reasons)


def _history_size(world: World) -> int:
    probe = world.submit(range(200))  # a waiting job: its context shows the monitor history
    return len(world.owner.job_context(probe.id)["history"]["labels"])


@pytest.fixture
def world(sqlite_zone: Parties, tmp_path: Path) -> World:
    return make_world(sqlite_zone, tmp_path)


def test_two_submissions_differing_in_one_record_are_refused(world: World) -> None:
    first = world.validate(range(300))
    assert first.status is RequestStatus.RELEASED
    second = world.validate(range(301))  # the same set plus one record
    assert second.status is RequestStatus.REFUSED
    assert "DIFFERENCING" in _codes(world, second.id)
    third = world.validate(range(299))  # the same set minus one record
    assert "DIFFERENCING" in _codes(world, third.id)
    grown = world.validate(range(330))  # 30 more overall, but only ~3 more in each band
    assert "DIFFERENCING" in _codes(world, grown.id)
    sliding = world.validate(range(1, 301))  # a window moved by one record
    assert "DIFFERENCING" in _codes(world, sliding.id)
    other = world.validate(range(300, 600))  # a disjoint set differs in every cell
    assert other.status is RequestStatus.RELEASED, other.reasons


def test_threshold_moved_past_a_few_records_is_differencing(world: World) -> None:
    assert world.validate(range(300), threshold=0.5).status is RequestStatus.RELEASED
    scores = world.scores[:300]
    between = np.sort(scores[scores >= 0.5])[:3]  # a threshold just above three records
    attack = world.validate(range(300), threshold=float(between[-1]) + 1e-6)
    assert attack.status is RequestStatus.REFUSED and "DIFFERENCING" in _codes(world, attack.id)


def test_threshold_isolating_one_record_is_refused(world: World) -> None:
    top = float(np.sort(world.scores[:300])[-1])
    attack = world.validate(range(300), threshold=top - 1e-6)  # one record predicted positive
    assert "SPLIT_TOO_SMALL" in _codes(world, attack.id)


def test_changing_one_prediction_is_differencing(world: World) -> None:
    assert world.validate(range(300)).status is RequestStatus.RELEASED
    flipped = world.scores.copy()
    flipped[17] = 1.0 - flipped[17]  # would reveal record 17's label through accuracy
    attack = world.validate(range(300), scores=flipped)
    assert attack.status is RequestStatus.REFUSED and "DIFFERENCING" in _codes(world, attack.id)


def test_moving_one_record_between_groups_is_differencing(world: World) -> None:
    groups = np.where(np.arange(300) < 150, "a", "b")
    assert world.validate(range(300), groups=groups).status is RequestStatus.RELEASED
    moved = groups.copy()
    moved[0] = "b"
    attack = world.validate(range(300), groups=moved)
    assert "DIFFERENCING" in _codes(world, attack.id)


def test_group_that_is_a_band_plus_one_record_is_not_released_apart(world: World) -> None:
    # group "g" = 40 records scored 0.95 (alone in the top band) + the target scored 0.55:
    # the group's metrics minus the band's calibration would isolate the target's label.
    # Bands are cut so that no group's share of a band is small: the target's band reaches
    # up to the 40, so no released set tells the target apart from them.
    scores = np.minimum(world.scores, 0.85)
    scores[:40] = 0.95
    scores[40] = 0.55
    groups = np.where(np.arange(300) <= 40, "g", "rest")
    final = world.validate(range(300), groups=groups, scores=scores)
    assert final.status is RequestStatus.RELEASED, final.reasons
    bands = world.ml.result(final.id).payload["calibration"]
    top = next(b for b in bands if b["band"][0] <= 0.95 <= b["band"][1])
    assert top["band"][0] <= 0.55
    # a second file that holds the 40 without the target would separate them: refused
    attack = world.validate(np.r_[np.arange(40), np.arange(300, 360)], scores=scores)
    assert "DIFFERENCING" in _codes(world, attack.id)


def test_one_record_submission_is_refused(world: World) -> None:
    attack = world.validate([5])
    assert attack.status is RequestStatus.REFUSED and "TOO_FEW_RECORDS" in _codes(world, attack.id)


def test_group_of_one_is_refused(world: World) -> None:
    groups = np.where(np.arange(300) == 0, "target", "everyone else")
    attack = world.validate(range(300), groups=groups)
    assert attack.status is RequestStatus.REFUSED and "GROUP_TOO_SMALL" in _codes(world, attack.id)


def test_refused_submissions_are_not_remembered(world: World) -> None:
    world.validate([5])
    world.validate(range(300), groups=np.where(np.arange(300) == 0, "t", "u"))
    assert _history_size(world) == 0


def test_cap_per_period(sqlite_zone: Parties, tmp_path: Path) -> None:
    world = make_world(sqlite_zone, tmp_path, {"max_submissions": 2, "submission_period": "day"})
    assert world.validate(range(100)).status is RequestStatus.RELEASED
    assert world.validate(range(200, 300)).status is RequestStatus.RELEASED
    third = world.validate(range(400, 500))
    assert third.status is RequestStatus.REFUSED and "RATE_LIMIT" in _codes(world, third.id)


def test_repeated_identical_dp_submissions_replay_the_same_noise(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    world = make_world(sqlite_zone, tmp_path, {"epsilon_budget": 1.0, "dp_required": True}, n=900)
    answers = []
    for _ in range(4):  # averaging four answers would shrink the noise; it must not be fresh
        final = world.validate(range(300), epsilon=0.5)
        assert final.status is RequestStatus.RELEASED, final.reasons
        answers.append(world.ml.result(final.id))
    accuracies = {a.payload["overall"]["accuracy"] for a in answers}
    assert len(accuracies) == 1
    assert answers[0].receipt.budget_spent["labels"]["epsilon"] == 0.5
    assert all(a.receipt.budget_spent == {} and a.payload["replayed"] for a in answers[1:])
    # a *different* submission gets fresh noise and is charged, until the budget is gone
    assert world.validate(range(300, 600), epsilon=0.5).status is RequestStatus.RELEASED
    exhausted = world.validate(range(600, 900), epsilon=0.5)
    assert exhausted.status is RequestStatus.REFUSED
    assert "BUDGET_EXHAUSTED" in _codes(world, exhausted.id)


def test_repeats_can_be_refused_by_the_agreement(sqlite_zone: Parties, tmp_path: Path) -> None:
    world = make_world(sqlite_zone, tmp_path, {"on_repeat": "refuse"})
    assert world.validate(range(300)).status is RequestStatus.RELEASED
    again = world.validate(range(300))
    assert again.status is RequestStatus.REFUSED and "REPEATED" in _codes(world, again.id)


def test_node_with_a_new_monitor_key_refuses_instead_of_forgetting(world: World) -> None:
    from collabzone.node import NodeAgent

    assert world.validate(range(300)).status is RequestStatus.RELEASED
    world.node = NodeAgent(world.owner, {"labels": world.labels_path})  # keyring lost
    attack = world.validate(range(301))
    assert "MONITOR_KEY_CHANGED" in _codes(world, attack.id)
