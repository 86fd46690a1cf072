"""Invoices, billing account, coupons and credits, the Stripe webhook, and customer pages.

Thin handlers: parse, call a service, return its document. Money actions are
admin-only (``opt`` role) and record their own audit entries.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from appliance import auth
from appliance.api import BodyId, Id, OptionalId, call
from appliance.audit.http import actor_of
from appliance.contract.billing import (
    Account,
    CardLink,
    CardSaved,
    CardSetup,
    CloseResult,
    Coupon,
    InvoiceDoc,
    InvoiceSummary,
    PayResult,
    Quote,
    WebhookAck,
)
from appliance.invoices import document, payments, service

Amount = Annotated[int, msgspec.Meta(ge=1, le=service.MAX_AMOUNT)]
"""Minor units an admin may type: positive and bounded (never a 64-bit overflow)."""

ADMIN = {"role": "admin", "audited": True}
ADMIN_SUPER = {"role": "admin", "superuser": True, "audited": True}
PUBLIC = {"public": True, "audited": True}


class Approve(msgspec.Struct, forbid_unknown_fields=True):
    expected_total: Amount | None = None
    """The total you reviewed; the approval is refused (409) if the invoice changed."""


class Reason(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


class Adjust(msgspec.Struct, forbid_unknown_fields=True):
    amount: Amount
    """Taken off this invoice, in its currency's minor unit (JPY yen, USD cents); at most
    the invoice's amount before tax. It never becomes credit."""
    reason: str


class Refund(msgspec.Struct, forbid_unknown_fields=True):
    reason: str
    amount: Amount | None = None
    """Default: everything not refunded yet."""


class ForOrg(msgspec.Struct, forbid_unknown_fields=True):
    org_id: BodyId | None = None
    """Another org (appliance superusers only); default: yours."""


class Credit(msgspec.Struct, forbid_unknown_fields=True):
    amount: Amount
    reason: str
    org_id: BodyId | None = None


class NewCoupon(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    """A secret like a promo code: only the superuser and the orgs that redeemed it see it."""
    applies_to: str = "all"
    duration: str = "once"
    percent_off: str | Annotated[int, msgspec.Meta(ge=-100, le=100)] | None = None
    amount_off: Amount | None = None
    currency: str | None = None
    months: Annotated[int, msgspec.Meta(ge=-1200, le=1200)] | None = None
    orgs: list[str] | None = None
    """Only these orgs (by name) may redeem it; default: every org."""


class SetupDone(msgspec.Struct, forbid_unknown_fields=True):
    setup_intent: str


def _doc(inv: Any) -> InvoiceDoc:
    return service.doc(inv)


# --- invoices ---------------------------------------------------------------------------


@get("/api/v1/invoices", opt={"role": "admin"})
async def list_invoices(
    caller: auth.CallerParam,
    status: FromQuery[str | None] = None,
    period: FromQuery[str | None] = None,
    all_orgs: FromQuery[bool] = False,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 200,
) -> list[InvoiceSummary]:
    """Invoices newest first; ``all_orgs=true`` for an appliance superuser."""
    return await call(
        service.list_invoices, caller, status=status, period=period, all_orgs=all_orgs, limit=limit
    )


@get("/api/v1/invoices/{invoice_id:int}", opt={"role": "admin"})
async def get_invoice(caller: auth.CallerParam, invoice_id: FromPath[Id]) -> InvoiceDoc:
    """The invoice with its lines, discounts, tax and totals (billing's JSON) and status."""
    return await call(lambda: _doc(service.get(caller, invoice_id)))


@get("/api/v1/invoices/{invoice_id:int}/document", opt={"role": "admin"}, media_type=MediaType.HTML)
async def invoice_document(caller: auth.CallerParam, invoice_id: FromPath[Id], state: State) -> str:
    """The invoice as a self-contained HTML document (print it to PDF)."""
    return await call(
        lambda: document.render_invoice(service.get(caller, invoice_id), state.billing)
    )


@post("/api/v1/invoices/{invoice_id:int}/approve", status_code=200, opt=ADMIN)
async def approve(
    caller: auth.CallerParam,
    invoice_id: FromPath[Id],
    state: State,
    data: JSONBody[Approve | None] = None,
) -> InvoiceDoc:
    """draft → approved, then charge the saved card (off-session)."""
    actor = actor_of(caller)
    expected = data.expected_total if data else None
    inv = await call(service.approve, caller, invoice_id, expected, actor=actor)
    if state.billing.gateway is not None:
        inv = await call(payments.charge, state.billing, caller, inv.id, actor=actor)
    return await call(_doc, inv)


@post("/api/v1/invoices/{invoice_id:int}/void", status_code=200, opt=ADMIN)
async def void(
    caller: auth.CallerParam, invoice_id: FromPath[Id], data: JSONBody[Reason]
) -> InvoiceDoc:
    inv = await call(service.void, caller, invoice_id, data.reason, actor=actor_of(caller))
    return await call(_doc, inv)


@post("/api/v1/invoices/{invoice_id:int}/adjust", status_code=200, opt=ADMIN)
async def adjust(
    caller: auth.CallerParam, invoice_id: FromPath[Id], data: JSONBody[Adjust]
) -> InvoiceDoc:
    """Credit an amount with a reason against a draft or approved invoice (re-rated)."""
    inv = await call(
        service.adjust, caller, invoice_id, data.amount, data.reason, actor=actor_of(caller)
    )
    return await call(_doc, inv)


@post("/api/v1/invoices/{invoice_id:int}/charge", status_code=200, opt=ADMIN)
async def charge(caller: auth.CallerParam, invoice_id: FromPath[Id], state: State) -> InvoiceDoc:
    """Charge an approved invoice, or retry a failed one now."""
    inv = await call(payments.charge, state.billing, caller, invoice_id, actor=actor_of(caller))
    return await call(_doc, inv)


@post("/api/v1/invoices/{invoice_id:int}/refund", status_code=200, opt=ADMIN)
async def refund(
    caller: auth.CallerParam, invoice_id: FromPath[Id], data: JSONBody[Refund], state: State
) -> InvoiceDoc:
    inv = await call(
        payments.refund,
        state.billing,
        caller,
        invoice_id,
        data.amount,
        data.reason,
        actor=actor_of(caller),
    )
    return await call(_doc, inv)


@post("/api/v1/invoices/charge-now", status_code=201, opt=ADMIN)
async def charge_now(
    caller: auth.CallerParam, state: State, data: JSONBody[ForOrg | None] = None
) -> InvoiceDoc:
    """Close the org's current month up to now and charge it (approved by this call)."""
    org_id = await call(service.org_for, caller, data.org_id if data else None)
    actor = actor_of(caller)
    inv = await call(service.close_early, state.billing, org_id, actor=actor)
    if inv.status == "approved" and state.billing.gateway is not None:
        inv = await call(payments.charge, state.billing, None, inv.id, actor=actor)
    return await call(_doc, inv)


@post("/api/v1/invoices/draft-now", status_code=201, opt=ADMIN)
async def draft_now(
    caller: auth.CallerParam, state: State, data: JSONBody[ForOrg | None] = None
) -> InvoiceDoc:
    """Close the org's current month up to now as a draft to review and approve, the way
    the month close drafts last month (Stripe test mode only; refused in live mode)."""
    org_id = await call(service.org_for, caller, data.org_id if data else None)
    inv = await call(service.close_draft, state.billing, org_id, actor=actor_of(caller))
    return await call(_doc, inv)


@post("/api/v1/invoices/close", status_code=200, opt=ADMIN_SUPER)
async def close_now(caller: auth.CallerParam, state: State) -> CloseResult:
    """Run the month close now for every due (org, month) not closed yet (idempotent)."""
    report = await call(service.close_due, state.billing, actor=actor_of(caller))
    return report.doc()


# --- account, card, coupons, credits ----------------------------------------------------


@get("/api/v1/billing", opt={"role": "admin"})
async def get_account(caller: auth.CallerParam, state: State, org_id: OptionalId = None) -> Account:
    """Mode, card, credit and carried balance, redeemed coupons."""
    org = await call(service.org_for, caller, org_id)
    return await call(service.account_doc, org, state.billing.mode)


@get("/api/v1/billing/quote", opt={"role": "admin"})
async def quote_to_date(caller: auth.CallerParam, state: State, org_id: OptionalId = None) -> Quote:
    """The invoice the month close would draft if the month ended now (nothing stored)."""
    org = await call(service.org_for, caller, org_id)
    return await call(service.quote_to_date, state.billing, org)


@post("/api/v1/billing/card-link", status_code=201, opt=ADMIN)
async def card_link(
    caller: auth.CallerParam, state: State, data: JSONBody[ForOrg | None] = None
) -> CardLink:
    """A link to the card registration page to send to whoever holds the card."""
    org = await call(service.org_for, caller, data.org_id if data else None)
    return await call(payments.card_link, state.billing, org, actor=actor_of(caller))


@post("/api/v1/billing/credits", status_code=201, opt=ADMIN_SUPER)
async def add_credit(caller: auth.CallerParam, data: JSONBody[Credit]) -> Account:
    org = await call(service.org_for, caller, data.org_id)
    return await call(service.add_credit, org, data.amount, data.reason, actor=actor_of(caller))


@get("/api/v1/billing/coupons", opt={"role": "admin"})
async def list_coupons(caller: auth.CallerParam) -> list[Coupon]:
    """The coupons the org redeemed; every coupon, with its orgs, for a superuser."""
    return await call(service.list_coupons, caller)


@post("/api/v1/billing/coupons", status_code=201, opt=ADMIN_SUPER)
async def create_coupon(caller: auth.CallerParam, data: JSONBody[NewCoupon]) -> Coupon:
    spec = msgspec.structs.asdict(data)
    if isinstance(spec["percent_off"], int):
        spec["percent_off"] = str(spec["percent_off"])
    return await call(service.create_coupon, spec, actor=actor_of(caller))


@post("/api/v1/billing/coupons/{code:str}/redeem", status_code=201, opt=ADMIN)
async def redeem(
    caller: auth.CallerParam, code: FromPath[str], data: JSONBody[ForOrg | None] = None
) -> Account:
    org = await call(service.org_for, caller, data.org_id if data else None)
    return await call(service.redeem, org, code, actor=actor_of(caller))


# --- Stripe and customer pages (no API token: signatures and link tokens) -----------------


@post("/api/v1/stripe/webhook", status_code=200, opt=PUBLIC)
async def stripe_webhook(request: Request[Any, Any, State], state: State) -> WebhookAck:
    """Signed Stripe events (payment_intent.*, setup_intent.succeeded), once per event id."""
    body = await request.body()
    return await call(
        payments.webhook, state.billing, body, request.headers.get("stripe-signature")
    )


@get("/billing/card", opt=PUBLIC, media_type=MediaType.HTML)
async def card_page(state: State, org: FromQuery[Id], token: FromQuery[str]) -> Response[str]:
    """The card registration page: Stripe.js and a SetupIntent with usage=off_session."""
    setup = await call(payments.card_setup, state.billing, org, token)
    done = f"/billing/card/complete?org={org}&token={token}"
    page = document.render_card_page(setup, state.billing, done)
    return Response(page, media_type=MediaType.HTML, headers={"Cache-Control": "no-store"})


@get("/billing/card/setup", opt=PUBLIC)
async def card_setup(state: State, org: FromQuery[Id], token: FromQuery[str]) -> CardSetup:
    """What the card page gets, as JSON (a SetupIntent's client secret, the publishable key)."""
    return await call(payments.card_setup, state.billing, org, token)


@post("/billing/card/complete", status_code=200, opt=PUBLIC)
async def card_complete(
    state: State, org: FromQuery[Id], token: FromQuery[str], data: JSONBody[SetupDone]
) -> CardSaved:
    return await call(payments.card_complete, state.billing, org, token, data.setup_intent)


@get("/billing/pay", opt=PUBLIC, media_type=MediaType.HTML)
async def pay_page(state: State, invoice: FromQuery[Id], token: FromQuery[str]) -> Response[str]:
    """Where a customer confirms a payment their bank wants authenticated (SCA)."""
    page = await call(payments.pay_page, state.billing, invoice, token)
    done = f"/billing/pay/complete?invoice={invoice}&token={token}"
    html = document.render_pay_page(page, state.billing, done)
    return Response(html, media_type=MediaType.HTML, headers={"Cache-Control": "no-store"})


@post("/billing/pay/complete", status_code=200, opt=PUBLIC)
async def pay_complete(state: State, invoice: FromQuery[Id], token: FromQuery[str]) -> PayResult:
    return await call(payments.pay_complete, state.billing, invoice, token)


ROUTES = [
    list_invoices,
    get_invoice,
    invoice_document,
    approve,
    void,
    adjust,
    charge,
    refund,
    charge_now,
    draft_now,
    close_now,
    get_account,
    quote_to_date,
    card_link,
    add_credit,
    list_coupons,
    create_coupon,
    redeem,
    stripe_webhook,
    card_page,
    card_setup,
    card_complete,
    pay_page,
    pay_complete,
]


def billing_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Stripe trouble at the API edge: 502 when unreachable, 409 for modes, 400 otherwise."""
    from billing.stripe_adapter import StripeModeError, StripeUnavailable

    code = (
        502
        if isinstance(exc, StripeUnavailable)
        else 409
        if isinstance(exc, StripeModeError)
        else 400
    )
    return Response({"status_code": code, "detail": str(exc)}, status_code=code)
