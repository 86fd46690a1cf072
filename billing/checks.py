"""Value rules of a scenario: ranges, references between fields, coupon shapes.

Run on every scenario, decoded (:func:`decode_scenario`, here so that the schemas in
:mod:`billing.scenario` need nothing of this module) or built in Python by the appliance,
so a month close and a quote refuse the same inputs. The first problem found, in document
order, is raised as a BillingInputError naming its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import NoReturn

from billing import strict_json
from billing.errors import BillingInputError, shown
from billing.money import CURRENCIES
from billing.period import FIRST_YEAR, LAST_YEAR, Period, load_zone, parse_month
from billing.scenario import CHOICES, Catalog, Coupon, Scenario
from billing.strict_json import render_path

# Rates with more digits than this are typos, and would make exact fractions huge.
_MAX_DECIMAL_PLACES = 6
_QUANTUM = Decimal(1).scaleb(-_MAX_DECIMAL_PLACES)
_MAX_LISTED = 10  # known names quoted in an "unknown tier" message


def decode_scenario(raw: bytes) -> Scenario:
    """Parse and check a scenario JSON document.

    Raises :class:`~billing.errors.BillingInputError` naming the first bad field,
    and nothing else, whatever the bytes are.
    """
    scenario = strict_json.decode(raw, Scenario, CHOICES)
    check_scenario(scenario)
    return scenario


def check_scenario(s: Scenario) -> Period:
    """Raise BillingInputError for the first bad field; return the billed period."""
    if s.currency not in CURRENCIES:
        _fail("currency", f"must be one of {', '.join(CURRENCIES)}, got {shown(s.currency)}")
    try:
        year, month = parse_month(s.period)
    except ValueError as exc:
        raise BillingInputError("period", str(exc)) from None
    try:
        period = Period(year, month, load_zone(s.timezone))
    except ValueError as exc:
        raise BillingInputError("timezone", str(exc)) from None
    _percentage("tax_rate", s.tax_rate, allow_zero=True)
    if s.registered_at is not None:
        _moment("registered_at", s.registered_at)
    _catalog(s.catalog, s.currency)
    for i, use in enumerate(s.on_demand):
        where = f"on_demand[{i}]"
        if use.tier not in s.catalog.on_demand:
            _fail(f"{where}.tier", _unknown("On-Demand tier", use.tier, s.catalog.on_demand))
        _moment(f"{where}.start", use.start)
        _moment(f"{where}.end", use.end)
        if use.end < use.start:
            _fail(f"{where}.end", f"must not be before start ({use.start.isoformat()})")
    for i, buy in enumerate(s.flat):
        if buy.plan not in s.catalog.flat:
            _fail(f"flat[{i}].plan", _unknown("flat plan", buy.plan, s.catalog.flat))
        _moment(f"flat[{i}].start", buy.start)
    first_index: dict[str, int] = {}
    for i, coupon in enumerate(s.coupons):
        _coupon(f"coupons[{i}]", coupon)
        if coupon.code in first_index:
            earlier = first_index[coupon.code]
            _fail(f"coupons[{i}].code", f"{shown(coupon.code)} is already coupons[{earlier}]")
        first_index[coupon.code] = i
    for code, count in s.coupons_used.items():
        _at_least(render_path(["coupons_used", code]), count, 0)
    _at_least("credit_balance", s.credit_balance, 0)
    _at_least("carried_forward", s.carried_forward, 0)
    return period


def _catalog(catalog: Catalog, currency: str) -> None:
    if catalog.currency is not None and catalog.currency != currency:
        _fail(
            "catalog.currency",
            f"{catalog.currency} prices cannot bill a {currency} invoice (never converted)",
        )
    # Paths are rendered only for an entry that fails: a month close checks the
    # same few dozen good entries for every org it rates.
    for name, tier in catalog.on_demand.items():
        if name.strip() and tier.capacity >= 1 and tier.hourly >= 0:
            continue
        where = ["catalog", "on_demand", name]
        _name(render_path(where), name)
        _at_least(render_path([*where, "capacity"]), tier.capacity, 1)
        _at_least(render_path([*where, "hourly"]), tier.hourly, 0)
    for name, plan in catalog.flat.items():
        if name.strip() and plan.capacity >= 1 and plan.days >= 1 and plan.price >= 0:
            continue
        where = ["catalog", "flat", name]
        _name(render_path(where), name)
        _at_least(render_path([*where, "capacity"]), plan.capacity, 1)
        _at_least(render_path([*where, "days"]), plan.days, 1)
        _at_least(render_path([*where, "price"]), plan.price, 0)
    if catalog.free_tier is not None:
        _at_least("catalog.free_tier.capacity", catalog.free_tier.capacity, 1)
        _at_least("catalog.free_tier.days", catalog.free_tier.days, 1)


def _coupon(where: str, c: Coupon) -> None:
    _name(f"{where}.code", c.code)
    if (c.percent_off is None) == (c.amount_off is None):
        _fail(where, "needs exactly one of percent_off or amount_off")
    if c.percent_off is not None:
        _percentage(f"{where}.percent_off", c.percent_off, allow_zero=False)
        if c.currency is not None:
            _fail(f"{where}.currency", "only an amount_off coupon has a currency")
    if c.amount_off is not None:
        _at_least(f"{where}.amount_off", c.amount_off, 1)
        if c.currency is None:
            _fail(f"{where}.currency", "is required with amount_off")
        if c.currency not in CURRENCIES:
            _fail(f"{where}.currency", f"must be one of {', '.join(CURRENCIES)}")
    if c.duration == "repeating":
        if c.months is None:
            _fail(f"{where}.months", "is required for a repeating coupon")
        _at_least(f"{where}.months", c.months, 1)
    elif c.months is not None:
        _fail(f"{where}.months", f"only a repeating coupon has months (this one is {c.duration})")
    _moment(f"{where}.redeemed_at", c.redeemed_at)


def _percentage(where: str, value: Decimal, *, allow_zero: bool) -> None:
    if not value.is_finite():
        _fail(where, "must be a finite number")
    if allow_zero and not 0 <= value <= 100:
        _fail(where, f"must be between 0 and 100, got {shown(value)}")
    if not allow_zero and not 0 < value <= 100:
        _fail(where, f"must be more than 0 and at most 100, got {shown(value)}")
    # Compared after quantizing, not via normalize(): that underflows 1E-999999999
    # to 0, and the exact fraction of such a value would take forever to compute.
    if value.quantize(_QUANTUM, rounding=ROUND_DOWN) != value:
        _fail(where, f"must have at most {_MAX_DECIMAL_PLACES} decimal places")


def _moment(where: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        _fail(where, "must include a UTC offset, e.g. 2026-10-01T00:00:00+09:00 or ...Z")
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        _fail(where, f"year must be between {FIRST_YEAR} and {LAST_YEAR}")


def _at_least(where: str, value: int, low: int) -> None:
    if value < low:
        _fail(where, f"must be >= {low}, got {shown(value)}")


def _name(where: str, name: str) -> None:
    if not name.strip():
        _fail(where, "must not be empty")


def _unknown(what: str, name: str, known: Mapping[str, object]) -> str:
    if not known:
        return f"unknown {what} {shown(name)}: the catalog has none"
    names = sorted(known)
    listed = ", ".join(shown(n, 20).strip("'") for n in names[:_MAX_LISTED])
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return f"unknown {what} {shown(name)} (catalog has: {listed}{more})"


def _fail(where: str, message: str) -> NoReturn:
    raise BillingInputError(where, message)
