"""Seeded synthetic look-alike data: a partner's customers with features, the bank's seed.

Used by the tests, the attack library's ``lookalike`` family, the benchmark and the demo
extension, so all of them measure the same thing. A customer's propensity to "buy product
X" is a logistic function of age, income and region; the bank's seed dataset lists its
customers (a share of the partner's plus its own others) with that label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

REGIONS = ("north", "south", "east", "west")

PARTNER_COLUMNS: list[dict[str, object]] = [
    {"name": "link_email", "type": "string", "class": "join_key"},
    {"name": "age", "type": "float", "class": "measure"},
    {"name": "income", "type": "float", "class": "measure"},
    {"name": "region", "type": "string", "class": "dimension", "domain": list(REGIONS)},
]
SEED_COLUMNS: list[dict[str, object]] = [
    {"name": "link_email", "type": "string", "class": "join_key"},
    {"name": "bought", "type": "boolean", "class": "label"},
]


@dataclass(frozen=True)
class LookalikeData:
    """The partner's feature table, the bank's seed table and who is in the overlap."""

    partner: pa.Table
    seed: pa.Table
    overlap: frozenset[str]


def token(i: int) -> str:
    """The (fake) email token of person ``i``, shaped like a link token."""
    return f"v1:{i:012x}"


def propensity(age: np.ndarray, income: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Probability of buying product X: rises with income, falls with age, higher north."""
    z = -2.0 + 1.6 * (income - 40.0) / 15.0 - 0.8 * (age - 45.0) / 15.0 + 0.8 * (region == 0)
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out


def generate(
    partner_rows: int, overlap_share: float = 0.3, bank_only: int = 0, seed: int = 17
) -> LookalikeData:
    """``partner_rows`` partner customers, of whom ``overlap_share`` also bank with the bank;
    the bank's seed holds those plus ``bank_only`` customers the partner does not have."""
    rng = np.random.default_rng(seed)
    n = partner_rows + bank_only
    age = np.clip(rng.normal(45, 15, n), 18, 90).round(0)
    income = np.clip(rng.normal(40, 15, n), 5, 200).round(1)
    region = rng.integers(0, len(REGIONS), n)
    bought = rng.random(n) < propensity(age, income, region)
    tokens = [token(i) for i in range(n)]
    in_bank = np.zeros(n, dtype=bool)
    in_bank[:partner_rows] = rng.random(partner_rows) < overlap_share
    in_bank[partner_rows:] = True
    p = slice(0, partner_rows)
    partner = pa.table(
        {
            "link_email": tokens[p],
            "age": age[p],
            "income": income[p],
            "region": [REGIONS[r] for r in region[p]],
        }
    )
    members = np.flatnonzero(in_bank)
    seed_table = pa.table(
        {"link_email": [tokens[i] for i in members], "bought": bought[members].tolist()}
    )
    overlap = frozenset(tokens[i] for i in np.flatnonzero(in_bank[:partner_rows]))
    return LookalikeData(partner=partner, seed=seed_table, overlap=overlap)
