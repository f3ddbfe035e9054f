"""Execution hygiene: run a rewritten query with a timeout, a memory cap and a row cap.

Engine errors never reach the analyst as the engine wrote them: a message such as
"Could not convert string 'Alice' to INT32" or "division by zero" can itself depend on, or
quote, a data value. Every failure is mapped to a fixed, data-independent message.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import TYPE_CHECKING, Any

from collabzone.errors import InvalidInputError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

RUNTIME_FAILURE = (
    "the query failed while running (for example a division by zero, an overflow or an "
    "invalid conversion); the engine's message is withheld because it can depend on the "
    "data. Simplify the query"
)


_APPLIED: weakref.WeakKeyDictionary[Any, dict[str, str | int]] = weakref.WeakKeyDictionary()
"""The caps already set on each open connection: a SET costs about a millisecond on a
connection holding data (a fifth of a small DP query's Python time), so each cap is set
once per connection, not once per query. Nothing else in collabzone sets these."""


def configure(
    con: duckdb.DuckDBPyConnection, *, memory_limit: str | None, threads: int | None
) -> None:
    """Best-effort resource caps on the zone's connection (ignored if already locked)."""
    import duckdb

    settings = {"memory_limit": memory_limit, "threads": threads}
    try:
        applied = _APPLIED.setdefault(con, {})
    except TypeError:  # (an object without weak references: set every time)
        applied = {}
    for name, value in settings.items():
        if value is None or applied.get(name) == value:
            continue
        with contextlib.suppress(duckdb.Error):
            con.execute(
                f"SET {name} = '{value}'"
                if isinstance(value, str)
                else f"SET {name} = {int(value)}"
            )
            applied[name] = value


def execute(
    con: duckdb.DuckDBPyConnection, sql: str, *, timeout_s: float, max_rows: int | None
) -> pa.Table:
    """Run ``sql``; refuse on timeout or when more than ``max_rows`` rows come back."""
    import duckdb

    timer = threading.Timer(timeout_s, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        table = con.sql(sql).to_arrow_table()
    except duckdb.InterruptException:
        raise InvalidInputError(
            f"the query ran longer than {timeout_s:g} s and was stopped; narrow it"
        ) from None
    except duckdb.OutOfMemoryException:
        raise InvalidInputError("the query needed more memory than allowed; narrow it") from None
    except duckdb.Error:
        raise InvalidInputError(RUNTIME_FAILURE) from None
    finally:
        timer.cancel()
    if max_rows is not None and table.num_rows > max_rows:
        raise InvalidInputError(
            f"the result has more than {max_rows} rows, the limit the agreement sets; "
            "add conditions or group more coarsely"
        )
    return table
