"""Fixtures of the linking tests: a keyring holding the collaboration key, a link spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from linking_support import SPEC_DOC

from collabzone.keys import LocalKeyring, new_master_key
from collabzone.techniques.linking import LinkSpec, parse_spec


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    ring = LocalKeyring.create_new(tmp_path / "keys" / "keyring.json", new_master_key())
    ring.create("link:bank-retail")
    return ring


@pytest.fixture
def spec() -> LinkSpec:
    return parse_spec(SPEC_DOC)
