"""Governed SQL: analysis rules as AST rewrites, a query monitor, differential privacy.

One technique, ``sql`` (:class:`GovernedSQL`), whose agreement rule ``analysis`` picks
``aggregation`` (allowed columns and aggregates, minimum entities per released row),
``list`` (row-level output of named columns for the overlap, to a named recipient),
``template`` (pre-approved parameterised reports) or ``dp`` (differentially private
aggregates with per-entity contribution bounds, OpenDP noise and a budget).

Example:
    >>> from collabzone.techniques.sql import parse_select
    >>> parse_select("SELECT region, COUNT(*) FROM sales GROUP BY region").sql()
    'SELECT region, COUNT(*) FROM sales GROUP BY region'
"""

from collabzone.techniques.sql._compile import compile_request
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._dp import Budget
from collabzone.techniques.sql._engines import transpile
from collabzone.techniques.sql._frontend import QueryRejected, parse_select, resolve
from collabzone.techniques.sql._payload import render, to_arrow, to_csv, to_parquet
from collabzone.techniques.sql._technique import GovernedSQL, compile_for

__all__ = [
    "Budget",
    "Compiled",
    "GovernedSQL",
    "QueryRejected",
    "compile_for",
    "compile_request",
    "parse_select",
    "render",
    "resolve",
    "to_arrow",
    "to_csv",
    "to_parquet",
    "transpile",
]
