"""Every JSON answer of the billing routes, with real data behind it, is exactly its
contract Struct (no field more, none missing) and conforms to the OpenAPI document's
response schema, as schemathesis's ``response_schema_conformance`` checks it.

The fuzzer meets mostly empty billing (no invoices, no coupons); here an org has used
cn10, redeemed a coupon, got credit and a draft, so the invoice, coupon and account
answers carry every kind of field they can.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from appliance.contract import billing as b
from appliance.contract import entitlements as e
from appliance.contract.usage import Usage
from appliance.schedule import clock
from billing.stripe_adapter import event_payload, sign_payload
from tests.fixtures.localstripe import LocalStripe
from tests.integration.billing.conftest import (
    OCTOBER,
    VISA,
    WEBHOOK_SECRET,
    org_through_api,
    register_card,
    used,
)
from tests.integration.control.conftest import Api

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (dev dependency group)")

pytestmark = pytest.mark.timeout(90)


class Checker:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.schema = schemathesis.openapi.from_dict(api.client.get("/schema/openapi.json").json())
        self.seen: set[tuple[str, str]] = set()

    def __call__(
        self,
        kind: Any,
        method: str,
        template: str,
        headers: dict[str, str] | None = None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        **ids: Any,
    ) -> Any:
        """Call ``template`` (``{name}`` filled from ``ids``); return the decoded answer."""
        path = template.format(**ids)
        r = self.api.client.request(
            method,
            path,
            headers=headers if headers is not None else self.api.headers("admin"),
            json=json,
            params=params,
            content=content,
        )
        assert 200 <= r.status_code < 300, (method, path, r.status_code, r.text)
        self.schema[template][method].validate_response(r)  # raises on any mismatch
        body = r.json()
        decoded = msgspec.convert(body, kind)
        assert msgspec.to_builtins(decoded) == body, (method, path)
        self.seen.add((method.lower(), template))
        return decoded


def test_every_billing_answer_is_its_struct_and_conforms_to_the_openapi_schema(
    api: Api, localstripe: LocalStripe
) -> None:
    check = Checker(api)
    org, admin = org_through_api(api, "shapes")
    used(org, "cn10", OCTOBER + dt.timedelta(days=2), 30)
    clock.travel_to(OCTOBER + dt.timedelta(days=20))

    # Coupons (superuser): one for every org, one limited to this org.
    check(b.Coupon, "POST", "/api/v1/billing/coupons", json={"code": "TEN", "percent_off": 10})
    limited = {
        "code": "PARTNER",
        "amount_off": 100,
        "currency": "JPY",
        "duration": "repeating",
        "months": 3,
        "orgs": ["shapes"],
    }
    assert check(b.Coupon, "POST", "/api/v1/billing/coupons", json=limited).orgs == ["shapes"]
    account = check(
        b.Account, "POST", "/api/v1/billing/coupons/{code}/redeem", admin, json={}, code="TEN"
    )
    assert [c.code for c in account.coupons] == ["TEN"]
    credit = {"amount": 300, "reason": "thank you", "org_id": org.id}
    assert check(b.Account, "POST", "/api/v1/billing/credits", json=credit).credit_balance == 300
    mine = check(list[b.Coupon], "GET", "/api/v1/billing/coupons", admin)
    assert [(c.code, c.uses, c.redemptions) for c in mine] == [("TEN", 0, msgspec.UNSET)]
    every = check(list[b.Coupon], "GET", "/api/v1/billing/coupons")
    assert {c.code: c.redemptions for c in every} == {"TEN": 1, "PARTNER": 0}

    # The card link and what the card page reads behind it (public: the link's token).
    link = check(b.CardLink, "POST", "/api/v1/billing/card-link", admin, json={})
    token = link.url.split("token=")[1]
    setup = check(
        b.CardSetup, "GET", "/billing/card/setup", {}, params={"org": org.id, "token": token}
    )
    assert setup.org == "shapes" and setup.card is None

    # Entitlements: pick a tier, buy and cancel a flat window.
    ents = check(
        e.Entitlements, "PUT", "/api/v1/entitlements/on-demand", admin, json={"tier": "cn10"}
    )
    assert ents.default == "on_demand:cn10"
    check(
        e.Entitlements,
        "PUT",
        "/api/v1/entitlements/default",
        admin,
        json={"entitlement": "on_demand:cn20"},
    )
    start = (OCTOBER + dt.timedelta(days=25)).isoformat()
    window = check(
        e.FlatWindow,
        "POST",
        "/api/v1/entitlements/flat",
        admin,
        json={"plan": "flat10-30d", "start": start},
    )
    assert window.state == "scheduled"
    gone = check(
        e.FlatWindow, "DELETE", "/api/v1/entitlements/flat/{window_id}", admin, window_id=window.id
    )
    assert gone.state == "cancelled"
    ents = check(e.Entitlements, "GET", "/api/v1/entitlements", admin)
    assert [w.id for w in ents.flat] == [window.id]
    check(e.Catalog, "GET", "/api/v1/entitlements/catalog", admin)
    period = {"start": OCTOBER.isoformat(), "end": (OCTOBER + dt.timedelta(days=20)).isoformat()}
    spans = check(e.Intervals, "GET", "/api/v1/entitlements/intervals", admin, params=period)
    assert [iv.tier for iv in spans.on_demand] == ["cn10"]
    check(Usage, "GET", "/api/v1/usage", admin)

    # The month so far: quoted, then drafted, adjusted, listed, voided.
    quote = check(b.Quote, "GET", "/api/v1/billing/quote", admin)
    assert quote.discounts and quote.credit_applied == 300
    draft = check(b.InvoiceDoc, "POST", "/api/v1/invoices/draft-now", admin, json={})
    assert (draft.status, draft.total) == ("draft", quote.total)
    adjusted = check(
        b.InvoiceDoc,
        "POST",
        "/api/v1/invoices/{invoice_id}/adjust",
        admin,
        json={"amount": 10, "reason": "outage"},
        invoice_id=draft.id,
    )
    assert [a.amount for a in adjusted.adjustments] == [10]
    listed = check(list[b.InvoiceSummary], "GET", "/api/v1/invoices", admin)
    assert [i.id for i in listed] == [draft.id]
    check(b.InvoiceDoc, "GET", "/api/v1/invoices/{invoice_id}", admin, invoice_id=draft.id)
    check(b.Account, "GET", "/api/v1/billing", admin)
    voided = check(
        b.InvoiceDoc,
        "POST",
        "/api/v1/invoices/{invoice_id}/void",
        admin,
        json={"reason": "a test"},
        invoice_id=draft.id,
    )
    assert voided.status == "void"

    # With a card: a draft approved and paid, part of it refunded; a charge-now paid.
    register_card(api.client.app.state.billing, localstripe, org, VISA)
    used(org, "cn10", OCTOBER + dt.timedelta(days=19), 10)
    draft = check(b.InvoiceDoc, "POST", "/api/v1/invoices/draft-now", admin, json={})
    paid = check(
        b.InvoiceDoc,
        "POST",
        "/api/v1/invoices/{invoice_id}/approve",
        admin,
        json={"expected_total": draft.total},
        invoice_id=draft.id,
    )
    assert paid.status == "paid" and paid.paid_at and paid.payment_intent
    part = check(
        b.InvoiceDoc,
        "POST",
        "/api/v1/invoices/{invoice_id}/refund",
        admin,
        json={"amount": 100, "reason": "outage"},
        invoice_id=draft.id,
    )
    assert part.refunded == 100
    used(org, "cn10", OCTOBER + dt.timedelta(days=19, hours=12), 5)
    now = check(b.InvoiceDoc, "POST", "/api/v1/invoices/charge-now", admin, json={})
    assert now.status == "paid" and now.early
    check(b.CloseResult, "POST", "/api/v1/invoices/close")

    # A signed event for a PaymentIntent that is nobody's: acknowledged, ignored, once.
    body = event_payload("evt_shapes", "payment_intent.succeeded", {"id": "pi_nobody"}, False)
    signed = {"stripe-signature": sign_payload(body, WEBHOOK_SECRET)}
    ack = check(b.WebhookAck, "POST", "/api/v1/stripe/webhook", signed, content=body)
    assert ack.ignored and ack.duplicate is False
    again = check(b.WebhookAck, "POST", "/api/v1/stripe/webhook", signed, content=body)
    assert again.duplicate is True and again.ignored is msgspec.UNSET

    # Every JSON operation of the billing routes but three: charge (a retry of a failed
    # payment), the card page's report (register_card confirms through the service) and
    # the pay page's (it needs a bank's challenge).
    assert len(check.seen) == 26
