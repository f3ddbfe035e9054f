"""collabzone: a privacy-preserving data collaboration zone.

>>> import collabzone                                                  # doctest: +SKIP
>>> zone = collabzone.connect("./zone", token="czt_...")               # embedded
>>> zone = collabzone.connect("https://zone.example", client_id="bank", client_secret="...")  # remote
>>> zone.catalogue()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collabzone.errors import (
    AuthenticationError,
    BudgetExhaustedError,
    CollabzoneError,
    ConflictError,
    IntegrityError,
    InternalError,
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
    PolicyRefusal,
    Reason,
)
from collabzone.model import (
    Agreement,
    Approval,
    Column,
    ColumnClass,
    ColumnType,
    Dataset,
    Party,
    Receipt,
    Release,
    Request,
    RequestStatus,
    Role,
)
from collabzone.zone import Zone, init


def connect(location: str | Path, token: str | None = None, **options: Any) -> Any:
    """Open a zone: a directory (embedded) or an ``http(s)://`` URL (remote, same API).

    Embedded: ``connect(path, token=...)`` (token defaults to ``COLLABZONE_TOKEN``).
    Remote: ``connect(url, client_id=..., client_secret=...)`` (OAuth2 client credentials).
    """
    text = str(location)
    if text.startswith(("http://", "https://")):
        from collabzone.client import connect_remote

        return connect_remote(text, token=token, **options)
    from collabzone.zone import connect as connect_embedded

    return connect_embedded(location, token, **options)


__all__ = [
    "Agreement",
    "Approval",
    "AuthenticationError",
    "BudgetExhaustedError",
    "CollabzoneError",
    "Column",
    "ColumnClass",
    "ColumnType",
    "ConflictError",
    "Dataset",
    "IntegrityError",
    "InternalError",
    "InvalidInputError",
    "NotAuthorisedError",
    "NotFoundError",
    "Party",
    "PolicyRefusal",
    "Reason",
    "Receipt",
    "Release",
    "Request",
    "RequestStatus",
    "Role",
    "Zone",
    "connect",
    "init",
]
