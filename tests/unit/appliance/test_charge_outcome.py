"""What Stripe's news does to an attempt and its invoice: a table of plain values, no DB.

Each row: the attempt and its invoice as they are, what Stripe reported (a
PaymentIntent's status and decline code, or nothing), and every change
:func:`appliance.invoices.outcome.record` must decide, and nothing more.
"""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.invoices.outcome import Attempt, Changes, record, retry_at
from appliance.invoices.states import (
    ATTEMPT_MOVES,
    INVOICE_MOVES,
    AttemptState,
    InvoiceStatus,
)
from billing.stripe_adapter import Intent

NOW = dt.datetime(2026, 11, 2, 9, 30)
DAY = dt.timedelta(days=1)
S, Inv = AttemptState, InvoiceStatus


def pi(status: str | None, code: str = "", id_: str = "pi_1") -> Intent | None:
    if status is None:
        return None
    return Intent(
        id=id_,
        status=status,
        amount=1650,
        currency="JPY",
        customer="cus_1",
        metadata={"invoice_id": "7", "attempt": "1"},
        client_secret="pi_1_secret",
        error_code=code,
    )


def at(state: S, invoice: Inv = Inv.CHARGING, n: int = 1, of: int = 1, known: str = "") -> Attempt:
    return Attempt(
        number=n, state=state, invoice_status=invoice, invoice_attempts=of, payment_intent=known
    )


def paid(pi_id: str = "pi_1") -> dict:
    return {"paid_at": NOW, "payment_intent": pi_id, "next_retry_at": None, "action_url": ""}


def declined(code: str, retry: dt.datetime | None) -> dict:
    return {"payment_intent": "pi_1", "last_error": code, "next_retry_at": retry}


CASES = {
    "first news: succeeded pays the invoice": (
        at(S.PENDING), pi("succeeded"), "",
        Changes("pi_1", S.SUCCEEDED, invoice_status=Inv.PAID, invoice=paid()),
    ),
    "a decline fails it and plans the first retry a day later": (
        at(S.PENDING), pi("requires_payment_method", "card_declined"), "",
        Changes("pi_1", S.FAILED, "card_declined", Inv.FAILED,
                declined("card_declined", NOW + DAY)),
    ),
    "the third decline retries after seven days": (
        at(S.PENDING, n=3, of=3), pi("requires_payment_method", "insufficient_funds"), "",
        Changes("pi_1", S.FAILED, "insufficient_funds", Inv.FAILED,
                declined("insufficient_funds", NOW + 7 * DAY)),
    ),
    "the fourth decline gives up retrying": (
        at(S.PENDING, n=4, of=4), pi("requires_payment_method", "card_declined"), "",
        Changes("pi_1", S.FAILED, "card_declined", Inv.FAILED, declined("card_declined", None)),
    ),
    "the decline code given beats the intent's": (
        at(S.PENDING), pi("requires_payment_method", "generic_decline"), "expired_card",
        Changes("pi_1", S.FAILED, "expired_card", Inv.FAILED, declined("expired_card", NOW + DAY)),
    ),
    "a decline without a PaymentIntent fails it with no id learned": (
        at(S.PENDING), None, "",
        Changes(None, S.FAILED, "", Inv.FAILED,
                {"payment_intent": "", "last_error": "card_declined", "next_retry_at": NOW + DAY}),
    ),
    "canceled is a failure": (
        at(S.PENDING), pi("canceled"), "",
        Changes("pi_1", S.FAILED, "", Inv.FAILED, declined("card_declined", NOW + DAY)),
    ),
    "authentication asked: the customer gets a pay link": (
        at(S.PENDING), pi("requires_action"), "",
        Changes("pi_1", S.REQUIRES_ACTION, "", Inv.REQUIRES_ACTION,
                {"payment_intent": "pi_1", "last_error": "authentication_required"},
                pay_link=True),
    ),
    "an off-session decline for authentication is the same": (
        at(S.PENDING), pi("requires_payment_method", "authentication_required"), "",
        Changes("pi_1", S.REQUIRES_ACTION, "", Inv.REQUIRES_ACTION,
                {"payment_intent": "pi_1", "last_error": "authentication_required"},
                pay_link=True),
    ),
    "processing keeps the invoice charging and records the id": (
        at(S.PENDING), pi("processing"), "",
        Changes("pi_1", S.PROCESSING, "", None, {"payment_intent": "pi_1"}),
    ),
    "the customer authenticated: processing again": (
        at(S.REQUIRES_ACTION, Inv.REQUIRES_ACTION, known="pi_1"), pi("processing"), "",
        Changes(None, S.PROCESSING, "", Inv.CHARGING, {"payment_intent": "pi_1"}),
    ),
    "the customer failed authentication: failed, retried by dunning": (
        at(S.REQUIRES_ACTION, Inv.REQUIRES_ACTION, known="pi_1"),
        pi("requires_payment_method", "authentication_failed"), "",
        Changes(None, S.FAILED, "authentication_failed", Inv.FAILED,
                declined("authentication_failed", NOW + DAY)),
    ),
    "the customer authenticated and paid": (
        at(S.REQUIRES_ACTION, Inv.REQUIRES_ACTION, known="pi_1"), pi("succeeded"), "",
        Changes(None, S.SUCCEEDED, invoice_status=Inv.PAID, invoice=paid()),
    ),
    "the same success reported again changes nothing": (
        at(S.SUCCEEDED, Inv.PAID, known="pi_1"), pi("succeeded"), "",
        Changes(),
    ),
    "the same decline reported again changes nothing": (
        at(S.FAILED, Inv.FAILED, known="pi_1"), pi("requires_payment_method", "card_declined"), "",
        Changes(),
    ),
    "a late failure after the success changes nothing": (
        at(S.SUCCEEDED, Inv.PAID, known="pi_1"), pi("requires_payment_method", "card_declined"), "",
        Changes(),
    ),
    "a declined PaymentIntent confirmed after all pays the invoice": (
        at(S.FAILED, Inv.FAILED, known="pi_1"), pi("succeeded"), "",
        Changes(None, S.SUCCEEDED, invoice_status=Inv.PAID, invoice=paid()),
    ),
    "an old attempt's decline does not move the invoice": (
        at(S.PENDING, Inv.CHARGING, n=1, of=2), pi("requires_payment_method", "card_declined"), "",
        Changes("pi_1", S.FAILED, "card_declined", None, {}),
    ),
    "an old attempt's success is money received: paid": (
        at(S.PROCESSING, Inv.FAILED, n=1, of=2, known="pi_1"), pi("succeeded"), "",
        Changes(None, S.SUCCEEDED, invoice_status=Inv.PAID, invoice=paid()),
    ),
    "a refunded invoice stays refunded when an old attempt succeeds late": (
        at(S.PROCESSING, Inv.REFUNDED, n=1, of=2, known="pi_1"), pi("succeeded"), "",
        Changes(None, S.SUCCEEDED, "", None, {}),
    ),
    "voided while the customer authenticated, who then paid: paid": (
        at(S.REQUIRES_ACTION, Inv.VOID, known="pi_1"), pi("succeeded"), "",
        Changes(None, S.SUCCEEDED, invoice_status=Inv.PAID, invoice=paid()),
    ),
    "a void invoice is not failed by its attempt's failure": (
        at(S.REQUIRES_ACTION, Inv.VOID, known="pi_1"), pi("requires_payment_method"), "",
        Changes(None, S.FAILED, "", None, {}),
    ),
    "a status that decides nothing only records the id": (
        at(S.PENDING), pi("requires_capture"), "",
        Changes("pi_1"),
    ),
    "a recorded id is never replaced": (
        at(S.PENDING, known="pi_1"), pi("succeeded", id_="pi_other"), "",
        Changes(None, S.SUCCEEDED, invoice_status=Inv.PAID, invoice=paid("pi_1")),
    ),
}  # fmt: skip


@pytest.mark.parametrize(("attempt", "intent", "code", "expected"), CASES.values(), ids=CASES)
def test_record(attempt: Attempt, intent: Intent | None, code: str, expected: Changes) -> None:
    assert record(attempt, intent, code, now=NOW) == expected


def test_every_decision_is_a_move_the_tables_allow() -> None:
    """Over every attempt state, invoice status and PaymentIntent status."""
    news = [None, "succeeded", "processing", "requires_action", "requires_payment_method",
            "canceled", "requires_capture"]  # fmt: skip
    for state in AttemptState:
        for status in InvoiceStatus:
            for latest in (True, False):
                for news_status in news:
                    facts = at(state, status, n=1, of=1 if latest else 2)
                    got = record(facts, pi(news_status), "", now=NOW)
                    if got.state is not None:
                        assert got.state in ATTEMPT_MOVES[state], (facts, news_status)
                    if got.invoice_status is not None:
                        assert got.invoice_status in INVOICE_MOVES[status], (facts, news_status)
                    if got.state is None:
                        assert (got.invoice_status, dict(got.invoice)) == (None, {})


def test_dunning_gives_up_after_three_retries() -> None:
    assert [retry_at(n, NOW) for n in (1, 2, 3, 4)] == [
        NOW + DAY,
        NOW + 3 * DAY,
        NOW + 7 * DAY,
        None,
    ]
