"""Billing end to end: a real ``mockmock serve`` process, Mosquitto and localstripe.

Usage recorded last month → month close (the start-up catch-up) → card registered
through the card page's API → admin approval over HTTP → PaymentIntent succeeded
→ localstripe's signed webhook → invoice ``paid``. Then kill -9 right after the
charge call, and during the month close: after a restart there is exactly one
PaymentIntent per invoice and one invoice per org and month.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
from pathlib import Path

import pytest

from tests.e2e.billing_story import (
    WEBHOOK_SECRET,
    billing_appliance,
    invoices,
    last_month,
    register_card,
    seed,
    start_or_die,
    used_this_month,
    wait_exit,
)

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(180)]

VISA = "4242424242424242"


def test_usage_to_paid_invoice_through_the_api(mosquitto, localstripe, tmp_path: Path) -> None:
    app = billing_appliance(tmp_path, mosquitto.url, localstripe)
    app.start()
    app.proc.stop()
    (org_id,) = seed(app, 1)
    _, period = last_month()
    app.start()  # the start-up tick closes last month (a catch-up)
    try:
        localstripe.send_webhooks_to(f"{app.url}/api/v1/stripe/webhook", WEBHOOK_SECRET)
        inv = app.wait_for(
            lambda: [i for i in invoices(app) if i["org_id"] == org_id and i["period"] == period],
            what="the month close",
        )[0]
        assert (inv["status"], inv["total"], inv["mode"]) == ("draft", 396, "test")  # 180 min
        customer = register_card(app, localstripe, org_id, VISA)

        paid = app.api("POST", f"/api/v1/invoices/{inv['id']}/approve", {"expected_total": 396})
        assert paid["status"] == "paid"
        intents = localstripe.payment_intents(customer)
        assert [(pi["amount"], pi["status"]) for pi in intents] == [(396, "succeeded")]
        # localstripe signs and sends payment_intent.succeeded; the appliance records it once.
        app.wait_for(
            lambda: app.api("GET", "/api/v1/audit?action=stripe.webhook&all_orgs=true")["entries"],
            what="the signed webhook",
        )
        doc = app.api("GET", f"/api/v1/invoices/{inv['id']}")
        assert doc["status"] == "paid" and doc["payment_intent"] == intents[0]["id"]
        with pytest.raises(urllib.error.HTTPError) as bad:
            app.api("POST", f"/api/v1/invoices/{inv['id']}/approve", {})
        assert bad.value.code == 409
    finally:
        app.proc.stop()


def test_a_draft_of_the_month_so_far_is_approved_and_paid(
    mosquitto, localstripe, tmp_path: Path
) -> None:
    """The demo's approval flow: no month to wait for, the current one closed as a draft."""
    app = billing_appliance(tmp_path, mosquitto.url, localstripe)
    app.start()
    app.proc.stop()
    (org_id,) = seed(app, 1)
    app.start()
    try:
        period = used_this_month(app, org_id, 150)  # 150 min at 120 yen/h: 300 + 30 tax
        localstripe.send_webhooks_to(f"{app.url}/api/v1/stripe/webhook", WEBHOOK_SECRET)
        draft = app.api("POST", "/api/v1/invoices/draft-now", {"org_id": org_id})
        assert (draft["period"], draft["status"], draft["part"]) == (period, "draft", 1)
        assert (draft["total"], draft["mode"]) == (330, "test")
        listed = [i for i in invoices(app) if i["period"] == period]
        assert [(i["id"], i["status"]) for i in listed] == [(draft["id"], "draft")]

        customer = register_card(app, localstripe, org_id, VISA)
        paid = app.api("POST", f"/api/v1/invoices/{draft['id']}/approve", {"expected_total": 330})
        assert paid["status"] == "paid"
        intents = localstripe.payment_intents(customer)
        assert [(pi["amount"], pi["status"]) for pi in intents] == [(330, "succeeded")]
        app.wait_for(
            lambda: app.api("GET", "/api/v1/audit?action=stripe.webhook&all_orgs=true")["entries"],
            what="the signed webhook",
        )
        assert app.api("GET", f"/api/v1/invoices/{draft['id']}")["status"] == "paid"
        # Everything so far is billed: a second draft has nothing to close.
        with pytest.raises(urllib.error.HTTPError) as again:
            app.api("POST", "/api/v1/invoices/draft-now", {"org_id": org_id})
        assert again.value.code == 409
        assert "nothing is due" in json.loads(again.value.read())["detail"]
    finally:
        app.proc.stop()


def test_kill9_after_the_charge_call_makes_one_payment_intent(
    mosquitto, localstripe, tmp_path: Path
) -> None:
    app = billing_appliance(tmp_path, mosquitto.url, localstripe)
    app.start()
    app.proc.stop()
    (org_id,) = seed(app, 1)
    app.start()
    customer = register_card(app, localstripe, org_id, VISA)
    inv = app.wait_for(lambda: [i for i in invoices(app) if i["org_id"] == org_id])[0]
    app.proc.stop()

    app.proc.env["MOCKMOCK_CRASH_AT"] = "after_charge_call"
    app.start()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        app.api("POST", f"/api/v1/invoices/{inv['id']}/approve", {})
    assert wait_exit(app) == -9
    assert len(localstripe.payment_intents(customer)) == 1  # Stripe charged; we never heard

    del app.proc.env["MOCKMOCK_CRASH_AT"]
    app.start()  # reconciliation finds the PaymentIntent by its metadata
    try:
        app.wait_for(
            lambda: app.api("GET", f"/api/v1/invoices/{inv['id']}")["status"] == "paid",
            what="the reconciled payment",
        )
        assert len(localstripe.payment_intents(customer)) == 1
        assert app.api("GET", f"/api/v1/invoices/{inv['id']}")["attempts"] == 1
    finally:
        app.proc.stop()


def test_kill9_during_the_month_close_makes_one_invoice_per_org_and_month(
    mosquitto, localstripe, tmp_path: Path
) -> None:
    app = billing_appliance(tmp_path, mosquitto.url, localstripe, billing_close_batch=10)
    app.start()
    app.proc.stop()
    ids = seed(app, 25)
    _, period = last_month()
    db_path = app.data_dir / "mockmock.sqlite3"

    app.proc.env["MOCKMOCK_CRASH_AT"] = "month_close_mid"
    start_or_die(app)
    assert wait_exit(app) == -9
    with sqlite3.connect(db_path) as con:
        closed = con.execute("SELECT COUNT(*) FROM period_close").fetchone()[0]
    assert 0 < closed < 2 * len(ids)  # part of the work was committed, part lost

    del app.proc.env["MOCKMOCK_CRASH_AT"]
    app.start()
    try:
        app.wait_for(
            lambda: len([i for i in invoices(app) if i["period"] == period]) == len(ids),
            what="every org's invoice",
        )
        with sqlite3.connect(db_path) as con:
            dupes = con.execute(
                "SELECT org_id, period, COUNT(*) FROM invoice GROUP BY org_id, period, part "
                "HAVING COUNT(*) > 1"
            ).fetchall()
            per_org = con.execute(
                f"SELECT COUNT(*) FROM period_close WHERE org_id IN ({','.join(map(str, ids))})"
            ).fetchone()[0]
        assert dupes == []
        assert per_org == 2 * len(ids)  # the month of registration and last month
        assert app.api("POST", "/api/v1/invoices/close", {}) == {
            "closed": 0,
            "invoices": 0,
            "skipped": 2 * len(ids),
        }
    finally:
        app.proc.stop()


def test_a_declined_card_ends_failed_with_a_retry_planned(
    mosquitto, localstripe, tmp_path: Path
) -> None:
    app = billing_appliance(tmp_path, mosquitto.url, localstripe)
    app.start()
    app.proc.stop()
    (org_id,) = seed(app, 1)
    app.start()
    try:
        customer = register_card(app, localstripe, org_id, "4000000000000341")
        inv = app.wait_for(lambda: [i for i in invoices(app) if i["org_id"] == org_id])[0]
        failed = app.api("POST", f"/api/v1/invoices/{inv['id']}/approve", {})
        assert (failed["status"], failed["last_error"]) == ("failed", "card_declined")
        assert failed["next_retry_at"] is not None
        assert len(localstripe.payment_intents(customer)) == 1
    finally:
        app.proc.stop()
