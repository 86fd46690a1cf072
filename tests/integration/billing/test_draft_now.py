"""A draft to approve in the demo, and a month billed in parts that bills it once.

Through the real app (in-process, a real localstripe, the clock moved): an org's
own admin closes the current month so far as a draft, approves it and is charged;
live mode refuses it in one line and writes nothing. Then a month with a draft,
a charge-now and the month close: the three invoices add up to exactly what one
month close would bill, the sub-minute and sub-unit remainders carried to the
last close and rounded up once there.
"""

from __future__ import annotations

import datetime as dt

import pytest

from appliance import models
from appliance.audit.models import AuditEntry
from appliance.invoices.models import Invoice
from appliance.schedule import clock
from billing.stripe_adapter import Gateway
from tests.fixtures.localstripe import LocalStripe
from tests.integration.billing.conftest import (
    CLOSE_TIME,
    OCTOBER,
    VISA,
    org_through_api,
    register_card,
)
from tests.integration.control.conftest import Api

pytestmark = pytest.mark.timeout(90)
DRAFT_NOW = "/api/v1/invoices/draft-now"


def ran(org: models.Org, tier: str, start: dt.datetime, length: dt.timedelta) -> None:
    """A finished On-Demand run, recorded as the entitlement interval a group leaves."""
    from appliance.entitlements.models import EntitlementInterval

    utc = start.astimezone(dt.UTC).replace(tzinfo=None)
    EntitlementInterval.create(
        org=org.id, kind="on_demand", item=tier, capacity=10, group_id=1, run_id=1,
        start=utc, end=utc + length,
    )  # fmt: skip


def minutes(doc: dict) -> int:
    return sum(
        ln["quantity_minutes"] for ln in doc["invoice"]["lines"] if ln["kind"] == "on_demand"
    )


def test_an_org_admin_drafts_the_month_so_far_approves_it_and_it_is_paid(
    api: Api, localstripe: LocalStripe
) -> None:
    org, admin = org_through_api(api, "acme")
    ran(org, "cn10", OCTOBER + dt.timedelta(days=2, hours=10), dt.timedelta(hours=2, seconds=30))
    clock.travel_to(OCTOBER + dt.timedelta(days=3))

    r = api.client.post(DRAFT_NOW, headers=admin, json={})
    assert r.status_code == 201, r.text
    draft = r.json()
    # 120 whole minutes at 2 yen (the 30 s wait for the month close), 10 % tax.
    assert (draft["status"], draft["part"], draft["early"]) == ("draft", 1, True)
    assert (minutes(draft), draft["invoice"]["subtotal"], draft["total"]) == (120, 240, 264)
    assert api.client.get("/api/v1/invoices", headers=admin).json()[0]["status"] == "draft"

    register_card(api.client.app.state.billing, localstripe, org, VISA)
    r = api.client.post(
        f"/api/v1/invoices/{draft['id']}/approve", headers=admin, json={"expected_total": 264}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paid"
    assert [(pi["amount"], pi["status"]) for pi in localstripe.payment_intents()] == [
        (264, "succeeded")
    ]
    actions = [e.action for e in AuditEntry.select().where(AuditEntry.org_id == org.id)]
    assert {"invoice.close_draft", "invoice.approve", "invoice.charge", "charge.succeeded"} <= set(
        actions
    )

    # Refunds: a part keeps it paid, the rest makes it refunded, and then no more.
    refund = f"/api/v1/invoices/{draft['id']}/refund"
    part = api.client.post(refund, headers=admin, json={"reason": "outage", "amount": 64})
    assert (part.json()["status"], part.json()["refunded"]) == ("paid", 64), part.text
    rest = api.client.post(refund, headers=admin, json={"reason": "goodwill"})
    assert (rest.json()["status"], rest.json()["refunded"]) == ("refunded", 264), rest.text
    again = api.client.post(refund, headers=admin, json={"reason": "twice"})
    assert again.status_code == 409 and "is refunded" in again.json()["detail"], again.text

    # The month close bills what came after the draft: the 30 s, rounded up once.
    clock.travel_to(CLOSE_TIME)
    assert api.call("POST", "/api/v1/invoices/close").status_code == 200
    month = Invoice.get(Invoice.org == org.id, Invoice.period == "2026-10", Invoice.part == 0)
    closed = api.client.get(f"/api/v1/invoices/{month.id}", headers=admin).json()
    assert (minutes(closed), closed["invoice"]["subtotal"]) == (1, 2)
    assert closed["status"] == "carried"  # 2 yen + tax is below the minimum charge
    assert api.call("POST", "/api/v1/invoices/close").json()["closed"] == 0


def test_live_mode_refuses_a_draft_now_in_one_line_and_writes_nothing(
    api: Api, localstripe: LocalStripe
) -> None:
    org, admin = org_through_api(api, "livecorp")
    ran(org, "cn10", OCTOBER + dt.timedelta(days=1), dt.timedelta(hours=3))
    clock.travel_to(OCTOBER + dt.timedelta(days=2))
    before = (Invoice.select().count(), AuditEntry.select().count())

    billing = api.client.app.state.billing
    test_gateway = billing.gateway
    billing.gateway = Gateway("sk_live_not_a_real_key", localstripe.url)
    try:
        r = api.client.post(DRAFT_NOW, headers=admin, json={})
    finally:
        billing.gateway = test_gateway
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert detail.startswith("draft: ") and "test mode only" in detail and "\n" not in detail

    org.stripe_mode = "live"  # a live org on a test key is refused the same way
    org.save()
    r = api.client.post(DRAFT_NOW, headers=admin, json={})
    assert r.status_code == 409 and "test mode only" in r.json()["detail"], r.text
    assert (Invoice.select().count(), AuditEntry.select().count()) == before


def test_draft_now_refuses_another_org_and_an_empty_month(api: Api) -> None:
    org, admin = org_through_api(api, "quiet")
    other, _ = org_through_api(api, "other")
    clock.travel_to(OCTOBER + dt.timedelta(days=2))
    r = api.client.post(DRAFT_NOW, headers=admin, json={"org_id": other.id})
    assert r.status_code == 403 and "superuser" in r.json()["detail"], r.text
    r = api.client.post(DRAFT_NOW, headers=admin, json={})
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == "nothing to close for 2026-10 so far: nothing is due"
    r = api.client.post(DRAFT_NOW, headers=admin, json={"period": "2026-09"})
    assert r.status_code == 400 and "period" in r.text, r.text
    assert not Invoice.select().where(Invoice.org == org.id).exists()


def test_a_draft_a_charge_now_and_the_month_close_bill_the_month_once(
    api: Api, localstripe: LocalStripe
) -> None:
    """cn20 (200 yen an hour: 3-minute units) 60 min 30 s, then 31 min 20 s more."""
    org, admin = org_through_api(api, "parts")
    register_card(api.client.app.state.billing, localstripe, org, VISA)
    day = OCTOBER + dt.timedelta(days=9)
    ran(org, "cn20", day + dt.timedelta(hours=10), dt.timedelta(minutes=60, seconds=30))
    clock.travel_to(day + dt.timedelta(hours=12))
    quote = api.client.get("/api/v1/billing/quote", headers=admin).json()
    assert [ln["quantity_minutes"] for ln in quote["lines"]] == [61]  # if the month ended now

    draft = api.client.post(DRAFT_NOW, headers=admin, json={}).json()
    assert (minutes(draft), draft["invoice"]["subtotal"]) == (60, 200)

    ran(org, "cn20", day + dt.timedelta(hours=13), dt.timedelta(minutes=31, seconds=20))
    clock.travel_to(day + dt.timedelta(hours=14))
    quote = api.client.get("/api/v1/billing/quote", headers=admin).json()
    assert [ln["quantity_minutes"] for ln in quote["lines"]] == [32]  # 91 min 50 s - 60 min
    r = api.client.post("/api/v1/invoices/charge-now", headers=admin, json={})
    assert r.status_code == 201, r.text
    charged = r.json()
    # 91 min 50 s so far, 60 billed: 30 more (10 units of 3), 1 min 50 s carried.
    assert (minutes(charged), charged["invoice"]["subtotal"], charged["part"]) == (30, 100, 2)
    assert charged["status"] == "paid"

    clock.travel_to(CLOSE_TIME)
    assert api.call("POST", "/api/v1/invoices/close").status_code == 200
    month = Invoice.get(Invoice.org == org.id, Invoice.period == "2026-10", Invoice.part == 0)
    closed = api.client.get(f"/api/v1/invoices/{month.id}", headers=admin).json()
    assert (minutes(closed), closed["invoice"]["subtotal"]) == (2, 7)  # 1 min 50 s -> 2 min

    # One month close of the same usage: ceil(91 min 50 s) = 92 min, 306.67 -> 307 yen.
    parts = [draft, charged, closed]
    assert sum(minutes(p) for p in parts) == 92
    assert sum(p["invoice"]["subtotal"] for p in parts) == 307
    numbers = [i.number for i in Invoice.select().where(Invoice.org == org.id)]
    assert len(numbers) == len(set(numbers)) == 3
