"""Invoices, quotes, the billing account, coupons and credits, and the Stripe-facing pages.

Money is integers in the currency's minor unit (JPY yen, USD cents). Times are ISO 8601
strings in the org's billing time zone, as the appliance has always sent them.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Number = Annotated[
    int | float,
    msgspec.Meta(extra_json_schema={"extra": {"one_of": None, "type": "number"}}),
]
"""A JSON number kept as written (``10`` stays ``10``, ``8.5`` stays ``8.5``); documented
as one ``number``, since ``oneOf: [integer, number]`` would refuse every integer."""

# --- the rated invoice (billing/invoice.py's JSON, DESIGN §4.1 "Output") -----------------


class OnDemandLine(msgspec.Struct, kw_only=True, tag_field="kind", tag="on_demand"):
    item: str
    """The tier name."""
    quantity_minutes: int
    amount: int
    hourly: int
    """The tier's price per hour the amount was computed from."""


class FlatLine(msgspec.Struct, kw_only=True, tag_field="kind", tag="flat"):
    item: str
    """The plan name."""
    amount: int
    start: str
    """When the plan's window starts, in the billing time zone."""


Line = OnDemandLine | FlatLine


class Discount(msgspec.Struct, kw_only=True):
    code: str
    amount: int
    applies_to: str


class NotApplied(msgspec.Struct, kw_only=True):
    code: str
    reason: str
    """Stable, for scripts (``expired``, ``currency_mismatch``, ...)."""
    detail: str
    """For people."""


class RatedInvoice(msgspec.Struct, kw_only=True):
    """What billing's ``rate`` computed; the same fields, in the same order, as
    ``billing.invoice.Invoice`` (a test keeps the two in step)."""

    currency: str
    period: str
    lines: list[Line]
    subtotal: int
    discounts: list[Discount]
    """In the order they were applied; only coupons that took something off."""
    not_applied: list[NotApplied]
    """In the order the coupons were listed."""
    credit_applied: int
    credit_remaining: int
    net: int
    tax: int
    previous_balance: int
    total: int
    status: str
    """``nothing_due``, ``below_minimum`` or ``chargeable``."""
    carried_forward: int
    timezone: str
    period_start: str
    period_end: str
    """Exclusive."""
    tax_rate: Number
    """Percent (10 is 10%): a JSON number, exactly as billing wrote it."""
    minimum_charge: int


class Quote(RatedInvoice, kw_only=True):
    """The invoice the month close would draft if the month ended now (nothing stored)."""

    as_of: str
    covered_from: str
    """Where this quote starts: the period's start, or the end of an early close."""


# --- stored invoices ----------------------------------------------------------------------


class Adjustment(msgspec.Struct, kw_only=True):
    amount: int
    reason: str
    by: str
    at: str


class InvoiceSummary(msgspec.Struct, kw_only=True):
    """An invoice as the list shows it (no document)."""

    id: int
    number: str
    org_id: int
    org: str
    period: str
    part: int
    """0 for the month close; 1, 2, ... for early closes in the same month."""
    early: bool
    covered_from: str | None
    covered_to: str | None
    mode: str
    """Stripe mode the invoice was made in: ``test`` or ``live``."""
    currency: str
    status: str
    """draft, approved, paid, failed, requires_action, void, refunded."""
    total: int
    attempts: int
    next_retry_at: str | None
    last_error: str | None
    action_url: str | None
    payment_intent: str | None
    refunded: int
    created_at: str | None
    approved_at: str | None
    approved_by: str | None
    paid_at: str | None


class InvoiceDoc(InvoiceSummary, kw_only=True):
    """An invoice with its rated document and the admins' adjustments."""

    invoice: RatedInvoice
    adjustments: list[Adjustment]


class CloseResult(msgspec.Struct, kw_only=True):
    closed: int
    invoices: int
    skipped: int


# --- account, coupons, credit -------------------------------------------------------------


class RedeemedCoupon(msgspec.Struct, kw_only=True):
    code: str
    redeemed_at: str | None
    uses: int
    """Invoices it already applied to."""


class Account(msgspec.Struct, kw_only=True):
    org_id: int
    org: str
    currency: str
    timezone: str
    mode: str
    """The org's Stripe mode."""
    appliance_mode: str | None
    """The appliance's Stripe mode (null where the answer is not GET /api/v1/billing)."""
    credit_balance: int
    carried_balance: int
    card: str | None
    customer: str | None
    coupons: list[RedeemedCoupon]


class Coupon(msgspec.Struct, kw_only=True):
    """A coupon; a superuser's list adds ``orgs`` and ``redemptions``, an org's own list
    adds when it redeemed it (``redeemed_at``, ``uses``)."""

    code: str
    percent_off: str | None
    """A normalised decimal as stored (``"1E+1"`` is 10)."""
    amount_off: int | None
    currency: str | None
    applies_to: str
    duration: str
    months: int | None
    orgs: list[str] | msgspec.UnsetType | None = msgspec.UNSET
    """The only orgs that may redeem it (null: every org)."""
    redemptions: int | msgspec.UnsetType = msgspec.UNSET
    redeemed_at: str | msgspec.UnsetType | None = msgspec.UNSET
    uses: int | msgspec.UnsetType = msgspec.UNSET


# --- card registration, payment pages, webhook --------------------------------------------


class CardLink(msgspec.Struct, kw_only=True):
    url: str
    mode: str
    expires_in_days: int
    customer: str


class CardSetup(msgspec.Struct, kw_only=True):
    org: str
    mode: str
    setup_intent: str
    client_secret: str | None
    publishable_key: str
    card: str | None


class CardSaved(msgspec.Struct, kw_only=True):
    card: str
    mode: str


class PayPage(msgspec.Struct, kw_only=True):
    invoice: str
    """The invoice number."""
    status: str
    total: int
    currency: str
    publishable_key: str
    client_secret: str | None
    """Only while the bank waits for the customer (requires_action)."""
    payment_method: str | None


class PayResult(msgspec.Struct, kw_only=True):
    invoice: str
    status: str


class WebhookAck(msgspec.Struct, kw_only=True):
    received: bool
    duplicate: bool
    ignored: str | msgspec.UnsetType = msgspec.UNSET
    """Why a signed event that does not fit changed nothing."""
