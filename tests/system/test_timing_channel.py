"""Channel 5 of issue 10: the response time of a suppressed answer must not reveal a person.

The attacker asks the same query of two zones that differ by one person (the victim, alone
in her segment, with many accounts; see timing_support.py) 500 times each and compares the
two response-time distributions with a two-sample Kolmogorov-Smirnov test. Without
quantisation (``quantum = 0``, what the zone did before) the attack tells the zones apart:
that control must succeed, or the test proves nothing. With the standard ladder
(pacing.py) it must not: p > 0.01 (under the null hypothesis this fails 1 % of the time;
the p-values measured are in docs/benchmarks.md). The two zones are asked in lockstep,
one thread each, so load on the machine falls on both alike and the test takes half as
long.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collabzone import pacing
from tests.system.timing_support import attack

RUNS = 500
CONTROL_RUNS = 150
SIGNIFICANCE = 0.01


def _attack(root: Path, runs: int) -> float:
    """The attacker's KS p-value between the two zones (see timing_support.attack)."""
    result = attack(root, runs)
    assert len(result["answers"]) == 1, "the answers differ: not a timing-channel test"
    return float(result["p_value"])


@pytest.mark.slow
def test_response_time_does_not_reveal_a_suppressed_person(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacing, "DEFAULT_QUANTUM", 0.0)  # the zone before quantisation
    assert _attack(tmp_path / "off", CONTROL_RUNS) < SIGNIFICANCE, "the attack found no signal"
    monkeypatch.setattr(pacing, "DEFAULT_QUANTUM", pacing.STANDARD_QUANTUM)
    assert _attack(tmp_path / "on", RUNS) > SIGNIFICANCE
