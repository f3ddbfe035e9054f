"""Attacks on secret-shared reports (issue 15): a recipient differencing two reports.

Both attacks only ask reports (``ask(spec) -> result``, raising on refusal) and subtract;
they never see shares. The report specs are plain dicts, as ``ReportSpec.from_json``
reads them, so the attack library does not import the MPC technique.

* :func:`mpc_union_differencing`: ``sum`` over a big dataset plus a one-record dataset,
  minus ``sum`` over the big dataset alone, is the victim's value. The per-dataset
  minimum group size in a union refuses it.
* :func:`mpc_join_differencing`: the attacker owns one side of a join and uploads two
  pseudonym lists that differ by the victim; the difference of the partner's ``sum`` over
  the two joins is the victim's value. Minimum group sizes cannot stop it (both joins are
  large): only DP noise inside MPC blurs it, which is why joins on partner-owned lists
  should carry ``epsilon``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Ask = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def _sum(ask: Ask, datasets: list[str], column: str, recipient: str, **extra: Any) -> float | None:
    spec = {
        "report": "sum",
        "datasets": datasets,
        "columns": [column],
        "recipient": recipient,
        **extra,
    }
    try:
        result = ask(spec)
    except Exception:  # a refusal is this attack's failure, whatever its type
        return None
    return float(result["result"][column])


def mpc_union_differencing(
    ask: Ask, big: str, victim: str, column: str, recipient: str
) -> float | None:
    """The victim's value from sum(big + victim) - sum(big), or None if refused."""
    both = _sum(ask, [big, victim], column, recipient)
    alone = _sum(ask, [big], column, recipient)
    return None if both is None or alone is None else both - alone


def mpc_join_differencing(
    ask: Ask,
    partner: str,
    with_victim: str,
    without_victim: str,
    column: str,
    recipient: str,
    **extra: Any,
) -> float | None:
    """The victim's value in ``partner`` from two joins with attacker-owned pseudonym lists."""
    first = _sum(ask, [partner, with_victim], column, recipient, join=True, **extra)
    second = _sum(ask, [partner, without_victim], column, recipient, join=True, **extra)
    return None if first is None or second is None else first - second
