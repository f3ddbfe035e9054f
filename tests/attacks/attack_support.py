"""UCI Adult as a protected dataset, and targets for the attack library to attack.

* :func:`load_adult` reads /work/shared/data/uci_adult_full/adult.data (CC BY 4.0) and gives
  every row a synthetic person token (``p00000``...), the entity and join key.
* :class:`MemoryZone` / :class:`MemoryTarget`: the governed SQL technique run in memory
  exactly as tests/sql/sql_support.py's FakeZone does (plan -> check -> run -> release,
  audit states stored compare-and-set, DP history for the cache), plus the core's budget
  check (``epsilon_budget``) and uploads of the analyst's own tables.
* :func:`adult_scenario`: the attacker's background knowledge, chosen from the truth.
* :func:`campaign_in_parallel`: every family against a fresh zone, two processes at once.

The deliberately unprotected target is in naive_target.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from collabzone.attacks import (
    ATTACKS,
    Answer,
    AttackResult,
    CampaignReport,
    Person,
    Question,
    Scenario,
    run_campaign,
)
from collabzone.attacks._target import from_payload, refused
from collabzone.budget import BudgetLimit, PrivacyCost, overspend
from collabzone.errors import CollabzoneError, PolicyRefusal, Reason
from collabzone.model import Agreement, Approval, Column, Dataset, Party, Role
from collabzone.techniques.base import Plan, Rules
from collabzone.techniques.sql import GovernedSQL

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
ADULT_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "uci_adult_full"
OWNER = "census"
ANALYST = "analyst"
MIN_GROUP_SIZE = 10

RAW = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
       "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
       "hours_per_week", "native_country", "income"]  # fmt: skip
DOMAINS: dict[str, list[str]] = {
    "workclass": ["Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov",
                  "State-gov", "Without-pay", "Never-worked"],
    "education": ["Bachelors", "Some-college", "11th", "HS-grad", "Prof-school", "Assoc-acdm",
                  "Assoc-voc", "9th", "7th-8th", "12th", "Masters", "1st-4th", "10th",
                  "Doctorate", "5th-6th", "Preschool"],
    "marital_status": ["Married-civ-spouse", "Divorced", "Never-married", "Separated",
                       "Widowed", "Married-spouse-absent", "Married-AF-spouse"],
    "occupation": ["Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial",
                   "Prof-specialty", "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical",
                   "Farming-fishing", "Transport-moving", "Priv-house-serv", "Protective-serv",
                   "Armed-Forces"],
    "relationship": ["Wife", "Own-child", "Husband", "Not-in-family", "Other-relative",
                     "Unmarried"],
    "race": ["White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black"],
    "sex": ["Female", "Male"],
}  # fmt: skip
INTEGERS = {"age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"}


def col(name: str, type_: str, class_: str, domain: Any = None, nullable: bool = True) -> Column:
    return Column.model_validate(
        {"name": name, "type": type_, "class": class_, "domain": domain, "nullable": nullable}
    )


ADULT_COLUMNS: tuple[Column, ...] = (
    col("token", "string", "join_key", nullable=False),
    col("age", "integer", "dimension", {"min": 17, "max": 90}, False),
    col("workclass", "string", "dimension", DOMAINS["workclass"]),
    col("fnlwgt", "integer", "measure", {"min": 0, "max": 1_500_000}, False),
    col("education", "string", "dimension", DOMAINS["education"], False),
    col("education_num", "integer", "dimension", {"min": 1, "max": 16}, False),
    col("marital_status", "string", "dimension", DOMAINS["marital_status"], False),
    col("occupation", "string", "dimension", DOMAINS["occupation"]),
    col("relationship", "string", "dimension", DOMAINS["relationship"], False),
    col("race", "string", "dimension", DOMAINS["race"], False),
    col("sex", "string", "dimension", DOMAINS["sex"], False),
    col("capital_gain", "integer", "measure", {"min": 0, "max": 99999}, False),
    col("capital_loss", "integer", "measure", {"min": 0, "max": 4356}, False),
    col("hours_per_week", "integer", "dimension", {"min": 1, "max": 99}, False),
    col("native_country", "string", "dimension"),
    col("high_income", "integer", "measure", {"min": 0, "max": 1}, False),
)
DIMENSIONS = [c.name for c in ADULT_COLUMNS if c.column_class == "dimension"] + ["high_income"]
AGGREGATION_RULES: dict[str, Any] = {
    "analysis": ["aggregation"],
    "min_group_size": MIN_GROUP_SIZE,
    "dimensions": DIMENSIONS,
}
DP_EPSILON_BUDGET = 1.0
DP_RULES: dict[str, Any] = {
    "analysis": ["dp"],
    "min_group_size": MIN_GROUP_SIZE,
    "dimensions": DIMENSIONS,
    "max_rows_per_entity": 1,
    "max_groups_per_entity": 1,
    "max_epsilon_per_query": 1.0,
    "epsilon_budget": DP_EPSILON_BUDGET,
}


@functools.cache
def load_adult() -> pa.Table:
    """adult.data with stripped values, ``?`` as NULL, a token per row and high_income."""
    path = ADULT_DIR / "adult.data"
    data: dict[str, list[Any]] = {name: [] for name in RAW}
    with path.open(newline="", encoding="utf-8") as handle:
        for line in csv.reader(handle):
            if len(line) != len(RAW):
                continue
            for name, raw in zip(RAW, line, strict=True):
                value: Any = raw.strip()
                if value == "?":
                    value = None
                elif name in INTEGERS:
                    value = int(value)
                data[name].append(value)
    n = len(data["age"])
    columns: dict[str, Any] = {"token": [f"p{i:05d}" for i in range(n)]}
    for column in ADULT_COLUMNS[1:]:
        if column.name == "high_income":
            columns["high_income"] = [int(v.startswith(">50K")) for v in data["income"]]
        else:
            columns[column.name] = data[column.name]
    return pa.table(columns)


def with_outlier(adult: pa.Table, token: str, gain: int = 10**12) -> pa.Table:
    """Adult with one person's capital gain far above the declared maximum (channel 6)."""
    import pyarrow.compute as pc

    gains = pc.if_else(pc.equal(adult.column("token"), token), gain, adult.column("capital_gain"))
    index = adult.schema.get_field_index("capital_gain")
    return adult.set_column(index, "capital_gain", pc.cast(gains, pa.int64()))


def dataset(name: str, owner: str, columns: Sequence[Column], rows: int) -> Dataset:
    return Dataset(name=name, owner=owner, columns=tuple(columns), row_count=rows, version=1,
                   created_at=NOW)  # fmt: skip


def agreement(ds: str, owner: str, rules: Mapping[str, Any]) -> Agreement:
    return Agreement(id=f"agr-{ds}", dataset=ds, owner=owner, grantees=(ANALYST,), technique="sql",
                     purposes=("*",), rules=dict(rules), approval=Approval.AUTO, valid_from=NOW,
                     valid_until=None, created_at=NOW)  # fmt: skip


@dataclass
class MemoryZone:
    """Enough of the zone for the technique, as FakeZone, plus budgets and uploads."""

    datasets: dict[str, Dataset]
    agreements: list[Agreement]
    tables: dict[str, pa.Table]
    history_log: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ledger: list[tuple[str, str, PrivacyCost]] = field(default_factory=list)
    technique: GovernedSQL = field(default_factory=GovernedSQL)
    audit_states: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    _con: duckdb.DuckDBPyConnection | None = None

    def connection(self) -> duckdb.DuckDBPyConnection:
        """One connection for every request (registering 32k rows anew costs more than the
        query): the technique leaves no state on it, and uploads register here too."""
        if self._con is None:
            self._con = duckdb.connect()
            for name, table in self.tables.items():
                self._con.register(name, table)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def add_table(self, name: str, table: pa.Table) -> None:
        self.tables[name] = table
        if self._con is not None:
            self._con.register(name, table)

    def submit(self, party: str, spec: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
        """plan -> check (+ budget) -> run -> release -> record; the payload and the
        outcome's ``rows_suppressed`` (what a receipt would say)."""
        ctx = Ctx(self, Party(name=party, roles=(Role.ANALYST, Role.PROVIDER), created_at=NOW))
        plan = self.technique.plan(spec, ctx)
        rules = self.rules(plan, ctx)
        reasons = list(self.technique.check(plan, rules, ctx)) + self._budget(party, plan)
        if reasons:
            raise PolicyRefusal(reasons)
        outcome = self.technique.release(plan, self.technique.run(plan, ctx), rules)
        for ds, cost in outcome.spent.items():
            self.ledger.append((party, ds, cost))
        for change in outcome.audit_updates:  # as the release transaction does (CAS)
            current = self.audit_states.get(change.space)
            assert (current[0] if current else None) == change.base_version
            self.audit_states[change.space] = ((current[0] if current else 0) + 1, change.state)
        monitor = outcome.payload.get("_monitor")
        if monitor:
            for ds in plan.datasets:
                self.history_log.setdefault(ds, []).append(
                    {**monitor, "requester": party, "released_at": NOW}
                )
        payload = {k: v for k, v in outcome.payload.items() if not k.startswith("_")}
        return payload, outcome.rows_suppressed

    def _budget(self, party: str, plan: Plan) -> list[Reason]:
        reasons = []
        for ds, cost in plan.cost.items():
            owner = self.datasets[ds].owner
            if owner == party or cost.is_free:
                continue
            rules = next((a.rules for a in self.agreements if a.dataset == ds), {})
            limit = BudgetLimit(rules.get("epsilon_budget"), rules.get("delta_budget"),
                                rules.get("rho_budget"))  # fmt: skip
            spent = [c for p, d, c in self.ledger if p == party and d == ds]
            for problem in overspend(spent, cost, limit):
                reasons.append(Reason("BUDGET_EXHAUSTED", f"budget on {ds}", problem, owner))
        return reasons

    def rules(self, plan: Plan, ctx: Ctx) -> Rules:
        by = {
            d: next((a.rules for a in ctx.agreements_for(d) if a.technique == "sql"), {})
            for d in plan.datasets
        }
        return Rules(by_dataset=by, merged={})

    def spent(self, party: str, dataset: str = "adult") -> float:
        """Epsilon the ledger charged ``party`` on ``dataset``."""
        return sum(c.epsilon for p, d, c in self.ledger if p == party and d == dataset)


@dataclass
class Ctx:
    """The plan and run context (catalogue, agreements, data, keys, history) of one request."""

    zone: MemoryZone
    requester: Party
    now: dt.datetime = NOW
    purpose: str = "research"

    def dataset(self, name: str) -> Dataset:
        return self.zone.datasets[name]

    def visible_datasets(self) -> list[Dataset]:
        return list(self.zone.datasets.values())

    def agreements_for(self, dataset: str) -> list[Agreement]:
        return [
            a for a in self.zone.agreements if a.dataset == dataset and a.grants(self.requester)
        ]

    def party(self, name: str) -> Party:
        return Party(name=name, roles=(Role.ANALYST,), created_at=NOW)

    def table(self, dataset: str) -> pa.Table:
        return self.zone.tables[dataset]

    def connection(self) -> duckdb.DuckDBPyConnection:
        return self.zone.connection()

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        return (purpose.encode() * length)[:length]

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(0)

    def spent(self, dataset: str) -> PrivacyCost:
        return PrivacyCost()

    def history(self, dataset: str) -> list[Mapping[str, Any]]:
        return list(self.zone.history_log.get(dataset, []))

    def audit_state(self, space: str) -> tuple[int, bytes] | None:
        return self.zone.audit_states.get(space)


def adult_zone(rules: Mapping[str, Any], table: pa.Table | None = None) -> MemoryZone:
    adult = table if table is not None else load_adult()
    return MemoryZone(
        datasets={"adult": dataset("adult", OWNER, ADULT_COLUMNS, adult.num_rows)},
        agreements=[agreement("adult", OWNER, rules)],
        tables={"adult": adult},
    )


@dataclass
class MemoryTarget:
    """The analyst's view of a :class:`MemoryZone` (a Target and an Uploader)."""

    zone: MemoryZone
    party: str = ANALYST

    def ask(self, question: Question) -> Answer:
        started = time.perf_counter()
        try:
            payload, suppressed = self.zone.submit(self.party, question.spec())
        except PolicyRefusal as exc:
            return refused(*(r.code for r in exc.reasons), seconds=time.perf_counter() - started)
        except CollabzoneError as exc:
            return refused(exc.code, seconds=time.perf_counter() - started)
        seconds = time.perf_counter() - started
        return from_payload(payload, seconds=seconds, receipt_suppressed=suppressed)

    def upload(self, name: str, table: pa.Table, columns: Sequence[Mapping[str, Any]]) -> str:
        specs = [Column.model_validate(dict(c)) for c in columns]
        self.zone.datasets[name] = dataset(name, self.party, specs, table.num_rows)
        self.zone.add_table(name, table)
        return name


# -- the attacker's knowledge -----------------------------------------------------------

QUASI = ("race", "sex", "age", "education")
SPLITTERS = ("sex", "race", "relationship")


def adult_scenario(
    table: pa.Table | None = None,
    *,
    victims: int = 100,
    outsiders: int = 50,
    helpers: int = 2000,
    epsilon: float | None = None,
    seed: int = 1,
) -> Scenario:
    """Victims alone in their (race, sex, age, education) cell, half with high income and
    half without (so the uninformed guess is right half the time); outsiders: cells that
    nobody occupies; helpers: tokens of other people (the attacker's own customers);
    known: everyone else alone in a cell, with their secret (background knowledge)."""
    adult = table if table is not None else load_adult()
    con = duckdb.connect()
    con.register("adult", adult)
    keys = ", ".join(QUASI)
    unique = con.execute(
        f"SELECT {keys}, any_value(token) AS token, any_value(high_income) AS secret "
        f"FROM adult GROUP BY {keys} HAVING COUNT(*) = 1 ORDER BY {keys}"
    ).fetchall()
    # victims clustered in few (race, sex, education) prefixes, the ones with most high
    # incomes first: the reconstruction's subset sums then stay short SQL
    prefixes: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in unique:
        prefixes.setdefault((row[0], row[1], row[3]), []).append(row)
    ranked = sorted(prefixes.values(), key=lambda rows: -sum(r[-1] for r in rows))
    ones: list[tuple[Any, ...]] = []
    zeros: list[tuple[Any, ...]] = []
    for rows in ranked:
        ones += [r for r in rows if r[-1] == 1][: victims // 2 - len(ones)]
        zeros += [r for r in rows if r[-1] == 0][: victims - victims // 2 - len(zeros)]
    rng = np.random.default_rng(seed)
    chosen = ones + zeros
    rng.shuffle(chosen)  # type: ignore[arg-type]
    people = tuple(
        Person(f"victim{i}", dict(zip(QUASI, r[: len(QUASI)], strict=True)), token=r[len(QUASI)])
        for i, r in enumerate(chosen)
    )
    picked = {r[len(QUASI)] for r in chosen}
    others = [r for r in unique if r[len(QUASI)] not in picked]
    known = tuple(
        Person(f"known{i}", dict(zip(QUASI, r[: len(QUASI)], strict=True)), secret=r[-1])
        for i, r in enumerate(others[int(j)] for j in rng.permutation(len(others)))
    )
    taken = set(con.execute(f"SELECT DISTINCT {keys} FROM adult").fetchall())
    empty: list[Person] = []
    ages = list(range(20, 80))
    while len(empty) < outsiders + 1:
        quasi = (
            DOMAINS["race"][int(rng.integers(1, 5))],
            DOMAINS["sex"][int(rng.integers(0, 2))],
            ages[int(rng.integers(0, len(ages)))],
            DOMAINS["education"][int(rng.integers(0, 16))],
        )
        if quasi not in taken and quasi not in {tuple(p.quasi.values()) for p in empty}:
            empty.append(Person(f"outsider{len(empty)}", dict(zip(QUASI, quasi, strict=True))))
    victim_tokens = {p.token for p in people}
    others_tokens = [t for t in adult.column("token").to_pylist() if t not in victim_tokens]
    order = rng.permutation(len(others_tokens))[:helpers]
    con.close()
    return Scenario(
        table="adult",
        entity="token",
        secret="high_income",
        measure="capital_gain",
        measure_bounds=(0.0, 99999.0),
        splitters={c: tuple(DOMAINS[c]) for c in SPLITTERS},
        victims=people,
        outsiders=tuple(empty[1:]),
        empty_cell=Person("reference", empty[0].quasi),
        helpers=tuple(others_tokens[int(i)] for i in order),
        known=known,
        min_group_size=MIN_GROUP_SIZE,
        epsilon=epsilon,
        seed=seed,
    )


# -- campaigns ---------------------------------------------------------------------------


def run_family(name: str, queries: int, dp: bool = False) -> AttackResult:
    """One attack family against a fresh in-memory zone on Adult (the default scenario).

    A plain function of picklable arguments, so a process pool can run families in
    parallel (each process loads Adult itself; the scenario is deterministic).
    """
    adult = load_adult()
    scenario = adult_scenario(adult, epsilon=DP_EPSILON_BUDGET if dp else None)
    zone = adult_zone(DP_RULES if dp else AGGREGATION_RULES, adult)
    try:
        (result,) = run_campaign(MemoryTarget(zone), scenario, queries, attacks=[name]).results
    finally:
        zone.close()
    return result


def campaign_in_parallel(queries: int, *, dp: bool = False, workers: int = 2) -> CampaignReport:
    """Every family against its own fresh zone, ``workers`` processes at a time."""
    names = list(ATTACKS)
    context = multiprocessing.get_context("spawn")  # no DuckDB state copied into children
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        results = list(pool.map(run_family, names, [queries] * len(names), [dp] * len(names)))
    scenario = adult_scenario(load_adult(), epsilon=DP_EPSILON_BUDGET if dp else None)
    return CampaignReport(scenario, tuple(results))
