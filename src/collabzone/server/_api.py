"""The JSON API under ``/v1``: one route per zone operation, each acting as the token's party.

The routes live by subject in ``_routes_identity`` (caller, parties, notifications, keys),
``_routes_data`` (datasets, agreements), ``_routes_requests`` (requests, catalogue, jobs) and
``_routes_audit`` (budget, audit log); their dependencies (who calls, with which scope) in
:mod:`collabzone.server.deps`. Each router carries the ``/v1`` prefix itself, so that the
paths of its routes are whole (the 405 handler matches them against the request's path).
"""

from __future__ import annotations

from fastapi import APIRouter

from collabzone.server import _routes_audit, _routes_data, _routes_identity, _routes_requests

ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router for module in (_routes_identity, _routes_data, _routes_requests, _routes_audit)
)
"""The API's routers, in the order the app includes them."""

__all__ = ["ROUTERS"]
