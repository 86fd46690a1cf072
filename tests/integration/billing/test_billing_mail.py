"""Billing mail: what Stripe does not send, over SMTP to a real server (aiosmtpd).

Charges go through a real localstripe; the mail server asks for STARTTLS and a
login, as a production relay does. Each notice is sent once; without SMTP it is
kept and listed, and the audit log says it was queued.
"""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import urllib.parse
from collections.abc import Iterator

import pytest

from appliance.audit import service as audit
from appliance.audit.models import AuditEntry
from appliance.errors import ApplianceError
from appliance.invoices import payments, service
from appliance.invoices.models import Invoice
from appliance.notify import service as notify
from appliance.notify.models import Notice
from appliance.notify.smtp import SmtpConfig
from appliance.schedule import clock
from billing.stripe_adapter import Gateway
from tests.fixtures.localstripe import SECRET_KEY
from tests.fixtures.smtp import SmtpServer
from tests.integration.billing.conftest import (
    CLOSE_TIME,
    DECLINES_ON_CHARGE,
    NEEDS_AUTHENTICATION,
    OCTOBER,
    VISA,
    new_org,
    register_card,
    used,
)
from tests.integration.billing.test_billing_flow import ADMIN

pytestmark = pytest.mark.timeout(60)

ADMINS = ["approver@vendor.test", "finance@vendor.test"]


def mailer(server: SmtpServer) -> SmtpConfig:
    return SmtpConfig.parse(server.url(), ca_file=server.ca)


def october_invoice(cfg, org) -> Invoice:
    used(org, "cn10", OCTOBER + dt.timedelta(days=3), 4)
    clock.travel_to(CLOSE_TIME)
    service.close_due(cfg)
    return Invoice.get(Invoice.org == org.id, Invoice.period == "2026-10")


def test_a_declined_payment_is_mailed_once_with_its_next_retry(
    cfg, localstripe, smtp_server: SmtpServer
) -> None:
    org = new_org("declined")
    notify.set_contact(org.id, "accounts@customer.test", actor="user:admin")
    register_card(cfg, localstripe, org, DECLINES_ON_CHARGE)
    inv = october_invoice(cfg, org)
    assert notify.deliver(mailer(smtp_server), ADMINS) == 1  # the draft, to the admins
    service.approve(ADMIN, inv.id, None, actor="user:admin")
    failed = payments.charge(cfg, ADMIN, inv.id, actor="user:admin")
    assert failed.status == "failed"

    assert notify.deliver(mailer(smtp_server), ADMINS) == 1  # the failure
    assert notify.deliver(mailer(smtp_server), ADMINS) == 0  # once each
    to_customer = [m for m in smtp_server.messages if m.rcpt_tos == ["accounts@customer.test"]]
    assert len(to_customer) == 1
    mail = to_customer[0].message
    assert to_customer[0].subject.startswith(f"Payment failed for invoice {inv.number} (JPY ")
    assert "card_declined" in to_customer[0].subject
    retry = clock.aware(failed.next_retry_at).astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert f"We will try again on {retry:%Y-%m-%d %H:%M}" in mail.get_content()
    assert mail["From"] == "billing@mockmock.test"

    # Dunning's second attempt fails too: its own notice, with the next date.
    clock.travel_to(clock.now() + dt.timedelta(days=1, minutes=1))
    assert payments.retry_due(cfg) == 1
    assert notify.deliver(mailer(smtp_server), ADMINS) == 1
    kinds = [n.key for n in Notice.select().order_by(Notice.id)]
    assert kinds == [
        f"draft_ready:{inv.id}",
        f"payment_failed:{inv.id}:1",
        f"payment_failed:{inv.id}:2",
    ]
    actions = [e.action for e in AuditEntry.select() if e.action.startswith("notice.")]
    assert actions.count("notice.queued") == 3 and actions.count("notice.sent") == 3
    assert audit.verify().ok


def test_a_payment_needing_authentication_mails_the_pay_link(
    cfg, localstripe, smtp_server: SmtpServer
) -> None:
    org = new_org("sca")
    notify.set_contact(org.id, "ap@customer.test", actor="user:admin")
    pm = register_card(cfg, localstripe, org, NEEDS_AUTHENTICATION)
    cust = payments.StripeCustomer.get(payments.StripeCustomer.org == org.id)
    payments.save_card(cfg, cust.customer, pm, actor="stripe")
    inv = october_invoice(cfg, org)
    service.approve(ADMIN, inv.id, None, actor="user:admin")
    waiting = payments.charge(cfg, ADMIN, inv.id, actor="user:admin")
    assert waiting.status == "requires_action"

    notify.deliver(mailer(smtp_server), [])
    (received,) = smtp_server.messages
    mail = received.message
    assert mail["To"] == "ap@customer.test"
    assert received.subject == (
        f"Action needed: confirm the payment of invoice {inv.number} (JPY {inv.total:,})"
    )
    assert waiting.action_url in mail.get_content()
    listed = notify.list_notices(org.id, smtp=True, admins=[])
    assert {n.kind: n.status for n in listed} == {"draft_ready": "obsolete", "pay_link": "sent"}


def test_a_draft_tells_the_admins_and_a_paid_charge_carries_receipt_email(
    cfg, localstripe, smtp_server: SmtpServer
) -> None:
    org = new_org("paid")
    notify.set_contact(org.id, "ap@paid.test", actor="user:admin")
    register_card(cfg, localstripe, org, VISA)
    inv = october_invoice(cfg, org)
    notify.deliver(mailer(smtp_server), ADMINS)
    (draft,) = smtp_server.messages
    assert draft.rcpt_tos == ADMINS
    assert draft.subject == (
        f"Invoice {inv.number} for paid (JPY {inv.total:,}) awaits your approval"
    )
    assert f"/api/v1/invoices/{inv.id}/approve" in draft.message.get_content()

    # localstripe does not know receipt_email; with a billing email set, a charge
    # still goes through it (the parameter goes to Stripe's own API only).
    service.approve(ADMIN, inv.id, None, actor="user:admin")
    assert payments.charge(cfg, ADMIN, inv.id, actor="user:admin").status == "paid"
    assert notify.deliver(mailer(smtp_server), ADMINS) == 0  # Stripe sends the receipt


class _StripeStandIn(http.server.BaseHTTPRequestHandler):
    """Records what the SDK sends; answers as Stripe would for a succeeded charge."""

    seen: list[dict[str, list[str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).seen.append(urllib.parse.parse_qs(body))
        reply = (
            b'{"id": "pi_standin", "object": "payment_intent", "status": "succeeded",'
            b' "amount": 1650, "currency": "jpy", "metadata": {}}'
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stripe_stand_in() -> Iterator[str]:
    """Live Stripe cannot run here: a local stand-in that records the request (a fake)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StripeStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _StripeStandIn.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_stripes_api_gets_receipt_email(stripe_stand_in: str) -> None:
    gw = Gateway(SECRET_KEY, stripe_stand_in, receipts=True)  # as against api.stripe.com
    outcome = gw.charge(
        amount=1650, currency="JPY", customer="cus_1", payment_method="pm_1", invoice_id=7,
        attempt=1, invoice_number="MM-7", key="k-1", receipt_email="ap@customer.test",
    )  # fmt: skip
    assert outcome.intent is not None and outcome.intent.status == "succeeded"
    (form,) = _StripeStandIn.seen
    assert form["receipt_email"] == ["ap@customer.test"]
    assert Gateway(SECRET_KEY).receipts is True  # Stripe's own API: on by default
    assert Gateway(SECRET_KEY, stripe_stand_in).receipts is False  # anything else: off


def test_without_smtp_notices_are_kept_listed_and_audited(cfg, localstripe) -> None:
    org = new_org("offline")
    notify.set_contact(org.id, "ap@offline.test", actor="user:admin")
    register_card(cfg, localstripe, org, DECLINES_ON_CHARGE)
    inv = october_invoice(cfg, org)
    service.approve(ADMIN, inv.id, None, actor="user:admin")
    payments.charge(cfg, ADMIN, inv.id, actor="user:admin")
    assert notify.deliver(None, ADMINS) == 0
    listed = notify.list_notices(org.id, smtp=False, admins=ADMINS)
    assert [(n.kind, n.status) for n in listed] == [
        ("payment_failed", "no_smtp"),
        ("draft_ready", "no_smtp"),
    ]
    queued = [e for e in AuditEntry.select() if e.action == "notice.queued"]
    assert {e.target for e in queued} == {f"invoice:{inv.id}"}


def test_a_server_without_starttls_is_refused_not_used_in_clear(
    cfg, localstripe, plain_smtp_server: SmtpServer
) -> None:
    org = new_org("clear")
    notify.set_contact(org.id, "ap@clear.test", actor="user:admin")
    october_invoice(cfg, org)
    config = SmtpConfig.parse(f"smtp://u:p@127.0.0.1:{plain_smtp_server.port}")
    assert notify.deliver(config, ADMINS) == 0
    assert plain_smtp_server.messages == []
    (n,) = Notice.select()
    assert n.tries == 1 and "offers no STARTTLS" in n.last_error and n.sent_at is None
    # Said explicitly, a plaintext relay is used.
    relay = SmtpConfig.parse(f"smtp://127.0.0.1:{plain_smtp_server.port}?starttls=no")
    assert notify.deliver(relay, ADMINS) == 1
    assert plain_smtp_server.messages[0].rcpt_tos == ADMINS


def test_wrong_smtp_password_is_kept_for_a_retry(cfg, smtp_server: SmtpServer) -> None:
    org = new_org("badpass")
    used(org, "cn10", OCTOBER + dt.timedelta(days=3), 4)
    clock.travel_to(CLOSE_TIME)
    service.close_due(cfg)
    wrong = SmtpConfig.parse(smtp_server.url(password="nope"), ca_file=smtp_server.ca)
    assert notify.deliver(wrong, ADMINS) == 0
    (n,) = Notice.select()
    assert n.tries == 1 and "535" in n.last_error
    assert notify.deliver(mailer(smtp_server), ADMINS) == 1


@pytest.mark.parametrize(
    "bad", ["nobody", "a@b", "a b@c.test", "x@y.test\nBcc: z@w.test", "a,b@c.test", "<a@b.test>"]
)
def test_billing_email_must_be_one_plain_address(appliance_db: str, bad: str) -> None:
    org = new_org("strict")
    with pytest.raises(ApplianceError, match=r"^email: "):
        notify.set_contact(org.id, bad, actor="user:admin")
    assert notify.billing_email(org.id) == ""
    notify.set_contact(org.id, " ap@strict.test ", actor="user:admin")
    assert notify.billing_email(org.id) == "ap@strict.test"
    notify.set_contact(org.id, "", actor="user:admin")
    assert notify.billing_email(org.id) == ""


def test_a_draft_approved_before_its_mail_goes_out_is_not_mailed(
    cfg, smtp_server: SmtpServer
) -> None:
    org = new_org("quick")
    inv = october_invoice(cfg, org)
    service.approve(ADMIN, inv.id, None, actor="user:admin")
    assert notify.deliver(mailer(smtp_server), ADMINS) == 0
    assert smtp_server.messages == []
    assert [n.status for n in notify.list_notices(org.id, smtp=True, admins=ADMINS)] == ["obsolete"]
