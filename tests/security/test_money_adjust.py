"""Unlimited credit: an org admin's adjustment lowers one invoice, never banks credit.

Two orgs close October through the real app (usage recorded as entitlement
intervals, the clock moved to the close); their admins then try to turn
adjustments into credit: a huge amount, an amount past the invoice, a 10^30, and
an adjusted invoice voided to get the adjustment back as credit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import models
from appliance.schedule import clock
from tests.integration.billing.conftest import CLOSE_TIME, OCTOBER, used
from tests.integration.control.conftest import Api, running_api

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def api(appliance_db: str, mosquitto, tmp_path: Path) -> Iterator[Api]:
    with running_api(appliance_db, mosquitto.url, tmp_path / "data") as running:
        yield running


def org_with_october_invoice(api: Api, name: str) -> tuple[dict[str, str], dict]:
    """An org registered on 1 October with 10 hours of cn10 (1200 yen + 10% tax)."""
    clock.travel_to(OCTOBER)
    made = api.call(
        "POST", "/api/v1/orgs", json={"name": name, "currency": "JPY", "timezone": "Asia/Tokyo"}
    ).json()
    used(models.Org.get_by_id(made["id"]), "cn10", OCTOBER + dt.timedelta(days=3), 10)
    clock.travel_to(CLOSE_TIME)
    assert api.call("POST", "/api/v1/invoices/close").status_code == 200
    admin = {"Authorization": f"Bearer {made['admin']['token']}"}
    (listed,) = api.client.get("/api/v1/invoices", headers=admin).json()
    invoice = api.client.get(f"/api/v1/invoices/{listed['id']}", headers=admin).json()
    assert (invoice["status"], invoice["total"], invoice["invoice"]["net"]) == ("draft", 1320, 1200)
    return admin, invoice


def credit(api: Api, admin: dict[str, str]) -> int:
    return api.client.get("/api/v1/billing", headers=admin).json()["credit_balance"]


def test_an_adjustment_lowers_the_invoice_to_zero_at_most_and_never_makes_credit(
    api: Api,
) -> None:
    admin, inv = org_with_october_invoice(api, "acme")
    adjust = f"/api/v1/invoices/{inv['id']}/adjust"

    for amount in (1_000_000_000, 1201, 10**30, 2**63, 0, -5):
        r = api.client.post(adjust, headers=admin, json={"amount": amount, "reason": "outage"})
        assert r.status_code == 400, (amount, r.status_code, r.text)
        assert "amount" in r.text, r.text  # the field is named (detail or extra)
    r = api.client.post(adjust, headers=admin, json={"amount": 1_000_000_000, "reason": "x"})
    assert "at most 1200" in r.json()["detail"]
    assert api.client.get(f"/api/v1/invoices/{inv['id']}", headers=admin).json()["total"] == 1320
    assert credit(api, admin) == 0

    r = api.client.post(adjust, headers=admin, json={"amount": 200, "reason": "outage"})
    assert r.status_code == 200 and r.json()["total"] == 1100, r.text
    r = api.client.post(adjust, headers=admin, json={"amount": 1001, "reason": "more"})
    assert r.status_code == 400 and "at most 1000" in r.json()["detail"], r.text
    r = api.client.post(adjust, headers=admin, json={"amount": 1000, "reason": "all of it"})
    assert r.status_code == 200, r.text
    assert (r.json()["total"], r.json()["status"]) == (0, "settled")
    assert credit(api, admin) == 0


def test_voiding_an_adjusted_invoice_gives_back_no_credit(api: Api) -> None:
    admin, inv = org_with_october_invoice(api, "beta")
    r = api.client.post(
        f"/api/v1/invoices/{inv['id']}/adjust", headers=admin, json={"amount": 500, "reason": "x"}
    )
    assert r.status_code == 200, r.text
    r = api.client.post(f"/api/v1/invoices/{inv['id']}/void", headers=admin, json={"reason": "y"})
    assert r.status_code == 200 and r.json()["status"] == "void", r.text
    assert credit(api, admin) == 0
    # Credit comes from a superuser alone, and is bounded too.
    r = api.client.post(
        "/api/v1/billing/credits", headers=admin, json={"amount": 500, "reason": "me"}
    )
    assert r.status_code == 403
    r = api.call("POST", "/api/v1/billing/credits", json={"amount": 10**30, "reason": "z"})
    assert r.status_code == 400 and "amount" in r.text
