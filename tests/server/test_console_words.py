"""The console's pure pieces: plain words, the budget chart, paging (no server needed)."""

from __future__ import annotations

import datetime as dt
import re

from collabzone.model import RequestStatus
from collabzone.server._chart import Series, budget_series, in_period, svg_chart, time_ticks
from collabzone.server._console_pages import paged
from collabzone.server._console_words import (
    action_words,
    budget_words,
    flatten,
    left_words,
    receives,
    standings,
    status_word,
    when,
)

T0 = dt.datetime(2026, 12, 2, 14, 0, 0, tzinfo=dt.UTC)


def test_every_status_reads_as_words() -> None:
    words = [status_word(s) for s in RequestStatus]
    assert all("_" not in w for w in words) and len(set(words)) == len(words)
    assert status_word("awaiting_approval") == "waiting for approval"
    assert action_words("request.awaiting_approval") == "request waiting for approval"
    assert action_words("auth.denied") == "auth denied"


def test_budgets_read_as_spent_of_cap() -> None:
    assert budget_words(0.7, 2.0) == "ε 0.7 of 2.0"
    assert budget_words(0.1 + 0.2, 1) == "ε 0.3 of 1.0"
    assert budget_words(0.5, None) == "ε 0.5 (no cap)"
    assert left_words({"epsilon": 0.0, "delta": None, "rho": None}) == "ε 0.0 left"
    assert left_words({"epsilon": None}) == "no cap"
    [row] = standings(
        {"d": {"epsilon": 0.3, "delta": 0.0}},
        {"d": {"spent": {"epsilon": 1.5}, "cap": {"epsilon": 2.0}}},
    )
    assert (row.cost, row.remaining_now, row.remaining_after, row.over) == (
        "ε 0.3", "ε 0.5 of 2.0 left", "ε 0.2 of 2.0 left", False,
    )  # fmt: skip
    [over] = standings(
        {"d": {"epsilon": 0.9}}, {"d": {"spent": {"epsilon": 1.5}, "cap": {"epsilon": 2.0}}}
    )
    assert over.over and over.remaining_after == "ε 0.0 of 2.0 left"


def test_timestamps_are_to_the_second_in_utc() -> None:
    shown = str(
        when(dt.datetime(2026, 12, 2, 15, 4, 5, 999999, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    )
    assert shown == '<time datetime="2026-12-02T14:04:05+00:00">2026-12-02 14:04:05 UTC</time>'
    assert "14:04:05 UTC" in str(when("2026-12-02T14:04:05.123+00:00"))


def test_a_request_is_one_sentence() -> None:
    count = receives("dp_count", "bank", ("partner_data",), "", {"entity": "token", "by": "region"})
    assert count == (
        "bank would receive a differentially private count of distinct token in "
        "partner_data, per region, with 95% confidence intervals."
    )
    sql = receives("sql", "bank", ("a", "b"), "tier, n", {"mode": "aggregate"})
    assert "from a and b (columns: tier, n)" in sql and "SQL below" in sql
    assert receives("x", "bank", (), "rows", {}) == "bank would receive rows from the zone (x)."


def test_event_details_flatten_to_readable_lines() -> None:
    lines = flatten(
        {"receipt": {"budget_spent": {"d": {"epsilon": 0.1}}}, "owners": ["a", "b"], "e": {}}
    )
    assert lines == [("e", "(none)"), ("owners", "a, b"), ("receipt.budget_spent.d.epsilon", "0.1")]


def _released(n: int, step_s: float = 7.0, epsilon: float = 0.002) -> Series:
    points = tuple((T0 + dt.timedelta(seconds=i * step_s), epsilon * (i + 1)) for i in range(n))
    return Series("bank", "d", points, cap=2.0)


def test_one_release_draws_a_step_with_the_cap_and_ticks() -> None:
    svg = svg_chart(_released(1), chart_id="c")
    assert svg.count('class="cap"') == 1 and "cap ε 2" in svg
    assert svg.count("<circle") == 1 and 'aria-labelledby="c-t c-d"' in svg
    labels = re.findall(r">(\d\d:\d\d(?::\d\d)?)</text>", svg)
    assert len(labels) >= 2, labels  # a readable time axis even for one instant
    assert "ε 0.002 of 2" in svg  # the description screen readers read


def test_five_hundred_releases_stay_inside_the_chart() -> None:
    series = _released(500)
    svg = svg_chart(series, width=640, height=240)
    path = re.search(r'class="spent" d="([^"]+)"', svg)
    assert path and path.group(1).count("V") == 500
    xs = [float(v) for v in re.findall(r"H ([\d.]+)", path.group(1))]
    ys = [float(v) for v in re.findall(r"V ([\d.]+)", path.group(1))]
    assert min(xs) >= 0 and max(xs) <= 640
    assert min(ys) >= 0 and max(ys) <= 240
    assert "<circle" not in svg  # 500 dots would be a smear
    assert len(re.findall(r'text-anchor="middle">\d\d:\d\d', svg)) <= 6


def test_time_ticks_are_round_and_few() -> None:
    ticks = time_ticks(T0, T0 + dt.timedelta(hours=1))
    assert 2 <= len(ticks) <= 6 and all(t.second == 0 and t.minute % 15 == 0 for t in ticks)
    days = time_ticks(T0, T0 + dt.timedelta(days=90))
    assert 2 <= len(days) <= 6


def test_series_restart_in_each_period() -> None:
    points = (
        (dt.datetime(2026, 11, 30, tzinfo=dt.UTC), 0.5),
        (dt.datetime(2026, 12, 1, tzinfo=dt.UTC), 0.7),
        (dt.datetime(2026, 12, 2, tzinfo=dt.UTC), 1.0),
    )
    december = in_period(Series("p", "d", points), "month:2026-12", 2.0)
    assert [round(v, 9) for _, v in december.points] == [0.2, 0.5] and december.cap == 2.0


def test_budget_series_is_cumulative_per_party_and_dataset() -> None:
    at = "2026-01-01T00:00:0{}+00:00"
    events = [
        {
            "seq": i,
            "action": "request.released",
            "subject": f"rq-{i}",
            "at": at.format(i),
            "details": {"receipt": {"budget_spent": {"d": {"epsilon": eps}}}},
        }
        for i, eps in enumerate([0.1, 0.2, 0.3])
    ] + [
        {
            "seq": 9,
            "action": "request.refused",
            "subject": "rq-9",
            "at": at.format(9),
            "details": {},
        }
    ]
    owners = {"rq-0": "bank", "rq-1": "other", "rq-2": "bank"}
    series = budget_series(events, owners)
    assert [(s.party, [round(v, 6) for _, v in s.points]) for s in series] == [
        ("bank", [0.1, 0.4]),
        ("other", [0.2]),
    ]
    hostile = Series("<script>", "d", ((T0, 1.0),))
    assert "<script>" not in svg_chart(hostile)
    assert "No privacy budget" in svg_chart(Series("p", "d", ()))


def test_paging_clamps_and_keeps_the_filters() -> None:
    listing = paged(list(range(120)), "9", 50, {"actor": "bank"})
    assert (listing.number, listing.pages, list(listing.items)) == (3, 3, list(range(100, 120)))
    assert listing.link(2) == "?actor=bank&page=2"
    assert paged([], "x", 50, {}).pages == 1
