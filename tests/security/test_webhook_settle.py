"""Webhook settles the wrong payment: only the attempt's own PaymentIntent pays an invoice.

An org's invoice fails on a declining card (localstripe, through the real app). Then
signed ``payment_intent.succeeded`` events arrive that name the invoice in their
metadata but are not its payment: another PaymentIntent, or the right one with a
different amount, currency or customer. Each is audited and ignored with a 200 (so
Stripe stops resending); only the attempt's own, matching one settles. Signed bodies
of the wrong shape are a 400, never a 5xx.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import models
from appliance.audit.models import AuditEntry
from appliance.invoices.models import ChargeAttempt
from appliance.schedule import clock
from billing.stripe_adapter import event_payload, sign_payload
from tests.fixtures.localstripe import LocalStripe
from tests.integration.billing.conftest import (
    CLOSE_TIME,
    DECLINES_ON_CHARGE,
    OCTOBER,
    WEBHOOK_SECRET,
    register_card,
    stripe_api,
    used,
)
from tests.integration.control.conftest import Api

pytestmark = pytest.mark.timeout(90)
WEBHOOK = "/api/v1/stripe/webhook"


@pytest.fixture
def api(appliance_db: str, mosquitto, localstripe: LocalStripe, tmp_path: Path) -> Iterator[Api]:
    yield from stripe_api(appliance_db, mosquitto, localstripe, tmp_path)


def send(api: Api, body: bytes):
    return api.client.post(
        WEBHOOK,
        content=body,
        headers={"Stripe-Signature": sign_payload(body, WEBHOOK_SECRET)},
    )


def failed_invoice(api: Api, localstripe: LocalStripe) -> tuple[dict[str, str], int]:
    """acme's October invoice, approved and declined: attempt 1 holds its PaymentIntent."""
    clock.travel_to(OCTOBER)
    made = api.call("POST", "/api/v1/orgs", json={"name": "acme", "timezone": "Asia/Tokyo"}).json()
    org = models.Org.get_by_id(made["id"])
    used(org, "cn10", OCTOBER + dt.timedelta(days=3), 10)
    clock.travel_to(CLOSE_TIME)
    api.call("POST", "/api/v1/invoices/close")
    register_card(api.client.app.state.billing, localstripe, org, DECLINES_ON_CHARGE)
    admin = {"Authorization": f"Bearer {made['admin']['token']}"}
    (inv,) = api.client.get("/api/v1/invoices", headers=admin).json()
    r = api.client.post(f"/api/v1/invoices/{inv['id']}/approve", headers=admin, json={})
    assert r.status_code == 200 and r.json()["status"] == "failed", r.text
    return admin, inv["id"]


def status(api: Api, admin: dict[str, str], invoice_id: int) -> str:
    return api.client.get(f"/api/v1/invoices/{invoice_id}", headers=admin).json()["status"]


def test_only_the_attempts_own_matching_payment_intent_pays_the_invoice(
    api: Api, localstripe: LocalStripe
) -> None:
    admin, invoice_id = failed_invoice(api, localstripe)
    att = ChargeAttempt.get(ChargeAttempt.invoice == invoice_id)
    assert att.payment_intent.startswith("pi_") and att.state == "failed"
    own = {
        "id": att.payment_intent,
        "object": "payment_intent",
        "status": "succeeded",
        "amount": att.amount,
        "currency": att.currency.lower(),
        "customer": att.customer,
        "metadata": {"invoice_id": str(invoice_id), "attempt": "1"},
        "livemode": False,
    }
    forged = {
        "another payment intent": {**own, "id": "pi_someone_elses", "amount": 50},
        "a different amount": {**own, "amount": 50},
        "a different currency": {**own, "currency": "usd"},
        "a different customer": {**own, "customer": "cus_someone_else"},
    }
    for n, (what, obj) in enumerate(forged.items()):
        body = event_payload(f"evt_forged_{n}", "payment_intent.succeeded", obj, False)
        r = send(api, body)
        assert r.status_code == 200, (what, r.text)
        assert r.json()["ignored"], (what, r.text)
        assert status(api, admin, invoice_id) == "failed", what
    ignored = AuditEntry.select().where(AuditEntry.action == "charge.ignored")
    assert ignored.count() == len(forged)
    assert all(json.loads(e.after)["reason"] for e in ignored)
    assert {e.org_id for e in ignored} == {models.Org.get(models.Org.name == "acme").id}

    r = send(api, event_payload("evt_own", "payment_intent.succeeded", own, False))
    assert r.status_code == 200 and "ignored" not in r.json(), r.text
    assert status(api, admin, invoice_id) == "paid"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"{}",
        b'"evt"',
        b"\xff\xfe not utf-8",
        b'{"id": "evt_1"}',
        b'{"id": 5, "type": "payment_intent.succeeded", "data": {"object": {}}}',
        b'{"id": "evt_2", "type": "payment_intent.succeeded", "data": []}',
        b'{"id": "evt_3", "type": "payment_intent.succeeded", "data": {"object": "pi_1"}}',
        b'{"id": "evt_4", "type": "payment_intent.succeeded", "data": {"object": {}}}',
        b'{"id": "evt_5", "type": "payment_intent.succeeded", '
        b'"data": {"object": {"id": "pi_1", "amount": "lots"}}}',
        b'{"id": "evt_6", "type": "payment_intent.payment_failed", '
        b'"data": {"object": {"id": "pi_1", "metadata": [1, 2]}}}',
        b'{"id": "evt_7", "type": "payment_intent.succeeded", '
        b'"data": {"object": {"id": "pi_1", "amount": 100000000000000000000000000000}}}',
        b'{"id": "evt_8", "type": "setup_intent.succeeded", '
        b'"data": {"object": {"id": "seti_1", "customer": "cus_1", "payment_method": 7}}}',
    ],
)
def test_a_signed_body_of_the_wrong_shape_is_a_400(api: Api, body: bytes) -> None:
    r = send(api, body)
    assert r.status_code == 400, r.text
    # One line naming the field (a JSON path into the event), never a traceback.
    assert re.match(r"^(body|id|type|data)(\.[a-z_]+)*: \S", r.json()["detail"]), r.text
