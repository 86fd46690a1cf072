"""Rounding once per month: a month billed in parts bills what one month close would.

The property: for random usage (several tiers, overlapping runs, sub-second
edges, runs crossing the month's bounds), random flat-plan starts and random
early-close times, the invoices of the month (each early close, then the month
close, every one rated by §4.1 from what :func:`billing.carry.for_close` hands
it) add up, per tier in minutes and amounts and in what is charged, exactly to
the single invoice a month close of the same usage gives.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import carry, rate
from billing.invoice import FlatLine, Invoice, OnDemandLine
from billing.period import Period
from billing.rating import active_minutes
from billing.scenario import Catalog, FlatPlan, FlatPurchase, OnDemandTier, Scenario, UsageInterval

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZONES = ("Asia/Tokyo", "UTC", "America/New_York", "Australia/Lord_Howe")
TIERS = ("cn10", "cn20", "cn50")


def minutes(inv: Invoice) -> dict[str, int]:
    return {ln.item: ln.quantity_minutes for ln in inv.lines if isinstance(ln, OnDemandLine)}


def amounts(inv: Invoice) -> dict[str, int]:
    return {ln.item: ln.amount for ln in inv.lines if isinstance(ln, OnDemandLine)}


def add(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    return {k: total.get(k, 0) + more.get(k, 0) for k in total.keys() | more.keys()}


def period_of(month: Scenario) -> Period:
    return Period(int(month.period[:4]), int(month.period[5:]), ZoneInfo(month.timezone))


def rated_minutes(scenario: Scenario) -> dict[str, int]:
    """Rule 2's minutes per tier, shown on a line or not (rule 4 hides a 0 amount)."""
    period = period_of(scenario)
    tiers = {u.tier for u in scenario.on_demand}
    return {
        t: active_minutes([(u.start, u.end) for u in scenario.on_demand if u.tier == t], period)
        for t in tiers
    }


def closes_of(month: Scenario, closes: list[datetime]) -> list[Scenario]:
    """What each close rates: early closes at ``closes``, then the month close, the way
    appliance/invoices runs them (each one's carried balance is the next one's, and
    what each billed is known to the next)."""
    period = period_of(month)
    parts: list[Invoice] = []
    scenarios = []
    covered_from, carried = period.start, 0
    for upto, final in [*((t, False) for t in closes), (period.end, True)]:
        one = carry.for_close(
            msgspec.structs.replace(month, carried_forward=carried),
            covered_from=covered_from,
            upto=upto,
            billed=carry.billed_minutes(parts),
            final=final,
        )
        rated = rate(one)
        scenarios.append(one)
        parts.append(rated)
        covered_from, carried = upto, rated.carried_forward
    return scenarios


def billed_in_parts(month: Scenario, closes: list[datetime]) -> list[Invoice]:
    return [rate(one) for one in closes_of(month, closes)]


@st.composite
def months(draw: st.DrawFn) -> tuple[Scenario, list[datetime]]:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    month = draw(st.integers(1, 12))
    period = Period(2026, month, zone)
    length = int((period.end - period.start).total_seconds())
    tiers = draw(st.lists(st.sampled_from(TIERS), min_size=1, max_size=3, unique=True))
    # Prices whose minute is a whole unit (120/h), a third (200/h), 1/60 (7/h), or free.
    prices = st.sampled_from((120, 200, 100, 170, 7, 61, 0, 27_000))
    catalog = Catalog(
        on_demand={t: OnDemandTier(capacity=10, hourly=draw(prices)) for t in tiers},
        flat={"flat10-30d": FlatPlan(capacity=10, days=30, price=draw(st.integers(0, 30_000)))},
    )

    def moment(low: int, high: int) -> datetime:
        # Whole seconds plus a few microseconds: sub-minute and sub-second edges both.
        us = draw(st.integers(0, 999_999)) if draw(st.booleans()) else 0
        return period.start + timedelta(seconds=draw(st.integers(low, high)), microseconds=us)

    usage = []
    for _ in range(draw(st.integers(0, 8))):
        start = moment(-86_400, length + 3_600)
        run = timedelta(
            seconds=draw(st.integers(0, 6 * 3_600)), microseconds=draw(st.integers(0, 999_999))
        )
        usage.append(UsageInterval(tier=draw(st.sampled_from(tiers)), start=start, end=start + run))
    flat = [
        FlatPurchase(plan="flat10-30d", start=moment(0, length - 1))
        for _ in range(draw(st.integers(0, 2)))
    ]
    closes = sorted({moment(1, length - 1) for _ in range(draw(st.integers(0, 5)))})
    scenario = Scenario(
        currency=draw(st.sampled_from(("JPY", "USD"))),
        period=period.label,
        timezone=str(zone),
        tax_rate=Decimal(0),
        catalog=catalog,
        on_demand=usage,
        flat=flat,
    )
    return scenario, closes


@PROPERTY
@given(months())
def test_a_month_billed_in_parts_bills_what_one_month_close_bills(case) -> None:
    month, closes = case
    single = rate(month)
    each = closes_of(month, closes)
    parts = [rate(one) for one in each]

    got_minutes: dict[str, int] = {}
    got_amounts: dict[str, int] = {}
    for one, inv in zip(each, parts, strict=True):
        got_minutes = add(got_minutes, rated_minutes(one))
        got_amounts = add(got_amounts, amounts(inv))
    want = {k: v for k, v in rated_minutes(month).items() if v}
    assert {k: v for k, v in got_minutes.items() if v} == want
    assert {k: v for k, v in got_amounts.items() if v} == amounts(single)
    assert sum(inv.subtotal for inv in parts) == single.subtotal
    flats = [ln.start for inv in parts for ln in inv.lines if isinstance(ln, FlatLine)]
    assert sorted(flats) == sorted(ln.start for ln in single.lines if isinstance(ln, FlatLine))
    # What is billed: every chargeable total, and what the last one carries to next month
    # (a month close's rest may fall below the minimum charge where the whole would not).
    charged = sum(inv.total for inv in parts if inv.status == "chargeable")
    assert charged + parts[-1].carried_forward == single.total


@PROPERTY
@given(months())
def test_an_early_close_bills_whole_units_and_never_more_than_was_used(case) -> None:
    month, closes = case
    parts = billed_in_parts(month, closes)
    hourly = {name: tier.hourly for name, tier in month.catalog.on_demand.items()}
    for inv in parts[:-1]:
        for line in inv.lines:
            if isinstance(line, OnDemandLine):
                assert line.quantity_minutes % carry.unit_minutes(hourly[line.item]) == 0
                assert line.amount * 60 == line.quantity_minutes * hourly[line.item]


@PROPERTY
@given(months())
def test_one_close_of_the_whole_month_is_rule_2_unchanged(case) -> None:
    month, _ = case
    period = period_of(month)
    whole = carry.for_close(
        month, covered_from=period.start, upto=period.end, billed={}, final=True
    )
    assert rate(whole) == rate(month)


# --- the story behind it ------------------------------------------------------------------

TOKYO = ZoneInfo("Asia/Tokyo")
OCT = datetime(2026, 10, 1, tzinfo=TOKYO)


def cn20_month(*runs: tuple[timedelta, timedelta]) -> Scenario:
    return Scenario(
        currency="JPY",
        period="2026-10",
        timezone="Asia/Tokyo",
        tax_rate=Decimal(0),
        catalog=Catalog(on_demand={"cn20": OnDemandTier(capacity=20, hourly=200)}),
        on_demand=[UsageInterval(tier="cn20", start=OCT + a, end=OCT + b) for a, b in runs],
    )


def clipped(month: Scenario, low: datetime, high: datetime) -> Scenario:
    """The month's usage inside ``[low, high)``: what an early close used to rate."""
    inside = [
        UsageInterval(tier=u.tier, start=max(u.start, low), end=min(u.end, high))
        for u in month.on_demand
        if min(u.end, high) > max(u.start, low)
    ]
    return msgspec.structs.replace(month, on_demand=inside)


def test_charging_now_three_times_used_to_bill_more_than_the_month_close() -> None:
    """Three runs of 61 s, charged after each: 183 s of use is 4 minutes, not 3 x 2."""
    s = timedelta(seconds=1)
    month = cn20_month((0 * s, 61 * s), (100 * s, 161 * s), (200 * s, 261 * s))
    closes = [OCT + 90 * s, OCT + 190 * s, OCT + 300 * s]
    bounds = [OCT, *closes, datetime(2026, 11, 1, tzinfo=TOKYO)]
    rounded_per_close = [rate(clipped(month, a, b)) for a, b in itertools.pairwise(bounds)]
    assert [sum(minutes(p).values()) for p in rounded_per_close] == [2, 2, 2, 0]
    assert sum(p.subtotal for p in rounded_per_close) == 21  # 3 x round(2 min x 200/60)

    single = rate(month)
    assert (minutes(single), single.subtotal) == ({"cn20": 4}, 13)  # 13.33 yen
    parts = billed_in_parts(month, closes)
    # At 200 yen an hour a billing unit is 3 minutes: only the third early close has one;
    # the month close bills the 3 s left, rounded up once.
    assert [minutes(p) for p in parts] == [{}, {}, {"cn20": 3}, {"cn20": 1}]
    assert [p.subtotal for p in parts] == [0, 0, 10, 3]


def test_an_early_close_carries_the_part_minute_to_the_month_close() -> None:
    """cn20 for 3 h 0 min 30 s, charged at the end of it, then the month closes."""
    used = timedelta(hours=3, seconds=30)
    month = cn20_month((timedelta(hours=1), timedelta(hours=1) + used))
    first, last = billed_in_parts(month, [OCT + timedelta(hours=4, minutes=1)])
    assert (minutes(first), first.subtotal) == ({"cn20": 180}, 600)
    assert (minutes(last), last.subtotal) == ({"cn20": 1}, 3)  # the 30 s, rounded up once
    assert minutes(rate(month)) == {"cn20": 181}
    assert rate(month).subtotal == 603


def test_billing_units() -> None:
    assert [carry.unit_minutes(h) for h in (120, 200, 100, 170, 7, 0, 60, 90)] == [
        1, 3, 3, 6, 60, 1, 1, 2,
    ]  # fmt: skip
