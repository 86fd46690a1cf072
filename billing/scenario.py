"""The rating input ("scenario") of DESIGN.md §4.1, as strict msgspec schemas.

The same structs serve ``mockmock billing quote SCENARIO.json`` (decoded by
:func:`billing.checks.decode_scenario`) and the appliance's month close (built in Python from
recorded entitlement intervals and handed to :func:`billing.rating.rate`, which
re-runs :func:`billing.checks.check_scenario`). Unknown keys are rejected: in a
money document a misspelt ``credit_balanse`` silently ignored is a wrong bill.

Shapes and types are msgspec's job; value rules (ranges, references between
fields) live in :mod:`billing.checks` so both entry points apply the same ones.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal, get_args

import msgspec

CurrencyCode = Literal["JPY", "USD"]
AppliesTo = Literal["all", "on_demand", "flat"]
Duration = Literal["once", "repeating", "forever"]


class _Schema(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class OnDemandTier(_Schema, frozen=True, kw_only=True):
    capacity: int
    """Mocks admitted at once."""
    hourly: int
    """Price of one tier-hour, in minor units."""


class FlatPlan(_Schema, frozen=True, kw_only=True):
    capacity: int
    days: int
    """Length of the window; informational here (the price is due at its start)."""
    price: int


class FreeTier(_Schema, frozen=True, kw_only=True):
    capacity: int
    days: int


class Catalog(_Schema, frozen=True, kw_only=True):
    on_demand: dict[str, OnDemandTier] = {}
    flat: dict[str, FlatPlan] = {}
    free_tier: FreeTier | None = None
    currency: CurrencyCode | None = None
    """Optional guard: the currency these prices are in; must equal the invoice's."""


class UsageInterval(_Schema, frozen=True, kw_only=True):
    """One stretch during which an On-Demand tier was active (``[start, end)``)."""

    tier: str
    start: datetime
    end: datetime


class FlatPurchase(_Schema, frozen=True, kw_only=True):
    """A flat plan bought by the org; its price is due in the period its window starts."""

    plan: str
    start: datetime


class Coupon(_Schema, frozen=True, kw_only=True):
    code: str
    applies_to: AppliesTo
    duration: Duration
    redeemed_at: datetime
    percent_off: Decimal | None = None
    amount_off: int | None = None
    """In the minor unit of ``currency``."""
    currency: CurrencyCode | None = None
    months: int | None = None
    """How many calendar months a ``repeating`` coupon covers."""


class Scenario(_Schema, frozen=True, kw_only=True):
    currency: CurrencyCode
    period: str
    """The billed month, ``YYYY-MM``, in ``timezone``."""
    timezone: str
    """The account's billing time zone (IANA name)."""
    tax_rate: Decimal
    """A percentage, e.g. 10 or 8.875."""
    catalog: Catalog
    registered_at: datetime | None = None
    on_demand: list[UsageInterval] = []
    flat: list[FlatPurchase] = []
    coupons: list[Coupon] = []
    coupons_used: dict[str, int] = {}
    """Per coupon code, how many earlier invoices it already applied to."""
    credit_balance: int = 0
    carried_forward: int = 0
    """A below-minimum total from an earlier month, billed now."""


# Closed sets by field name, so msgspec's "Invalid enum value" can say what is allowed.
CHOICES: dict[str, tuple[str, ...]] = {
    "currency": get_args(CurrencyCode),
    "applies_to": get_args(AppliesTo),
    "duration": get_args(Duration),
}
