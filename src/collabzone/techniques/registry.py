"""The explicit registry of techniques: name -> factory.

Adding a technique is one line here (or one ``register`` call from a plugin); the zone
never special-cases a technique by name.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from collabzone.errors import InvalidInputError
from collabzone.techniques.base import Technique

# name -> "module:Class"; imported lazily so a technique's heavy dependencies load only
# when it is used.
_BUILTIN: dict[str, str] = {
    "catalogue": "collabzone.techniques.catalogue:Catalogue",
    "dp_count": "collabzone.techniques.dp_count:DPCount",
    # -- techniques added by later work register here (one line each) --
    "deid": "collabzone.techniques.deid:Deidentify",
    "lookalike": "collabzone.techniques.lookalike:Lookalike",
    "mediate": "collabzone.techniques.deid:Mediate",
    "mpc": "collabzone.techniques.mpc:MPC",
    "he_sum": "collabzone.techniques.mpc:HESum",
    "survey": "collabzone.techniques.mpc:Survey",
    "overlap": "collabzone.techniques.linking:Overlap",
    "sealed": "collabzone.techniques.sealed:Sealed",
    "sql": "collabzone.techniques.sql:GovernedSQL",
    "validator": "collabzone.techniques.validator:Validator",
    "synthetic": "collabzone.techniques.synthetic:Synthetic",
    "federated": "collabzone.techniques.federated:Federated",
}

_loaded: dict[str, Technique] = {}


def register(name: str, target: str | Technique) -> None:
    """Register a technique under ``name`` (a ``"module:Class"`` path or an instance)."""
    if isinstance(target, Technique):
        _loaded[name] = target
    else:
        _BUILTIN[name] = target
        _loaded.pop(name, None)


def names() -> list[str]:
    """Every registered technique name."""
    return sorted(set(_BUILTIN) | set(_loaded))


def get(name: str) -> Technique:
    """The technique called ``name``; a clear error lists the known ones otherwise."""
    if name in _loaded:
        return _loaded[name]
    target = _BUILTIN.get(name)
    if target is None:
        raise InvalidInputError(
            f"unknown technique {name!r}; known techniques: {', '.join(names())}"
        )
    module_name, _, class_name = target.partition(":")
    technique = getattr(importlib.import_module(module_name), class_name)()
    if not isinstance(technique, Technique):
        raise InvalidInputError(f"{target} is not a Technique")
    _loaded[name] = technique
    return technique


class Worker(Protocol):
    """A technique's background worker owned by the zone server (stopped on shutdown)."""

    def close(self) -> None: ...


# name -> "module:function(zone) -> Worker | None": background work a technique runs in
# the server's process (e.g. the federated aggregator); imported only when the server starts.
_WORKERS: dict[str, str] = {
    "federated": "collabzone.techniques.federated._worker:start",
}


def start_workers(zone: Any) -> list[Worker]:
    """Start every technique's background worker for the server's host ``zone`` (each
    decides from the zone's configuration whether it runs); returns those started."""
    started: list[Worker] = []
    for target in _WORKERS.values():
        module_name, _, function = target.partition(":")
        worker = getattr(importlib.import_module(module_name), function)(zone)
        if worker is not None:
            started.append(worker)
    return started
