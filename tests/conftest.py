"""Shared fixtures: zones on SQLite (always) and PostgreSQL (when its URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text

from collabzone import pacing
from collabzone.keys import MASTER_KEY_ENV, new_master_key
from collabzone.zone import Zone, init

# CI shares two cores with PostgreSQL and subprocesses: time limits per example would make
# property tests flaky without testing anything about privacy.
settings.register_profile("collabzone", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("collabzone")

POSTGRES_ENV = "COLLABZONE_TEST_POSTGRES_URL"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _quick_response_ladder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Zones made by tests answer on a 10 ms ladder: every ending is still paced (the code
    path runs), without half a second per request. tests/system/test_timing_channel.py
    puts the standard quantum back to attack it."""
    monkeypatch.setattr(pacing, "DEFAULT_QUANTUM", 0.01)


@pytest.fixture(autouse=True)
def _master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, new_master_key())
    monkeypatch.delenv("COLLABZONE_TOKEN", raising=False)
    monkeypatch.delenv("COLLABZONE_DB_URL", raising=False)


def _pg_url_with_schema(base: str, schema: str) -> str:
    url = (
        base.replace("postgresql://", "postgresql+psycopg://", 1)
        if base.startswith("postgresql://")
        else base
    )
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test (skipped when no server is configured)."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    schema = f"cz_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_url_with_schema(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """Run a test on the embedded SQLite store and again on PostgreSQL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@dataclass
class Parties:
    """A zone with an operator, a bank, a partner, a third provider and an auditor."""

    root: Path
    operator: Zone
    bank: Zone
    partner: Zone
    insurer: Zone
    auditor: Zone
    tokens: dict[str, str]


CUSTOMER_SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {
            "name": "region",
            "type": "string",
            "class": "dimension",
            "domain": ["north", "south", "east"],
        },
        {"name": "spend", "type": "float", "class": "measure", "domain": {"min": 0, "max": 1000}},
    ]
}


def write_customers(path: Path, rows: int, prefix: str = "t", seed: int = 1) -> Path:
    """A small tokenised customer file (deterministic)."""
    import random

    rng = random.Random(seed)
    lines = ["token,region,spend"]
    for i in range(rows):
        lines.append(
            f"{prefix}{i},{rng.choice(['north', 'south', 'east'])},{rng.uniform(0, 1000):.2f}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def make_zone(tmp_path: Path) -> Callable[[str | None], Parties]:
    def factory(db: str | None = None) -> Parties:
        operator, _ = init(tmp_path / "zone", db_url=db)
        tokens = {}
        handles = {}
        for name, roles in (
            ("bank", ["provider", "analyst"]),
            ("partner", ["provider", "analyst"]),
            ("insurer", ["provider"]),
            ("auditor", ["auditor"]),
        ):
            _, tokens[name] = operator.add_party(name, roles)
            handles[name] = operator.as_party(tokens[name])
        return Parties(
            tmp_path / "zone",
            operator,
            handles["bank"],
            handles["partner"],
            handles["insurer"],
            handles["auditor"],
            tokens,
        )

    return factory


@pytest.fixture
def zone(make_zone: Callable[[str | None], Parties], db_url: str | None) -> Parties:
    """A populated zone on each metadata store (SQLite and PostgreSQL)."""
    return make_zone(db_url)


@pytest.fixture
def sqlite_zone(make_zone: Callable[[str | None], Parties]) -> Parties:
    """A populated zone on the embedded SQLite store only."""
    return make_zone(None)
