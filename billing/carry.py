"""Rounding once per month when a month is billed in parts (early closes, then the close).

Rule 2 of DESIGN §4.1 rounds a tier's seconds up to whole minutes once per
invoice. A month billed as several invoices (an admin's "charge now", a draft
closed early, then the month close) would round up once per invoice and bill
more than one month close. So the appliance hands the rating, per tier, only
the slice of the month's usage no earlier invoice billed, cut so that:

- an early close bills whole *billing units* only: the fewest whole minutes
  whose price is a whole minor unit (``60 / gcd(hourly, 60)`` minutes: 1 at
  120 per hour, 3 at 200 per hour), rounded down; the rest of its usage is
  carried to the next close;
- the month's final close bills the rest, rounded up by rule 2.

The minutes of all invoices of a month then add up to ``ceil(seconds / 60)``
of the month's union, and their On-Demand amounts to the single close's
``round_half_up(minutes * hourly / 60)``, exactly. The slices are real usage
(cut at the instants the carried amount of usage ends), so every stored
scenario still rates to its invoice by §4.1 unchanged: this module chooses the
input, never the rules. Pure, like :mod:`billing.rating`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

import msgspec

from billing.invoice import Invoice, OnDemandLine
from billing.period import Period, load_zone, micros, parse_month
from billing.scenario import Scenario, UsageInterval

_MINUTE_US = 60_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def unit_minutes(hourly: int) -> int:
    """The fewest whole minutes that cost a whole minor unit at ``hourly`` per hour."""
    return 60 // math.gcd(hourly, 60) if hourly > 0 else 1


def billed_minutes(invoices: Iterable[Invoice]) -> dict[str, int]:
    """Per tier, the minutes earlier invoices of the month billed (their On-Demand lines)."""
    out: dict[str, int] = {}
    for inv in invoices:
        for line in inv.lines:
            if isinstance(line, OnDemandLine):
                out[line.item] = out.get(line.item, 0) + line.quantity_minutes
    return out


def union(spans: Iterable[tuple[int, int]], low: int, high: int) -> list[tuple[int, int]]:
    """The union of ``[start, end)`` microsecond spans clipped to ``[low, high)``, in order."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        start, end = max(start, low), min(end, high)
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def cut(spans: Sequence[tuple[int, int]], skip: int, take: int) -> list[tuple[int, int]]:
    """The part of ``spans`` from ``skip`` to ``skip + take`` microseconds of their length."""
    out, seen = [], 0
    for start, end in spans:
        length = end - start
        lo, hi = max(skip - seen, 0), min(skip + take - seen, length)
        if hi > lo:
            out.append((start + lo, start + hi))
        seen += length
    return out


def billable(
    usage: Sequence[UsageInterval],
    *,
    period_start: datetime,
    upto: datetime,
    billed: Mapping[str, int],
    hourly: Mapping[str, int],
    final: bool,
) -> list[UsageInterval]:
    """The usage a close up to ``upto`` bills, per tier after the ``billed`` minutes.

    ``final``: the month's close (the rest, rounded up by the rating); otherwise an
    early close (whole billing units only, the remainder carried).
    """
    low, high = micros(period_start), micros(upto)
    by_tier: dict[str, list[tuple[int, int]]] = {}
    for use in usage:
        by_tier.setdefault(use.tier, []).append((micros(use.start), micros(use.end)))
    zone = period_start.tzinfo or UTC
    out = []
    for tier in sorted(by_tier):
        spans = union(by_tier[tier], low, high)
        used = sum(end - start for start, end in spans)
        done = billed.get(tier, 0)
        if final:
            take = used - done * _MINUTE_US
        elif hourly.get(tier, 0) <= 0:
            take = 0  # free: nothing to bill early, and no line would record it
        else:
            unit = unit_minutes(hourly[tier])
            whole = used // _MINUTE_US - done
            take = (whole // unit) * unit * _MINUTE_US if whole > 0 else 0
        for start, end in cut(spans, done * _MINUTE_US, max(take, 0)):
            out.append(
                UsageInterval(tier=tier, start=_instant(start, zone), end=_instant(end, zone))
            )
    return out


def for_close(
    scenario: Scenario,
    *,
    covered_from: datetime,
    upto: datetime,
    billed: Mapping[str, int],
    final: bool,
) -> Scenario:
    """``scenario`` (the month's usage from its first day up to ``upto``) as one close rates it.

    On-Demand usage: :func:`billable`. Flat plans: those starting in
    ``[covered_from, upto)`` (earlier ones were billed by an earlier close).
    """
    year, month = parse_month(scenario.period)
    start = Period(year, month, load_zone(scenario.timezone)).start
    hourly = {name: tier.hourly for name, tier in scenario.catalog.on_demand.items()}
    low, high = micros(covered_from), micros(upto)
    return msgspec.structs.replace(
        scenario,
        on_demand=billable(
            scenario.on_demand,
            period_start=start,
            upto=upto,
            billed=billed,
            hourly=hourly,
            final=final,
        ),
        flat=[buy for buy in scenario.flat if low <= micros(buy.start) < high],
    )


def _instant(us: int, zone: tzinfo) -> datetime:
    return (_EPOCH + timedelta(microseconds=us)).astimezone(zone)
