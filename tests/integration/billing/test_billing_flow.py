"""Month close → approval → charge through localstripe → webhook, in-process.

The clock is moved to just after the October close; usage is recorded
entitlement intervals; Stripe is a real localstripe on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from appliance import auth
from appliance.audit import service as audit
from appliance.audit.models import AuditEntry
from appliance.contract.billing import WebhookAck
from appliance.invoices import document, payments, service
from appliance.invoices.models import ChargeAttempt, Invoice, PeriodClose, StripeEvent
from appliance.schedule import clock
from billing.stripe_adapter import Gateway, event_payload, sign_payload
from tests.integration.billing.conftest import (
    CLOSE_TIME,
    DECLINES_ON_CHARGE,
    NEEDS_AUTHENTICATION,
    OCTOBER,
    VISA,
    WEBHOOK_SECRET,
    new_org,
    register_card,
    used,
)

pytestmark = pytest.mark.timeout(60)

ADMIN = auth.Caller(org_id=0, role="admin", token_id=1, user_name="admin", superuser=True)


def closed_october(cfg, org) -> Invoice:
    clock.travel_to(CLOSE_TIME)
    service.close_due(cfg)
    return Invoice.get(Invoice.org == org.id, Invoice.period == "2026-10")


def webhook(cfg, event_id: str, kind: str, obj: dict) -> WebhookAck:
    body = event_payload(event_id, kind, obj, livemode=False)
    return payments.webhook(cfg, body, sign_payload(body, WEBHOOK_SECRET))


def test_a_month_of_usage_is_closed_approved_charged_and_paid(cfg, localstripe) -> None:
    org = new_org("acme")
    register_card(cfg, localstripe, org, VISA)
    used(org, "cn10", OCTOBER + dt.timedelta(days=2, hours=10), 2.5)  # 150 min at 120/h
    used(org, "cn10", OCTOBER + dt.timedelta(days=20), 10)  # 600 min

    inv = closed_october(cfg, org)
    figures = json.loads(inv.document)
    assert inv.status == "draft"
    assert figures["lines"][0]["quantity_minutes"] == 750
    assert (figures["subtotal"], figures["tax"], inv.total) == (1500, 150, 1650)
    assert inv.mode == "test"

    service.approve(ADMIN, inv.id, 1650, actor="user:admin")
    paid = payments.charge(cfg, ADMIN, inv.id, actor="user:admin")
    assert paid.status == "paid"
    intents = localstripe.payment_intents()
    assert len(intents) == 1
    pi = intents[0]
    assert (pi["amount"], pi["currency"], pi["status"]) == (1650, "jpy", "succeeded")
    assert pi["metadata"]["invoice_id"] == str(inv.id)
    assert pi["metadata"]["attempt"] == "1"

    # Stripe's webhook for the same PaymentIntent changes nothing, and is handled once.
    obj = {**pi, "status": "succeeded"}
    assert webhook(cfg, "evt_paid_1", "payment_intent.succeeded", obj).duplicate is False
    assert webhook(cfg, "evt_paid_1", "payment_intent.succeeded", obj).duplicate is True
    assert StripeEvent.select().count() == 1
    assert Invoice.get_by_id(inv.id).status == "paid"

    html = document.render_invoice(Invoice.get_by_id(inv.id), cfg)
    assert "T1234567890123" in html and "JPY 1,650" in html and "Tax (10%)" in html
    # The document speaks the org's time zone, as the TUI does: no UTC instants.
    covered = Invoice.get_by_id(inv.id).covered_to.replace(tzinfo=dt.UTC)
    local = covered.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert f"{local:%Y-%m-%d %H:%M} JST" in html and " UTC" not in html
    actions = {e.action for e in AuditEntry.select()}
    assert {"invoice.close", "invoice.approve", "invoice.charge", "charge.succeeded"} <= actions
    assert audit.verify().ok


def test_the_close_runs_once_and_orgs_with_nothing_due_get_no_invoice(cfg) -> None:
    busy, idle = new_org("busy"), new_org("idle")
    used(busy, "cn20", OCTOBER + dt.timedelta(days=5), 3)
    clock.travel_to(CLOSE_TIME)
    first = service.close_due(cfg)
    again = service.close_due(cfg)
    assert (first.closed, first.invoices) == (4, 1)  # September and October, two orgs
    assert (again.closed, again.invoices) == (0, 0)
    assert Invoice.select().where(Invoice.org == busy.id).count() == 1
    assert Invoice.select().where(Invoice.org == idle.id).count() == 0
    assert PeriodClose.get(PeriodClose.org == idle.id, PeriodClose.period == "2026-10").outcome == (
        "nothing_due"
    )
    # September (the month of registration) was closed too, with nothing due.
    assert PeriodClose.select().where(PeriodClose.org == busy.id).count() == 2


def test_before_the_close_time_nothing_is_closed(cfg) -> None:
    org = new_org("early")
    used(org, "cn10", OCTOBER + dt.timedelta(days=1), 5)
    clock.travel_to(CLOSE_TIME - dt.timedelta(minutes=2))  # 00:04 on 1 November
    service.close_due(cfg)
    assert not Invoice.select().where(Invoice.period == "2026-10").exists()


def test_a_declined_card_fails_with_the_code_and_a_retry_schedule(cfg, localstripe) -> None:
    org = new_org("declined")
    register_card(cfg, localstripe, org, DECLINES_ON_CHARGE)
    used(org, "cn10", OCTOBER + dt.timedelta(days=3), 4)
    inv = closed_october(cfg, org)
    service.approve(ADMIN, inv.id, None, actor="user:admin")
    failed = payments.charge(cfg, ADMIN, inv.id, actor="user:admin")
    assert failed.status == "failed"
    assert failed.last_error == "card_declined"
    assert failed.next_retry_at == clock.utcnow().replace(microsecond=0) + dt.timedelta(
        days=1
    ) or abs((failed.next_retry_at - clock.utcnow()) - dt.timedelta(days=1)) < dt.timedelta(
        seconds=5
    )
    assert ChargeAttempt.get(ChargeAttempt.invoice == inv.id).payment_intent.startswith("pi_")

    # Dunning: not before the retry time; at it, a second attempt (a second PaymentIntent).
    assert payments.retry_due(cfg) == 0
    clock.travel_to(clock.now() + dt.timedelta(days=1, minutes=1))
    assert payments.retry_due(cfg) == 1
    again = Invoice.get_by_id(inv.id)
    assert (again.status, again.attempts) == ("failed", 2)
    assert abs((again.next_retry_at - clock.utcnow()) - dt.timedelta(days=3)) < dt.timedelta(
        seconds=5
    )
    assert len(localstripe.payment_intents()) == 2


def test_a_card_that_needs_authentication_waits_for_the_customer(cfg, localstripe) -> None:
    org = new_org("sca")
    pm = register_card(cfg, localstripe, org, NEEDS_AUTHENTICATION)
    # Its SetupIntent needs 3-D Secure; Stripe then reports it by webhook.
    cust = payments.StripeCustomer.get(payments.StripeCustomer.org == org.id)
    webhook(
        cfg,
        "evt_setup_1",
        "setup_intent.succeeded",
        {"id": "seti_x", "object": "setup_intent", "customer": cust.customer, "payment_method": pm},
    )
    used(org, "cn10", OCTOBER + dt.timedelta(days=3), 4)
    inv = closed_october(cfg, org)
    service.approve(ADMIN, inv.id, None, actor="user:admin")
    waiting = payments.charge(cfg, ADMIN, inv.id, actor="user:admin")
    assert waiting.status == "requires_action"
    assert "/billing/pay?invoice=" in waiting.action_url
    token = waiting.action_url.split("token=")[1]
    page = payments.pay_page(cfg, inv.id, token)
    assert page.client_secret and page.status == "requires_action"
    assert payments.retry_due(cfg) == 0  # no dunning while the customer is asked


def test_live_keys_refuse_test_mode_invoices(cfg, localstripe) -> None:
    org = new_org("modes")
    register_card(cfg, localstripe, org, VISA)
    used(org, "cn10", OCTOBER + dt.timedelta(days=3), 4)
    inv = closed_october(cfg, org)
    service.approve(ADMIN, inv.id, None, actor="user:admin")
    cfg.gateway = Gateway("sk_live_not_a_real_key", localstripe.url)
    with pytest.raises(
        service.Conflict, match="test-mode data; the appliance's Stripe key is live"
    ):
        payments.charge(cfg, ADMIN, inv.id, actor="user:admin")
    assert localstripe.payment_intents() == []
    assert ChargeAttempt.select().count() == 0


def test_a_forged_webhook_is_refused(cfg) -> None:
    body = event_payload("evt_forged", "payment_intent.succeeded", {"id": "pi_x"}, False)
    with pytest.raises(service.ApplianceError, match="Stripe-Signature"):
        payments.webhook(cfg, body, sign_payload(body, "whsec_someone_else"))
    assert StripeEvent.select().count() == 0


def test_adjust_void_coupons_and_credit(cfg) -> None:
    org = new_org("adjusted")
    service.create_coupon(
        {"code": "WELCOME10", "percent_off": "10", "duration": "once"}, actor="user:admin"
    )
    clock.travel_to(OCTOBER + dt.timedelta(days=1))
    service.redeem(org.id, "WELCOME10", actor="user:admin")
    service.add_credit(org.id, 300, "thank you", actor="user:admin")
    used(org, "cn10", OCTOBER + dt.timedelta(days=3), 10)  # 1200
    inv = closed_october(cfg, org)
    figures = json.loads(inv.document)
    assert figures["discounts"] == [{"code": "WELCOME10", "amount": 120, "applies_to": "all"}]
    assert figures["credit_applied"] == 300
    assert inv.total == (1200 - 120 - 300) * 110 // 100
    assert service.account_doc(org.id).credit_balance == 0

    adjusted = service.adjust(ADMIN, inv.id, 100, "outage on 10-04", actor="user:admin")
    assert adjusted.total == (1200 - 120 - 400) * 110 // 100
    with pytest.raises(service.Conflict, match="expected_total"):
        service.approve(ADMIN, inv.id, inv.total, actor="user:admin")

    service.void(ADMIN, inv.id, "duplicate", actor="user:admin")
    acc = service.account_doc(org.id)
    # The org's own credit comes back; the adjustment was this invoice's, never credit.
    assert acc.credit_balance == 300
    assert acc.coupons[0].uses == 0
    with pytest.raises(service.ApplianceError, match="reason"):
        service.void(ADMIN, inv.id, " ", actor="user:admin")


def test_quote_to_date_matches_the_close_and_writes_nothing(cfg) -> None:
    org = new_org("quoted")
    used(org, "cn20", OCTOBER + dt.timedelta(days=2), 2)
    clock.travel_to(OCTOBER + dt.timedelta(days=20))
    used(org, "cn20", OCTOBER + dt.timedelta(days=21), 1)  # later: not billed yet
    before = (Invoice.select().count(), PeriodClose.select().count(), AuditEntry.select().count())
    quote = service.quote_to_date(cfg, org.id)
    assert (
        Invoice.select().count(),
        PeriodClose.select().count(),
        AuditEntry.select().count(),
    ) == (before)
    assert quote.period == "2026-10"
    assert [(ln.item, ln.quantity_minutes) for ln in quote.lines] == [("cn20", 120)]
    # At the month's end, the close rates everything, the quote's two hours included.
    clock.travel_to(CLOSE_TIME)
    service.close_due(cfg)
    closed = json.loads(Invoice.get(Invoice.org == org.id, Invoice.period == "2026-10").document)
    assert [ln["quantity_minutes"] for ln in closed["lines"]] == [180]
    assert closed["total"] > quote.total > 0
