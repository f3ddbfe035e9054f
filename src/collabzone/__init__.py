"""collabzone: a privacy-preserving data collaboration zone.

>>> import collabzone                                                  # doctest: +SKIP
>>> zone = collabzone.connect("./zone", token="czt_...")               # embedded
>>> zone = collabzone.connect("https://zone.example", client_id="bank", client_secret="...")  # remote
>>> zone.catalogue()
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
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

_MODEL = ("Agreement", "Approval", "Column", "ColumnClass", "ColumnType", "Dataset", "Party",
          "Receipt", "Release", "Request", "RequestStatus", "Role")  # fmt: skip
_LAZY = {"Zone": "collabzone.zone", "init": "collabzone.zone"} | dict.fromkeys(
    _MODEL, "collabzone.model"
)
"""Imported on first use (PEP 562): the zone pulls in SQLAlchemy, the store and every
technique's interface, and the model pydantic (seconds of start-up), none of which a
compute-server process (``python -m collabzone.techniques.mpc._process``) needs."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
