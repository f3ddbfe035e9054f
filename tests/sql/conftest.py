"""Fixtures of the governed SQL tests (helpers live in sql_support.py)."""

from __future__ import annotations

import pytest

from tests.sql.sql_support import DP_RULES, FakeZone, make_fake_zone


@pytest.fixture
def fake_zone() -> FakeZone:
    return make_fake_zone()


@pytest.fixture
def dp_zone() -> FakeZone:
    return make_fake_zone(DP_RULES, DP_RULES)
