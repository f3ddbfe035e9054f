"""Opening the metadata database (SQLite by default, PostgreSQL by URL) and migrating it.

Write transactions are serialised: on SQLite with ``BEGIN IMMEDIATE`` (one writer at a
time, readers unblocked thanks to WAL), on PostgreSQL by locking the audit head row, which
every state change appends to (see audit.py). That is what makes budget debits
serialisable under concurrent requests.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError

from collabzone.errors import InvalidInputError

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(zone_dir: Path) -> str:
    return f"sqlite:///{Path(zone_dir).resolve() / 'zone.sqlite'}"


def _normalise_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and immediate write locks."""
    url = _normalise_url(url)
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 60, "isolation_level": None})

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=60)
    except (ArgumentError, ImportError) as exc:
        raise InvalidInputError(
            f"cannot use database URL ({type(exc).__name__}): check --db"
        ) from None


_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (once per database per process;
    serialised, since Alembic's script loading is not thread-safe)."""
    key = engine.url.render_as_string(hide_password=False)
    with _migrate_lock:
        if key in _migrated:
            return
        _upgrade(engine)
        _migrated.add(key)


def _upgrade(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise InvalidInputError(f"cannot reach the metadata database: {exc.orig}") from None
