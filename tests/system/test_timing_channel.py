"""Channel 5 of issue 10: the response time of a suppressed answer must not reveal a person.

The attacker asks the same query of two zones that differ by one person (the victim, alone
in her segment, with many accounts; see timing_support.py), in lockstep rounds (one thread
each, so load on the machine falls on both alike), and compares the two response-time
distributions with a two-sample Kolmogorov-Smirnov test.

Both halves are sequential tests: they look at the evidence after a few numbers of rounds
and stop as soon as it is decisive, so a quiet machine spends far fewer rounds than the
fixed-size test did (500 rounds at 0.5 s each), with the same error rates:

* Control: without quantisation (``quantum = 0``, what the zone did before) the attack
  must tell the zones apart, or the test proves nothing. It stops at the first look where
  p < SIGNIFICANCE / len(CONTROL_LOOKS) (Bonferroni: a world without a signal passes the
  control at most 1 % of the time, as the fixed 150-round control did); its last look
  comes later than the fixed control's 150 rounds, so a loaded machine gets more rounds
  instead of a spurious "no signal".
* With the standard ladder (pacing.py) the attack must fail. At each interim look the
  test stops and passes if p is above that look's futility bound (the attack is clearly
  not on its way to a signal); at the last look it fails if p <= SIGNIFICANCE. Futility
  stops only ever pass, so a ladder that leaks nothing fails at most 1 % of the time (the
  last look alone is the fixed test at 550 rounds). Against leaks, simulated by
  ``benchmarks/timing_sequential.py`` (some answers of the victim's zone one step later;
  a shift of the times), this design fails at least as often as the fixed 500-round test
  did, and it asks 312 rounds on average when nothing leaks (figures in
  docs/benchmarks.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collabzone import pacing
from tests.system.timing_support import Lockstep

SIGNIFICANCE = 0.01
CONTROL_LOOKS = (25, 50, 100, 200, 300)
"""Rounds after which the control looks for the signal (each look at SIGNIFICANCE / 5)."""
LOOKS = ((200, 0.5), (350, 0.3))
"""Interim looks with the ladder: (rounds, futility bound: stop and pass above it)."""
LAST_LOOK = 550


def _single_answer(experiment: Lockstep) -> None:
    assert len(experiment.answers) == 1, "the answers differ: not a timing-channel test"


def control_finds_the_signal(root: Path) -> float | None:
    """The control's p-value at the first look below its bound (None: never below)."""
    experiment = Lockstep(root)
    for rounds in CONTROL_LOOKS:
        _, p_value = experiment.run(rounds).ks()
        _single_answer(experiment)
        if p_value < SIGNIFICANCE / len(CONTROL_LOOKS):
            return p_value
    return None


def ladder_hides_the_signal(root: Path) -> tuple[int, float]:
    """The rounds asked and the last p-value (the test passes when it is above the
    futility bound of an interim look, or above SIGNIFICANCE at the last)."""
    experiment = Lockstep(root)
    for rounds, futility in LOOKS:
        _, p_value = experiment.run(rounds).ks()
        _single_answer(experiment)
        if p_value > futility:
            return rounds, p_value
    _, p_value = experiment.run(LAST_LOOK).ks()
    _single_answer(experiment)
    return LAST_LOOK, p_value


@pytest.mark.slow
def test_response_time_does_not_reveal_a_suppressed_person(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacing, "DEFAULT_QUANTUM", 0.0)  # the zone before quantisation
    assert control_finds_the_signal(tmp_path / "off") is not None, "the attack found no signal"
    monkeypatch.setattr(pacing, "DEFAULT_QUANTUM", pacing.STANDARD_QUANTUM)
    rounds, p_value = ladder_hides_the_signal(tmp_path / "on")
    assert p_value > SIGNIFICANCE, (rounds, p_value)
