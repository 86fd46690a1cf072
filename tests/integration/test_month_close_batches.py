"""The month close in batches: a fixed number of queries per batch, exactly once under
two concurrent closers (two replicas), and each org's months rated in order.

Orgs registered in September have two months due at the November close; some
hold a thank-you credit and a forever coupon, which September's invoice uses up
partly and October's must see the rest of: inside one batch, from memory.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from zoneinfo import ZoneInfo

import pytest
from playhouse.test_utils import count_queries

from appliance import models
from appliance.audit import anchor
from appliance.audit import service as audit
from appliance.audit.models import AuditEntry
from appliance.db import database
from appliance.entitlements.models import EntitlementInterval
from appliance.invoices import service
from appliance.invoices.context import Billing
from appliance.invoices.models import BillingAccount, Coupon, Invoice, PeriodClose, Redemption
from appliance.schedule import clock

TOKYO = ZoneInfo("Asia/Tokyo")
CLOSE_TIME = dt.datetime(2026, 11, 1, 0, 6, tzinfo=TOKYO)
ACTOR = "user:test"


def utc(local: dt.datetime) -> dt.datetime:
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def seed(n: int) -> list[models.Org]:
    clock.travel_to(dt.datetime(2026, 9, 1, tzinfo=TOKYO))
    if not Coupon.select().where(Coupon.code == "TEN").exists():
        service.create_coupon(
            {"code": "TEN", "percent_off": 10, "duration": "forever"}, actor=ACTOR
        )
    orgs = []
    for i in range(n):
        org = models.Org.create(
            name=f"org-{models.Org.select().count():04d}",
            currency="JPY",
            timezone="Asia/Tokyo",
            registered_at=utc(dt.datetime(2026, 9, 15, tzinfo=TOKYO)),
        )
        for month, hours in ((9, 2), (10, 3)):
            start = utc(dt.datetime(2026, month, 20, tzinfo=TOKYO))
            EntitlementInterval.create(
                org=org.id,
                kind="on_demand",
                item="cn10",
                capacity=10,
                group_id=i,
                run_id=month,
                start=start,
                end=start + dt.timedelta(hours=hours),
            )
        if i % 3 == 0:
            BillingAccount.create(org=org.id, credit_balance=300)
        if i % 4 == 0:
            service.redeem(org.id, "TEN", actor=ACTOR)
        orgs.append(org)
    clock.travel_to(CLOSE_TIME)
    return orgs


@pytest.fixture
def closing(appliance_db: str):
    yield
    clock.reset()


def figures(inv: Invoice) -> tuple[dict, dict]:
    return json.loads(inv.document), json.loads(inv.scenario)


def test_two_closers_at_once_close_each_month_once_and_in_order(closing) -> None:
    orgs = seed(30)
    cfg = Billing(batch=7)
    reports: list[service.CloseReport] = []
    gate = threading.Barrier(2)

    def close() -> None:
        gate.wait()
        try:
            reports.append(service.close_due(cfg, actor="scheduler"))
        finally:
            database.close()

    closers = [threading.Thread(target=close) for _ in range(2)]
    for t in closers:
        t.start()
    for t in closers:
        t.join(60)
    assert sum(r.closed for r in reports) == 60
    assert sorted(r.closed + r.skipped for r in reports) == [60, 60]
    assert PeriodClose.select().count() == 60
    assert Invoice.select().where(Invoice.part == 0).count() == 60
    closes = AuditEntry.select().where(AuditEntry.action == "invoice.close")
    assert closes.count() == 60
    assert audit.verify().ok

    for i, org in enumerate(orgs):
        sept = Invoice.get(Invoice.org == org.id, Invoice.period == "2026-09")
        octo = Invoice.get(Invoice.org == org.id, Invoice.period == "2026-10")
        (s_doc, s_in), (o_doc, o_in) = figures(sept), figures(octo)
        assert s_doc["subtotal"] == 240 and o_doc["subtotal"] == 360  # 2 h, 3 h at 120/h
        credit = 300 if i % 3 == 0 else 0
        # October is rated on what September left: credit, and the coupon's uses.
        assert s_in["credit_balance"] == credit
        assert (
            o_in["credit_balance"] == s_doc["credit_remaining"] == credit - s_doc["credit_applied"]
        )
        account = BillingAccount.get(BillingAccount.org == org.id)
        assert account.credit_balance == o_doc["credit_remaining"]
        if i % 4 == 0:
            assert [d["code"] for d in s_doc["discounts"]] == ["TEN"]
            assert s_in["coupons_used"] == {"TEN": 0} and o_in["coupons_used"] == {"TEN": 1}
            assert Redemption.get(Redemption.org == org.id).uses == 2
        else:
            assert s_doc["discounts"] == []
        if not credit:
            assert (sept.status, octo.status) == ("draft", "draft")


def test_a_batch_costs_the_same_queries_for_ten_orgs_as_for_forty(closing) -> None:
    cfg = Billing(batch=500)
    seed(10)
    with count_queries() as small:
        assert service.close_due(cfg).closed == 20
    seed(40)
    with count_queries() as large:
        assert service.close_due(cfg).closed == 80
    assert large.count == small.count
    assert service.close_due(cfg).closed == 0  # and a rerun closes nothing


def test_batched_audit_rows_are_sealed_and_anchored(closing, tmp_path) -> None:
    anchor.configure(tmp_path)  # what the appliance does at start: its data dir's key
    seed(12)
    assert service.close_due(Billing(batch=5)).closed == 24
    closes = AuditEntry.select().where(AuditEntry.action == "invoice.close")
    assert closes.count() == 24 and all(e.seal for e in closes)
    assert audit.verify().ok  # every seal matches and the anchored row is the newest
