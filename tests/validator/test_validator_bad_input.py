"""Bad submissions get a clear error that echoes no token or value; nothing is remembered."""

from __future__ import annotations

from pathlib import Path

import pytest

from collabzone.errors import InvalidInputError
from collabzone.model import RequestStatus
from collabzone.techniques.validator import Submission, check_submission, read_submission
from tests.conftest import Parties
from tests.validator.validator_support import World, make_world


@pytest.fixture
def world(sqlite_zone: Parties, tmp_path: Path) -> World:
    return make_world(sqlite_zone, tmp_path)


def _spec_with(world: World, tokens: list[str], scores: list[float]) -> dict[str, object]:
    return {
        "dataset": "labels",
        "positive_label": ">50K",
        "predictions": {"tokens": tokens, "predictions": scores},
    }


def _history(world: World) -> int:
    probe = world.submit(range(100))
    return len(world.owner.job_context(probe.id)["history"]["labels"])


def test_tokens_not_in_the_owners_data(world: World) -> None:
    tokens = world.tokens[:200] + ["secret-token-of-nobody"] * 0 + ["forged-1", "forged-2"]
    scores = [0.5] * len(tokens)
    request = world.ml.submit("validator", _spec_with(world, tokens, scores), "model validation")
    world.node.run_once()
    final = world.ml.request(request.id)  # type: ignore[union-attr]
    assert final.status is RequestStatus.REFUSED
    reasons = " ".join(final.reasons)
    assert "2 submitted token(s) are not in 'labels'" in reasons and "forged" not in reasons
    assert _history(world) == 0


@pytest.mark.parametrize(
    ("tokens", "scores", "message"),
    [
        (["a", "b"], [0.2, 1.5], "outside [0, 1]"),
        (["a", "b"], [0.2, -0.1], "outside [0, 1]"),
        (["a", "a"], [0.2, 0.3], "more than once"),
        ([], [], "empty"),
        (["a", "b"], [0.2, float("nan")], "NaN"),
        (["a", "b"], [0.2], "same length"),
    ],
)
def test_malformed_predictions_are_refused_at_plan_time(
    world: World, tokens: list[str], scores: list[float], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_submission({"tokens": tokens, "predictions": scores}, "binary")
    request = world.ml.submit("validator", _spec_with(world, tokens, scores), "model validation")
    assert request.status is RequestStatus.REFUSED  # type: ignore[union-attr]
    assert "INVALID_INPUT" in " ".join(request.reasons)  # type: ignore[union-attr]
    assert world.owner.jobs() == []
    assert _history(world) == 0


def test_error_messages_do_not_echo_values(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("token,score\nalice-token,0.2\nalice-token,0.9\n", encoding="utf-8")
    with pytest.raises(InvalidInputError) as caught:
        read_submission(path, "binary")
    assert "alice" not in str(caught.value) and "1 token(s)" in str(caught.value)
    path.write_text("token,score\nbob,7.25\n", encoding="utf-8")
    with pytest.raises(InvalidInputError) as caught:
        read_submission(path, "binary")
    assert "7.25" not in str(caught.value) and "bob" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("token,score\n", "empty"),
        ("score\n0.5\n", "`token` column"),
        ("token,guess\nx,0.5\n", "prediction column"),
        ("token,score\nx,\n", "missing"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message):
        read_submission(path, "binary")


def test_file_round_trip_with_groups(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("token,label,group\nx,1,a\ny,0,b\n", encoding="utf-8")
    assert read_submission(path, "binary") == Submission(("x", "y"), (1.0, 0.0), ("a", "b"))
    with pytest.raises(InvalidInputError, match="no predictions file"):
        read_submission(tmp_path / "missing.csv", "binary")
