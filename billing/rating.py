"""Pure rating: usage + catalog + coupons → invoice (DESIGN.md §4.1, rule by rule).

No I/O, no clock, no randomness: the same scenario always gives the same
invoice, so a draft can be recomputed and compared before a card is charged.
The appliance's month close builds a :class:`~billing.scenario.Scenario` from
its recorded entitlement intervals and calls :func:`rate`; the helpers below
are public so it can also show partial figures (minutes so far, a line).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from typing import NamedTuple

from billing.checks import check_scenario
from billing.invoice import (
    Discount,
    FlatLine,
    Invoice,
    Line,
    NotApplied,
    OnDemandLine,
    SkipReason,
    Status,
)
from billing.money import CURRENCIES, Currency, floor, percent_of, plain_decimal, round_half_up
from billing.period import Period, micros
from billing.scenario import Coupon, FlatPlan, FlatPurchase, OnDemandTier, Scenario, UsageInterval

_MINUTE_US = 60_000_000


def rate(scenario: Scenario) -> Invoice:
    """The invoice for ``scenario``'s period; BillingInputError if the scenario is bad."""
    period = check_scenario(scenario)
    cur = CURRENCIES[scenario.currency]
    lines: list[Line] = [
        *on_demand_lines(scenario.on_demand, scenario.catalog.on_demand, period),
        *flat_lines(scenario.flat, scenario.catalog.flat, period),
    ]
    subtotal = sum(line.amount for line in lines)  # rule 5
    coupons = apply_coupons(
        scenario.coupons, scenario.coupons_used, lines, period, scenario.currency
    )
    # Rule 7: credit only covers what coupons leave; the rest stays for later months.
    credit_applied = min(scenario.credit_balance, coupons.remaining)
    net = coupons.remaining - credit_applied
    tax = floor(percent_of(net, scenario.tax_rate))  # rule 8: once, on the invoice
    total = net + tax + scenario.carried_forward  # rule 9
    status, carried_forward = settle(total, cur)
    return Invoice(
        currency=scenario.currency,
        period=period.label,
        lines=lines,
        subtotal=subtotal,
        discounts=coupons.discounts,
        not_applied=coupons.not_applied,
        credit_applied=credit_applied,
        credit_remaining=scenario.credit_balance - credit_applied,
        net=net,
        tax=tax,
        previous_balance=scenario.carried_forward,
        total=total,
        status=status,
        carried_forward=carried_forward,
        timezone=scenario.timezone,
        period_start=period.start,
        period_end=period.end,
        tax_rate=plain_decimal(scenario.tax_rate),
        minimum_charge=cur.minimum_charge,
    )


def active_minutes(intervals: Iterable[tuple[datetime, datetime]], period: Period) -> int:
    """Rule 2: minutes of the union of ``[start, end)`` intervals inside the period.

    Overlaps count once (two runs on one tier at the same time use one tier);
    the union's total seconds are rounded up to whole minutes once, not per run.
    """
    low, high = micros(period.start), micros(period.end)
    total, reach = 0, low
    # In start order, each interval adds only what lies beyond everything before it.
    for start, end in sorted((micros(start), micros(end)) for start, end in intervals):
        start, end = max(start, reach), min(end, high)
        if end > start:
            total += end - start
            reach = end
    return -(-total // _MINUTE_US)


def on_demand_lines(
    usage: Sequence[UsageInterval], tiers: Mapping[str, OnDemandTier], period: Period
) -> list[OnDemandLine]:
    """Rule 2 per tier, rule 4 (no 0 line), rule 10 (by tier name)."""
    by_tier: dict[str, list[tuple[datetime, datetime]]] = {}
    for use in usage:
        by_tier.setdefault(use.tier, []).append((use.start, use.end))
    lines = []
    for name in sorted(by_tier):
        minutes = active_minutes(by_tier[name], period)
        hourly = tiers[name].hourly
        amount = round_half_up(Fraction(minutes * hourly, 60))
        if amount > 0:
            lines.append(
                OnDemandLine(item=name, quantity_minutes=minutes, amount=amount, hourly=hourly)
            )
    return lines


def flat_lines(
    purchases: Sequence[FlatPurchase], plans: Mapping[str, FlatPlan], period: Period
) -> list[FlatLine]:
    """Rule 3: a plan costs its price in the period its window starts; rule 10 order."""
    low, high = micros(period.start), micros(period.end)
    starting = [
        (micros(buy.start), buy.plan, i, buy)
        for i, buy in enumerate(purchases)
        if low <= micros(buy.start) < high and plans[buy.plan].price > 0
    ]
    return [
        FlatLine(item=plan, amount=plans[plan].price, start=buy.start.astimezone(period.zone))
        for _, plan, _, buy in sorted(starting, key=lambda row: row[:3])
    ]


class CouponOutcome(NamedTuple):
    discounts: list[Discount]
    not_applied: list[NotApplied]
    remaining: int
    """Subtotal less every discount."""


def apply_coupons(
    coupons: Sequence[Coupon],
    coupons_used: Mapping[str, int],
    lines: Sequence[Line],
    period: Period,
    currency: str,
) -> CouponOutcome:
    """Rule 6: percent-off in listed order, then amount-off by redemption time."""
    subtotal = sum(line.amount for line in lines)
    eligible_for = {
        "all": subtotal,
        "on_demand": sum(line.amount for line in lines if isinstance(line, OnDemandLine)),
        "flat": sum(line.amount for line in lines if isinstance(line, FlatLine)),
    }
    skipped: dict[int, NotApplied] = {}
    usable: list[tuple[int, Coupon]] = []
    for i, coupon in enumerate(coupons):
        why = skip_reason(coupon, coupons_used.get(coupon.code, 0), period, currency)
        if why is None:
            usable.append((i, coupon))
        else:
            skipped[i] = NotApplied(code=coupon.code, reason=why[0], detail=why[1])
    percent = [(i, c) for i, c in usable if c.percent_off is not None]
    amount = sorted(
        ((i, c) for i, c in usable if c.amount_off is not None),
        key=lambda row: (micros(row[1].redeemed_at), row[0]),
    )
    remaining = subtotal
    discounts = []
    for i, coupon in percent + amount:
        eligible = eligible_for[coupon.applies_to]
        if coupon.percent_off is not None:
            offered = round_half_up(percent_of(eligible, coupon.percent_off))
        else:
            offered = min(coupon.amount_off or 0, eligible)
        given = min(offered, remaining)
        if given > 0:
            discounts.append(Discount(code=coupon.code, amount=given, applies_to=coupon.applies_to))
            remaining -= given
        else:
            # A coupon that took nothing is reported, not listed at 0: the appliance
            # counts a `once` coupon as used only when it appears in `discounts`.
            skipped[i] = _took_nothing(coupon, eligible, remaining)
    return CouponOutcome(discounts, [skipped[i] for i in sorted(skipped)], remaining)


def skip_reason(
    coupon: Coupon, times_used: int, period: Period, currency: str
) -> tuple[SkipReason, str] | None:
    """Why rule 6 skips ``coupon`` for ``period`` (reason, detail), or None."""
    if micros(coupon.redeemed_at) >= micros(period.end):
        return (
            "redeemed_after_period",
            f"redeemed {coupon.redeemed_at.isoformat()}, at or after the period's end "
            f"{period.end.isoformat()}",
        )
    if coupon.amount_off is not None and coupon.currency != currency:
        return (
            "currency_mismatch",
            f"amount_off is in {coupon.currency}; this invoice is in {currency}",
        )
    if coupon.duration == "once" and times_used > 0:
        return ("already_used", f"a once coupon, already applied to {times_used} invoice(s)")
    if coupon.duration == "repeating" and coupon.months is not None:
        first = period.month_index_of(coupon.redeemed_at)
        if period.index - first >= coupon.months:
            last_year, last_month = divmod(first + coupon.months - 1, 12)
            return (
                "expired",
                f"covered {coupon.months} month(s), the last being "
                f"{last_year:04d}-{last_month + 1:02d}",
            )
    return None


def _took_nothing(coupon: Coupon, eligible: int, remaining: int) -> NotApplied:
    if eligible == 0:
        what = "lines" if coupon.applies_to == "all" else f"{coupon.applies_to} lines"
        return NotApplied(
            code=coupon.code, reason="nothing_eligible", detail=f"this invoice has no {what}"
        )
    if remaining == 0:
        return NotApplied(
            code=coupon.code,
            reason="nothing_remaining",
            detail="earlier discounts already cover the whole subtotal",
        )
    return NotApplied(
        code=coupon.code,
        reason="rounds_to_zero",
        detail=f"{coupon.percent_off}% of {eligible} rounds to 0",
    )


def settle(total: int, cur: Currency) -> tuple[Status, int]:
    """Rule 9: (status, carried_forward) for a total due."""
    if total == 0:
        return "nothing_due", 0
    if total < cur.minimum_charge:
        return "below_minimum", total
    return "chargeable", 0
