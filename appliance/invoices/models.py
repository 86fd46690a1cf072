"""Billing tables: invoices, month closes, the charge outbox, coupons, credits, Stripe links.

Created by their own migration step (appliance.db), not by ``models.ALL``.
Amounts are integers in the currency's minor unit; instants are naive UTC.
"""

from __future__ import annotations

import peewee as pw

from appliance.db import BaseModel
from appliance.models import Org, utcnow


class BillingAccount(BaseModel):
    """Per org: thank-you credit not yet used and a below-minimum total carried forward."""

    org = pw.ForeignKeyField(Org, unique=True, on_delete="CASCADE")
    credit_balance = pw.BigIntegerField(default=0)
    carried_balance = pw.BigIntegerField(default=0)

    class Meta:
        table_name = "billing_account"


class Invoice(BaseModel):
    """One invoice: a month close (part 0) or an early close (parts 1, 2, ...) of a period.

    ``status``: an :class:`~appliance.invoices.states.InvoiceStatus`, changed only by
    ``service.move`` along :data:`~appliance.invoices.states.INVOICE_MOVES`
    (draft → approved → charging → paid | failed | requires_action; void; ``carried``
    and ``settled`` are never charged).
    """

    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    number = pw.CharField(unique=True)
    period = pw.CharField()  # YYYY-MM in the org's billing time zone
    part = pw.IntegerField(default=0)  # 0: the month close; n: the nth early close
    covered_from = pw.DateTimeField()
    covered_to = pw.DateTimeField()
    mode = pw.CharField()  # test | live: the Stripe mode this invoice may be charged in
    currency = pw.CharField()
    status = pw.CharField(index=True)
    total = pw.BigIntegerField()
    document = pw.TextField()  # billing.invoice JSON (encode_invoice) of the current figures
    scenario = pw.TextField()  # the rating input, so a draft can be re-rated and explained
    adjustments = pw.TextField(default="[]")  # [{amount, reason, by, at}]
    attempts = pw.IntegerField(default=0)
    next_retry_at = pw.DateTimeField(null=True, index=True)
    last_error = pw.CharField(default="")  # decline code of the last failed attempt
    action_url = pw.CharField(default="")  # where the customer completes authentication
    payment_intent = pw.CharField(default="")
    refunded = pw.BigIntegerField(default=0)
    created_at = pw.DateTimeField(default=utcnow)
    approved_at = pw.DateTimeField(null=True)
    approved_by = pw.CharField(default="")
    paid_at = pw.DateTimeField(null=True)

    class Meta:
        table_name = "invoice"
        indexes = ((("org", "period", "part"), True),)


class PeriodClose(BaseModel):
    """The month close of an org and period happened (with or without an invoice)."""

    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    period = pw.CharField()
    outcome = pw.CharField()  # nothing_due | below_minimum | chargeable
    invoice_id = pw.IntegerField(null=True)
    closed_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "period_close"
        indexes = ((("org", "period"), True),)


class ChargeAttempt(BaseModel):
    """The outbox: written and committed BEFORE Stripe is called, updated after.

    ``state``: an :class:`~appliance.invoices.states.AttemptState`, changed only by
    ``payments.move_attempt`` along :data:`~appliance.invoices.states.ATTEMPT_MOVES`:
    pending (the call may or may not have reached Stripe) → succeeded | processing |
    requires_action | failed.
    """

    invoice = pw.ForeignKeyField(Invoice, on_delete="CASCADE")
    attempt = pw.IntegerField()
    idempotency_key = pw.CharField(unique=True)
    mode = pw.CharField()
    amount = pw.BigIntegerField()
    currency = pw.CharField()
    customer = pw.CharField()
    state = pw.CharField(default="pending", index=True)
    payment_intent = pw.CharField(default="", index=True)
    error_code = pw.CharField(default="")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "charge_attempt"
        indexes = ((("invoice", "attempt"), True),)


class StripeCustomer(BaseModel):
    """One Stripe Customer per org and mode, and its saved card."""

    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    mode = pw.CharField()
    customer = pw.CharField(default="")
    payment_method = pw.CharField(default="")
    card = pw.CharField(default="")  # "visa ****4242"
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "stripe_customer"
        indexes = ((("org", "mode"), True),)


class StripeEvent(BaseModel):
    """Webhook events already handled: the unique id makes redelivery a no-op."""

    event_id = pw.CharField(unique=True)
    type = pw.CharField()
    mode = pw.CharField()
    received_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "stripe_event"


LINK_DAYS = 7
"""How long a customer link is valid (the notices quote it)."""


class LinkToken(BaseModel):
    """A customer link (card page, payment confirmation); only the SHA-256 is stored."""

    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    purpose = pw.CharField()  # card | pay
    invoice_id = pw.IntegerField(null=True)
    token_hash = pw.CharField(unique=True)
    expires_at = pw.DateTimeField()
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "billing_link"


class Coupon(BaseModel):
    """A coupon of DESIGN §4.1: percent_off (decimal text) or amount_off in ``currency``.

    ``code`` is a secret like a promo code: an org sees only the coupons it redeemed.
    ``orgs`` (JSON list of org ids) limits who may redeem it; NULL: every org.
    """

    code = pw.CharField(unique=True)
    percent_off = pw.CharField(null=True)
    amount_off = pw.BigIntegerField(null=True)
    currency = pw.CharField(null=True)
    applies_to = pw.CharField(default="all")
    duration = pw.CharField(default="once")
    months = pw.IntegerField(null=True)
    orgs = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "coupon"


class Redemption(BaseModel):
    """An org redeemed a coupon; ``uses`` counts invoices it took something off."""

    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    coupon = pw.ForeignKeyField(Coupon, on_delete="CASCADE")
    redeemed_at = pw.DateTimeField()
    uses = pw.IntegerField(default=0)

    class Meta:
        table_name = "coupon_redemption"
        indexes = ((("org", "coupon"), True),)


TABLES: list[type[BaseModel]] = [
    BillingAccount,
    Invoice,
    PeriodClose,
    ChargeAttempt,
    StripeCustomer,
    StripeEvent,
    LinkToken,
    Coupon,
    Redemption,
]
