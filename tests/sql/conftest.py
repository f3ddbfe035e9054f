"""Fixtures of the governed SQL tests (helpers live in sql_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from collabzone.techniques.sql import _run_dp
from collabzone.techniques.sql._dp import NoisyTable
from tests.sql.sql_support import DP_RULES, FakeZone, make_fake_zone


@pytest.fixture
def fake_zone() -> FakeZone:
    return make_fake_zone()


@pytest.fixture
def dp_zone() -> FakeZone:
    return make_fake_zone(DP_RULES, DP_RULES)


@pytest.fixture
def exact(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The noisy values replaced by the exact bounded quantities (after OpenDP ran), so a
    test can check post-processing and bounding exactly."""
    real = _run_dp.release

    def release(keys: Any, data: Any, measures: Any, **kw: Any) -> NoisyTable:
        out = real(keys, data, measures, **kw)
        index = {key: i for i, key in enumerate(keys)}
        for m in measures:
            out.values[m.name] = [
                int(data[m.name][index[k]]) if k in index else 0 for k in out.keys
            ]
        return out

    monkeypatch.setattr(_run_dp, "release", release)
    yield
