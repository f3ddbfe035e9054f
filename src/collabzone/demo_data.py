"""Synthetic customer tables for the demo: a bank and a retail partner, with a known overlap.

Generated with Faker from a fixed seed so every run prints the same story. Both tables hold
direct PII (names, emails, phones, birth dates, postcodes) as they would at each party's
premises; only tokens leave (see ``collabzone link prepare``). A fixed share of the partner's
customers are also bank customers, written slightly differently (case, spaces, phone
format) as real systems do, so that normalisation matters.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faker import Faker

REGIONS = ["north", "south", "east", "west", "central"]
SEGMENTS = ["mass", "affluent", "private"]
TIERS = ["bronze", "silver", "gold"]
SPEND_BANDS = ["low", "mid", "high", "very high"]


@dataclass(frozen=True)
class DemoFiles:
    bank_raw: Path
    partner_raw: Path
    overlap: int


def _person(fake: Faker, rng: random.Random) -> dict[str, str]:
    first, last = fake.first_name(), fake.last_name()
    dob = fake.date_of_birth(minimum_age=18, maximum_age=90)
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{first}.{last}{rng.randint(1, 999)}@{fake.free_email_domain()}".lower(),
        "phone": f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}",
        "birth_date": dob.isoformat(),
        "postcode": fake.postcode(),
        "region": rng.choice(REGIONS),
        "age": str(2026 - dob.year),
    }


def _restyle(person: dict[str, str], rng: random.Random) -> dict[str, str]:
    """The same person as another company's system records them."""
    out = dict(person)
    if rng.random() < 0.5:
        out["email"] = "  " + person["email"].upper() + " "
    if rng.random() < 0.5:
        digits = person["phone"].replace("+44 ", "0").replace(" ", "")
        out["phone"] = f"{digits[:5]} {digits[5:]}"
    if rng.random() < 0.3:
        out["first_name"] = person["first_name"].upper()
    return out


def generate(
    directory: Path, rows: int = 2000, overlap_share: float = 0.3, seed: int = 7
) -> DemoFiles:
    """Write bank_raw.csv and partner_raw.csv into ``directory``."""
    fake = Faker("en_GB")
    Faker.seed(seed)
    rng = random.Random(seed)
    bank_people = [_person(fake, rng) for _ in range(rows)]
    overlap = int(rows * overlap_share)
    shared = rng.sample(bank_people, overlap)
    restyled = [_restyle(p, rng) for p in shared]  # the same people as the partner has them
    partner_people = restyled + [_person(fake, rng) for _ in range(rows - overlap)]
    rng.shuffle(partner_people)
    shopping = {id(p): _shopping(rng) for p in partner_people}
    shopping_of_shared = {
        b["email"]: shopping[id(r)] for b, r in zip(shared, restyled, strict=True)
    }
    directory.mkdir(parents=True, exist_ok=True)
    bank_path, partner_path = directory / "bank_raw.csv", directory / "partner_raw.csv"
    shared_emails = {p["email"] for p in shared}
    with bank_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "first_name",
                "last_name",
                "email",
                "phone",
                "birth_date",
                "postcode",
                "region",
                "age",
                "segment",
                "income",
                "has_credit_card",
                "converted",
            ]
        )
        for p in bank_people:
            segment = rng.choices(SEGMENTS, weights=[70, 25, 5])[0]
            income = int(rng.lognormvariate(10.4, 0.4)) + (30000 if segment != "mass" else 0)
            # partner shoppers convert more often, the partner's loyal ones most: the effect
            # the bank measures (overlap, SQL) and the look-alike model learns from the
            # partner's columns
            base = 0.08 + (0.05 if segment == "affluent" else 0)
            if p["email"] in shared_emails:
                base += 0.02 + (0.25 if shopping_of_shared[p["email"]][0] != "bronze" else 0)
            writer.writerow(
                [
                    p["first_name"],
                    p["last_name"],
                    p["email"],
                    p["phone"],
                    p["birth_date"],
                    p["postcode"],
                    p["region"],
                    p["age"],
                    segment,
                    income,
                    rng.random() < 0.6,
                    rng.random() < base,
                ]
            )
    with partner_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "first_name",
                "last_name",
                "email",
                "phone",
                "birth_date",
                "postcode",
                "region",
                "age",
                "loyalty_tier",
                "annual_spend",
                "store_visits",
            ]
        )
        for p in partner_people:
            tier, spend, visits = shopping[id(p)]
            writer.writerow(
                [
                    p["first_name"],
                    p["last_name"],
                    p["email"],
                    p["phone"],
                    p["birth_date"],
                    p["postcode"],
                    p["region"],
                    p["age"],
                    tier,
                    spend,
                    visits,
                ]
            )
    return DemoFiles(bank_path, partner_path, overlap)


def _shopping(rng: random.Random) -> tuple[str, float, int]:
    """A partner customer's loyalty tier, annual spend and store visits."""
    tier = rng.choices(TIERS, weights=[60, 30, 10])[0]
    spend = round(rng.gammavariate(2.0, 300.0) * (1 + TIERS.index(tier)), 2)
    return tier, spend, rng.randint(0, 60)


def write_extract(raw: Path, out: Path) -> Path:
    """A provider's research extract from its raw file: age, region and a spend band only."""
    with raw.open(encoding="utf-8") as src, out.open("w", newline="", encoding="utf-8") as dst:
        reader = csv.DictReader(src)
        writer = csv.writer(dst)
        writer.writerow(["age", "region", "spend_band"])
        for row in reader:
            amount = float(row.get("annual_spend") or float(row.get("income") or 0) / 40)
            band = SPEND_BANDS[min(3, int(amount // 600))]
            writer.writerow([row["age"], row["region"], band])
    return out


# The columns each provider declares for its upload, besides its token columns.
_REGION_AND_AGE: list[dict[str, Any]] = [
    {
        "name": "region",
        "type": "string",
        "class": "dimension",
        "domain": REGIONS,
        "nullable": False,
    },
    {
        "name": "age",
        "type": "integer",
        "class": "quasi_identifier",
        "domain": {"min": 18, "max": 100},
    },
]
BANK_COLUMNS: list[dict[str, Any]] = [
    *_REGION_AND_AGE,
    {
        "name": "segment",
        "type": "string",
        "class": "dimension",
        "domain": SEGMENTS,
        "nullable": False,
    },
    {"name": "income", "type": "integer", "class": "measure", "domain": {"min": 0, "max": 500000}},
    {"name": "has_credit_card", "type": "boolean", "class": "dimension"},
    {"name": "converted", "type": "boolean", "class": "label"},
]
PARTNER_COLUMNS: list[dict[str, Any]] = [
    *_REGION_AND_AGE,
    {
        "name": "loyalty_tier",
        "type": "string",
        "class": "dimension",
        "domain": TIERS,
        "nullable": False,
    },
    {
        "name": "annual_spend",
        "type": "float",
        "class": "measure",
        "domain": {"min": 0, "max": 100000},
    },
    {
        "name": "store_visits",
        "type": "integer",
        "class": "measure",
        "domain": {"min": 0, "max": 365},
    },
]
