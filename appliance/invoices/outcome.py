"""What Stripe's news about a PaymentIntent does to a charge attempt and its invoice.

Pure: :func:`record` takes plain values (the attempt and its invoice as they are,
the PaymentIntent as Stripe reported it, the time) and returns the changes;
``payments.record_outcome`` loads the rows, calls it and writes the changes through
the moves of :mod:`appliance.invoices.states`. Reports of an outcome already
recorded, out-of-order news and an old attempt's late news change nothing they
should not: every state change proposed here is one the tables allow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.invoices.states import (
    AttemptState,
    InvoiceStatus,
    may_move_attempt,
    may_move_invoice,
)
from billing.stripe_adapter import Intent

RETRY_AFTER = (dt.timedelta(days=1), dt.timedelta(days=3), dt.timedelta(days=7))
"""Dunning: after the nth declined attempt, try again this much later (then give up)."""


@dataclass(frozen=True)
class Attempt:
    """An attempt and the invoice it belongs to, as the decision needs them."""

    number: int
    state: AttemptState
    invoice_status: InvoiceStatus
    invoice_attempts: int
    """The invoice's latest attempt number: only its news moves the invoice back and forth."""
    payment_intent: str = ""
    """The PaymentIntent id recorded on the attempt ("" until Stripe answered)."""


@dataclass(frozen=True)
class Changes:
    """What to write. Empty (the default) when the news changes nothing."""

    payment_intent: str | None = None
    """A PaymentIntent id the attempt learns now (it never changes once recorded)."""
    state: AttemptState | None = None
    """The attempt's new state; None: the attempt keeps its state."""
    error_code: str = ""
    """The attempt's decline code (failed attempts only)."""
    invoice_status: InvoiceStatus | None = None
    """The invoice's new status; None: it keeps it (``invoice`` may still change fields)."""
    invoice: Mapping[str, Any] = field(default_factory=dict)
    """Other invoice fields: paid_at, payment_intent, last_error, next_retry_at, action_url."""
    pay_link: bool = False
    """The customer must authenticate: make a /billing/pay link and set ``action_url``."""


def state_of(intent: Intent | None, code: str) -> AttemptState | None:
    """The attempt state a PaymentIntent status means; None for one that decides nothing.

    No PaymentIntent at all is a decline answered without one.
    """
    status = intent.status if intent is not None else "requires_payment_method"
    if status == "succeeded":
        return AttemptState.SUCCEEDED
    if status == "processing":
        return AttemptState.PROCESSING
    if status == "requires_action" or code == "authentication_required":
        return AttemptState.REQUIRES_ACTION
    if status in ("requires_payment_method", "canceled"):
        return AttemptState.FAILED
    return None  # requires_confirmation, requires_capture: not ours to act on


def retry_at(number: int, now: dt.datetime) -> dt.datetime | None:
    """When dunning tries again after the ``number``th declined attempt; None: it gives up."""
    return now + RETRY_AFTER[number - 1] if 1 <= number <= len(RETRY_AFTER) else None


def record(
    attempt: Attempt, intent: Intent | None, decline_code: str = "", *, now: dt.datetime
) -> Changes:
    """The changes Stripe's news (``intent``, or a decline without one) makes."""
    learned = intent.id if intent is not None and not attempt.payment_intent else None
    payment_intent = attempt.payment_intent or (intent.id if intent is not None else "")
    code = decline_code or (intent.error_code if intent is not None else "")
    state = state_of(intent, code)
    if state is None or state == attempt.state or not may_move_attempt(attempt.state, state):
        return Changes(payment_intent=learned)
    error_code = code if state == AttemptState.FAILED else ""
    target, fields, pay_link = _invoice_after(attempt, state, payment_intent, code, now)
    if target is None:
        pass
    elif target == attempt.invoice_status:
        if target != InvoiceStatus.CHARGING:  # already there: nothing to redo
            fields, pay_link = {}, False
        target = None  # still charging (processing): the PaymentIntent id only
    elif not may_move_invoice(attempt.invoice_status, target):
        target, fields, pay_link = None, {}, False  # e.g. refunded: old news stays old
    return Changes(
        payment_intent=learned,
        state=state,
        error_code=error_code,
        invoice_status=target,
        invoice=fields,
        pay_link=pay_link,
    )


def _invoice_after(
    attempt: Attempt, state: AttemptState, payment_intent: str, code: str, now: dt.datetime
) -> tuple[InvoiceStatus | None, dict[str, Any], bool]:
    """Where the attempt's new state takes its invoice: (status, fields, pay link)."""
    if state == AttemptState.SUCCEEDED:
        # Any attempt's success is money received, latest or not.
        fields = {
            "paid_at": now,
            "payment_intent": payment_intent,
            "next_retry_at": None,
            "action_url": "",
        }
        return InvoiceStatus.PAID, fields, False
    if attempt.number != attempt.invoice_attempts:
        return None, {}, False  # an old attempt's late news does not move the invoice
    if state == AttemptState.PROCESSING:
        return InvoiceStatus.CHARGING, {"payment_intent": payment_intent}, False
    if state == AttemptState.REQUIRES_ACTION:
        asked = {"payment_intent": payment_intent, "last_error": code or "authentication_required"}
        return InvoiceStatus.REQUIRES_ACTION, asked, True
    return (
        InvoiceStatus.FAILED,
        {
            "payment_intent": payment_intent,
            "last_error": code or "card_declined",
            "next_retry_at": retry_at(attempt.number, now),
        },
        False,
    )
