"""Charging through Stripe exactly once: the outbox, reconciliation, dunning, webhooks.

The outbox: before Stripe is called, a :class:`ChargeAttempt` (invoice, attempt
n, idempotency key, state ``pending``) is committed. After the call the
PaymentIntent id and outcome are recorded. A process that dies in between
leaves a pending attempt; :func:`reconcile` finds its PaymentIntent by metadata
(invoice id and attempt) and records it, or, when Stripe never saw the call,
issues the same attempt again with the same key. A pending attempt blocks any
new one, so there is never a second PaymentIntent for an attempt, and never an
attempt while an earlier one's outcome is unknown.

Declines are ``failed`` with the decline code and a retry planned by
:data:`outcome.RETRY_AFTER` (dunning); authentication (SCA) leaves the invoice
``requires_action`` with a link where the customer confirms the payment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
from typing import Any

import msgspec
import peewee as pw

from appliance import models
from appliance.audit import service as audit
from appliance.contract import billing as contract
from appliance.errors import ApplianceError, Conflict, NotFound, Unauthorized
from appliance.invoices import faults, outcome, states
from appliance.invoices.context import Billing
from appliance.invoices.models import (
    LINK_DAYS,
    ChargeAttempt,
    Invoice,
    LinkToken,
    StripeCustomer,
    StripeEvent,
)
from appliance.invoices.service import amend, get, move
from appliance.invoices.states import AttemptState, InvoiceStatus
from appliance.notify import service as notify
from appliance.schedule import clock
from billing.stripe_adapter import (
    ChargeOutcome,
    Gateway,
    Intent,
    StripeModeError,
    StripeRejected,
    StripeUnavailable,
    idempotency_key,
)

log = logging.getLogger(__name__)

RECONCILE_GRACE = dt.timedelta(seconds=60)
"""A pending attempt this process started is left alone this long (its call may be slow)."""

_STARTED = clock.system()
"""When this process started, by the machine's clock (the appliance's may be moved)."""
_inflight: set[int] = set()
_inflight_lock = threading.Lock()


def _mode_error(e: StripeModeError) -> Conflict:
    return Conflict(str(e))


# --- customers and the card page ------------------------------------------------------


def _customer(gw: Gateway, org: models.Org) -> StripeCustomer:
    """The org's Stripe Customer in the key's mode, created once."""
    gw.require_mode(org.stripe_mode, f"org {org.name}")
    with audit.write_transaction():
        row, _ = StripeCustomer.get_or_create(org=org.id, mode=gw.mode)
    if not row.customer:
        key = f"mockmock-{gw.mode}-org-{org.id}-customer"
        row.customer = gw.create_customer(org.id, org.name, key)
        with audit.write_transaction():
            row.updated_at = clock.utcnow()
            row.save()
            audit.record(
                "stripe.customer",
                actor=audit.SCHEDULER,
                org_id=org.id,
                target=f"customer:{row.customer}",
                after={"customer": row.customer, "mode": gw.mode},
            )
    return row


def _new_link(org_id: int, purpose: str, invoice_id: int | None = None) -> str:
    token = secrets.token_urlsafe(24)
    LinkToken.create(
        org=org_id,
        purpose=purpose,
        invoice_id=invoice_id,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        expires_at=clock.utcnow() + dt.timedelta(days=LINK_DAYS),
    )
    return token


def _link(token: str, purpose: str) -> LinkToken:
    row = LinkToken.get_or_none(
        LinkToken.token_hash == hashlib.sha256((token or "").encode()).hexdigest()
    )
    if row is None or row.purpose != purpose:
        raise Unauthorized("token: unknown link (ask your admin for a new one)")
    if row.expires_at <= clock.utcnow():
        raise Unauthorized("token: this link has expired (ask your admin for a new one)")
    return row


def card_link(cfg: Billing, org_id: int, *, actor: str) -> contract.CardLink:
    """A link to the card registration page for the org (valid :data:`LINK_DAYS` days)."""
    gw = cfg.require_gateway()
    org = models.Org.get_by_id(org_id)
    try:
        cust = _customer(gw, org)
    except StripeModeError as e:
        raise _mode_error(e) from None
    with audit.write_transaction():
        token = _new_link(org.id, "card")
        audit.record(
            "card.link",
            actor=actor,
            org_id=org.id,
            target=f"customer:{cust.customer}",
            after={"mode": gw.mode},
        )
    return contract.CardLink(
        url=f"{cfg.link_base}/billing/card?org={org.id}&token={token}",
        mode=gw.mode,
        expires_in_days=LINK_DAYS,
        customer=cust.customer,
    )


def card_setup(cfg: Billing, org_id: int, token: str) -> contract.CardSetup:
    """A SetupIntent (usage=off_session) for the card page behind a valid link."""
    gw = cfg.require_gateway()
    link = _link(token, "card")
    if link.org_id != org_id:
        raise Unauthorized("token: this link is for another org")
    org = models.Org.get_by_id(org_id)
    try:
        cust = _customer(gw, org)
    except StripeModeError as e:
        raise _mode_error(e) from None
    si = gw.create_setup_intent(cust.customer, org.id)
    return contract.CardSetup(
        org=org.name,
        mode=gw.mode,
        setup_intent=si.id,
        client_secret=si.client_secret,
        publishable_key=cfg.publishable_key,
        card=cust.card or None,
    )


def save_card(cfg: Billing, customer: str, payment_method: str, *, actor: str) -> StripeCustomer:
    """Make ``payment_method`` the card charges use for the org owning ``customer``."""
    gw = cfg.require_gateway()
    row = StripeCustomer.get_or_none(
        StripeCustomer.customer == customer, StripeCustomer.mode == gw.mode
    )
    if row is None:
        raise NotFound(f"customer: {customer} is not a {gw.mode}-mode customer of this appliance")
    gw.attach_payment_method(payment_method, customer)
    summary = gw.card_summary(payment_method)
    with audit.write_transaction():
        changed = row.payment_method != payment_method
        row.payment_method = payment_method
        row.card = summary
        row.updated_at = clock.utcnow()
        row.save()
        if changed:
            audit.record(
                "card.saved",
                actor=actor,
                org_id=row.org_id,
                target=f"customer:{customer}",
                after={"card": summary, "payment_method": payment_method, "mode": gw.mode},
            )
    return row


def card_complete(cfg: Billing, org_id: int, token: str, setup_intent: str) -> contract.CardSaved:
    """The card page reports a confirmed SetupIntent; checked with Stripe, not trusted."""
    gw = cfg.require_gateway()
    link = _link(token, "card")
    if link.org_id != org_id:
        raise Unauthorized("token: this link is for another org")
    si = gw.retrieve_setup_intent(setup_intent)
    row = StripeCustomer.get_or_none(StripeCustomer.org == org_id, StripeCustomer.mode == gw.mode)
    if row is None or si.customer != row.customer:
        raise ApplianceError("setup_intent: not this org's")
    if si.status != "succeeded" or not si.payment_method:
        raise Conflict(f"setup_intent: is {si.status}, not succeeded")
    saved = save_card(cfg, row.customer, si.payment_method, actor="customer")
    return contract.CardSaved(card=saved.card, mode=gw.mode)


# --- charging -------------------------------------------------------------------------


def charge(cfg: Billing, caller: Any, invoice_id: int, *, actor: str) -> Invoice:
    """Start the next attempt of an approved (or failed) invoice and record its outcome."""
    gw = cfg.require_gateway()
    with audit.write_transaction():
        inv = get(caller, invoice_id) if caller is not None else Invoice.get_by_id(invoice_id)
        att = _begin(gw, inv, actor)
    return _execute(gw, cfg, att.id)


def _begin(gw: Gateway, inv: Invoice, actor: str) -> ChargeAttempt:
    if inv.status not in states.CHARGEABLE:
        raise Conflict(f"invoice {inv.number} is {inv.status}; only approved or failed charge")
    try:
        gw.require_mode(inv.mode, f"invoice {inv.number}")
    except StripeModeError as e:
        raise _mode_error(e) from None
    open_ = ChargeAttempt.select().where(
        ChargeAttempt.invoice == inv.id,
        ChargeAttempt.state.in_(
            (AttemptState.PENDING, AttemptState.PROCESSING, AttemptState.REQUIRES_ACTION)
        ),
    )
    if open_.exists():
        raise Conflict(f"invoice {inv.number}: an attempt's outcome is still open")
    cust = StripeCustomer.get_or_none(
        StripeCustomer.org == inv.org_id, StripeCustomer.mode == gw.mode
    )
    if cust is None or not cust.payment_method:
        raise Conflict(
            f"invoice {inv.number}: the org has no {gw.mode}-mode card; send it the card link "
            "(POST /api/v1/billing/card-link)"
        )
    n = inv.attempts + 1
    att = ChargeAttempt.create(
        invoice=inv.id,
        attempt=n,
        idempotency_key=idempotency_key(inv.id, n, gw.mode),
        mode=gw.mode,
        amount=inv.total,
        currency=inv.currency,
        customer=cust.customer,
    )
    move(
        inv,
        InvoiceStatus.CHARGING,
        "invoice.charge",
        actor=actor,
        after={
            "attempt": n,
            "amount": inv.total,
            "currency": inv.currency,
            "idempotency_key": att.idempotency_key,
            "mode": gw.mode,
        },
        attempts=n,
        next_retry_at=None,
    )
    return att


def _execute(gw: Gateway, cfg: Billing, attempt_id: int) -> Invoice:
    """Call Stripe for a committed pending attempt, then record what happened."""
    with _inflight_lock:
        if attempt_id in _inflight:
            return ChargeAttempt.get_by_id(attempt_id).invoice
        _inflight.add(attempt_id)
    try:
        att = ChargeAttempt.get_by_id(attempt_id)
        inv = att.invoice
        cust = StripeCustomer.get(StripeCustomer.customer == att.customer)
        try:
            result = gw.charge(
                amount=att.amount,
                currency=att.currency,
                customer=att.customer,
                payment_method=cust.payment_method,
                invoice_id=inv.id,
                attempt=att.attempt,
                invoice_number=inv.number,
                key=att.idempotency_key,
                receipt_email=notify.billing_email(inv.org_id),
            )
        except (StripeUnavailable, StripeRejected) as e:
            # Unknown (or refused) outcome: the attempt stays pending; reconcile decides.
            log.warning("charge of %s attempt %d: %s", inv.number, att.attempt, e)
            audit.record(
                "charge.unknown",
                actor=audit.SCHEDULER,
                org_id=inv.org_id,
                target=f"invoice:{inv.id}",
                after={"attempt": att.attempt, "error": str(e)},
            )
            return Invoice.get_by_id(inv.id)
        faults.point("after_charge_call")
        if result.intent is None:
            # A decline answered without the PaymentIntent: find it by its metadata.
            try:
                found = gw.find_payment_intent(
                    att.customer, inv.id, att.attempt, att.amount, att.currency
                )
            except (StripeUnavailable, StripeRejected):
                found = None
            result = ChargeOutcome(found, result.decline_code, result.message)
        record_outcome(cfg, attempt_id, result.intent, result.decline_code)
        return Invoice.get_by_id(inv.id)
    finally:
        with _inflight_lock:
            _inflight.discard(attempt_id)


def move_attempt(att: ChargeAttempt, state: AttemptState, **changes: Any) -> None:
    """The one place a charge attempt's state changes, checked against the lifecycle
    (:data:`states.ATTEMPT_MOVES`), with its other fields, in the caller's transaction."""
    states.check_attempt(att.state, state, f"attempt {att.attempt} of invoice {att.invoice_id}")
    att.state = state
    for name, value in changes.items():
        setattr(att, name, value)
    att.updated_at = clock.utcnow()
    att.save()


def record_outcome(
    cfg: Billing, attempt_id: int, intent: Intent | None, decline_code: str = "", *, actor: str = ""
) -> None:
    """Write what :func:`outcome.record` decides Stripe's news changes, once (a later
    report of the same outcome changes nothing)."""
    with audit.write_transaction():
        att = ChargeAttempt.get_by_id(attempt_id)
        inv = Invoice.get_by_id(att.invoice_id)
        facts = outcome.Attempt(
            number=att.attempt,
            state=AttemptState(att.state),
            invoice_status=InvoiceStatus(inv.status),
            invoice_attempts=inv.attempts,
            payment_intent=att.payment_intent,
        )
        news = outcome.record(facts, intent, decline_code, now=clock.utcnow())
        if news.payment_intent:
            att.payment_intent = news.payment_intent
        if news.state is None:
            if news.payment_intent:
                att.save()
            return
        was = att.state
        move_attempt(att, news.state, error_code=news.error_code)
        fields = dict(news.invoice)
        if news.pay_link:
            token = _new_link(inv.org_id, "pay", inv.id)
            fields["action_url"] = f"{cfg.link_base}/billing/pay?invoice={inv.id}&token={token}"
        retry = fields.get("next_retry_at", inv.next_retry_at)
        logged: dict[str, Any] = {
            "actor": actor or "stripe",
            "before": {"attempt_state": was},
            "after": {
                "attempt": att.attempt,
                "attempt_state": news.state,
                "payment_intent": att.payment_intent,
                "code": news.error_code or fields.get("last_error") or None,
                "next_retry_at": clock.aware(retry).isoformat() if retry else None,
            },
        }
        if news.invoice_status is not None:
            move(inv, news.invoice_status, f"charge.{news.state}", **logged, **fields)
        else:
            amend(inv, f"charge.{news.state}", **logged, **fields)
        notify.charge_recorded(inv, att)


def reconcile(cfg: Billing) -> int:
    """Settle pending attempts left by a crash or an unknown outcome; returns how many."""
    gw = cfg.gateway
    if gw is None:
        return 0
    now = clock.utcnow()
    settled = 0
    for att in ChargeAttempt.select().where(
        ChargeAttempt.state == AttemptState.PENDING, ChargeAttempt.mode == gw.mode
    ):
        with _inflight_lock:
            if att.id in _inflight:
                continue
        started_here = clock.aware(att.created_at) >= _STARTED + clock.offset()
        if started_here and now - att.created_at < RECONCILE_GRACE:
            continue
        try:
            found = gw.find_payment_intent(
                att.customer, att.invoice_id, att.attempt, att.amount, att.currency
            )
        except (StripeUnavailable, StripeRejected) as e:
            log.warning("reconcile %s: %s", att.idempotency_key, e)
            continue
        if found is not None:
            record_outcome(cfg, att.id, found, actor="reconcile")
        else:
            # Stripe never saw it: the same attempt, the same key, once.
            _execute(gw, cfg, att.id)
        settled += 1
    return settled


def retry_due(cfg: Billing, now: dt.datetime | None = None) -> int:
    """Dunning: charge failed invoices whose retry time has come."""
    if cfg.gateway is None:
        return 0
    at = clock.aware(now or clock.now()).astimezone(dt.UTC).replace(tzinfo=None)
    ids = [
        i.id
        for i in Invoice.select(Invoice.id).where(
            Invoice.status == InvoiceStatus.FAILED,
            Invoice.next_retry_at.is_null(False),
            Invoice.next_retry_at <= at,
            Invoice.mode == cfg.gateway.mode,
        )
    ]
    for invoice_id in ids:
        try:
            charge(cfg, None, invoice_id, actor=audit.SCHEDULER)
        except Conflict as e:
            log.warning("retry of invoice %d: %s", invoice_id, e.message)
    return len(ids)


def charge_approved(cfg: Billing) -> int:
    """Approved invoices nobody started charging (approved while Stripe was down, a crash)."""
    if cfg.gateway is None:
        return 0
    ids = [
        i.id
        for i in Invoice.select(Invoice.id).where(
            Invoice.status == InvoiceStatus.APPROVED, Invoice.mode == cfg.gateway.mode
        )
    ]
    for invoice_id in ids:
        try:
            charge(cfg, None, invoice_id, actor=audit.SCHEDULER)
        except Conflict as e:
            log.info("approved invoice %d not charged: %s", invoice_id, e.message)
    return len(ids)


def next_retries(limit: int = 100) -> list[dt.datetime]:
    q = (
        Invoice.select(Invoice.next_retry_at)
        .where(Invoice.status == InvoiceStatus.FAILED, Invoice.next_retry_at.is_null(False))
        .order_by(Invoice.next_retry_at)
        .limit(limit)
    )
    return [i.next_retry_at for i in q]


# --- the customer's payment page (SCA) -------------------------------------------------


def pay_page(cfg: Billing, invoice_id: int, token: str) -> contract.PayPage:
    gw = cfg.require_gateway()
    link = _link(token, "pay")
    inv = Invoice.get_or_none(Invoice.id == invoice_id)
    if inv is None or link.invoice_id != invoice_id:
        raise Unauthorized("token: this link is for another invoice")
    out = contract.PayPage(
        invoice=inv.number,
        status=inv.status,
        total=inv.total,
        currency=inv.currency,
        publishable_key=cfg.publishable_key,
        client_secret=None,
        payment_method=None,
    )
    if inv.status == InvoiceStatus.REQUIRES_ACTION and inv.payment_intent:
        pi = gw.retrieve_payment_intent(inv.payment_intent)
        cust = StripeCustomer.get_or_none(
            StripeCustomer.org == inv.org_id, StripeCustomer.mode == gw.mode
        )
        out.client_secret = pi.client_secret
        out.payment_method = cust.payment_method if cust else None
    return out


def pay_complete(cfg: Billing, invoice_id: int, token: str) -> contract.PayResult:
    """The payment page reports back; the PaymentIntent is read from Stripe, not trusted."""
    gw = cfg.require_gateway()
    link = _link(token, "pay")
    if link.invoice_id != invoice_id:
        raise Unauthorized("token: this link is for another invoice")
    inv = Invoice.get_by_id(invoice_id)
    att = (
        ChargeAttempt.select()
        .where(ChargeAttempt.invoice == inv.id)
        .order_by(ChargeAttempt.attempt.desc())
        .first()
    )
    if att is None or not att.payment_intent:
        raise Conflict(f"invoice {inv.number}: no payment waits for you")
    pi = gw.retrieve_payment_intent(att.payment_intent)
    _settle_intent(cfg, pi, actor="customer")
    inv = Invoice.get_by_id(invoice_id)
    return contract.PayResult(invoice=inv.number, status=inv.status)


def _mismatch(att: ChargeAttempt | None, pi: Intent) -> str:
    """Why ``pi`` may not settle ``att`` (the attempt recording its id), or ""."""
    if att is None:
        return f"{pi.id} is not the PaymentIntent of any charge attempt"
    if pi.amount != att.amount:
        return f"amount {pi.amount} is not the attempt's {att.amount}"
    if pi.currency != att.currency.upper():
        return f"currency {pi.currency or '(none)'} is not the attempt's {att.currency}"
    if pi.customer != att.customer:
        return f"customer {pi.customer or '(none)'} is not the attempt's {att.customer}"
    claimed = pi.metadata.get("invoice_id")
    if claimed is not None and claimed != str(att.invoice_id):
        return f"metadata names invoice {claimed[:40]}; the attempt is for {att.invoice_id}"
    return ""


def _claimed_org(pi: Intent) -> int | None:
    """The org of the invoice a PaymentIntent's metadata names, for the audit entry."""
    raw = pi.metadata.get("invoice_id", "")
    if not raw.isdigit() or len(raw) > 10:
        return None
    inv = Invoice.get_or_none(Invoice.id == int(raw))
    return inv.org_id if inv is not None else None


def _settle_intent(cfg: Billing, pi: Intent, *, actor: str, event_id: str = "") -> str:
    """Apply a PaymentIntent's news to the attempt it belongs to; "" when applied.

    Only the attempt that recorded this PaymentIntent's id, with the same amount,
    currency and customer, is settled. Metadata is never enough: anyone able to make
    a PaymentIntent on the account writes it. Anything else is audited and ignored
    (a pending attempt whose id was never recorded is settled by :func:`reconcile`).
    """
    att = ChargeAttempt.get_or_none(ChargeAttempt.payment_intent == pi.id)
    why = _mismatch(att, pi)
    if att is None or why:
        log.warning("payment_intent %s ignored: %s", pi.id, why)
        audit.record(
            "charge.ignored",
            actor=actor,
            org_id=att.invoice.org_id if att is not None else _claimed_org(pi),
            target=f"invoice:{att.invoice_id}" if att is not None else f"payment_intent:{pi.id}",
            after={
                "payment_intent": pi.id,
                "status": pi.status,
                "amount": pi.amount,
                "currency": pi.currency,
                "customer": pi.customer,
                "metadata_invoice_id": pi.metadata.get("invoice_id", "")[:40] or None,
                "event": event_id or None,
                "reason": why,
            },
        )
        return why
    # A customer who failed authentication leaves requires_payment_method: a failed
    # attempt, retried by dunning (requires_action -> failed is a move of the table).
    record_outcome(cfg, att.id, pi, actor=actor)
    return ""


# --- refunds --------------------------------------------------------------------------


def refund(
    cfg: Billing, caller: Any, invoice_id: int, amount: int | None, reason: str, *, actor: str
) -> Invoice:
    gw = cfg.require_gateway()
    reason = (reason or "").strip()
    if not reason:
        raise ApplianceError("reason: required (it goes to the audit log)")
    inv = get(caller, invoice_id)
    if inv.status != InvoiceStatus.PAID or not inv.payment_intent:
        raise Conflict(f"invoice {inv.number} is {inv.status}; only a paid invoice refunds")
    left = inv.total - inv.refunded
    if amount is not None and (
        not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= left
    ):
        raise ApplianceError(f"amount: a positive integer up to {left} (what is left to refund)")
    try:
        gw.require_mode(inv.mode, f"invoice {inv.number}")
    except StripeModeError as e:
        raise _mode_error(e) from None
    key = f"mockmock-{gw.mode}-refund-{inv.id}-{inv.refunded}"
    refund_id, refunded = gw.refund(inv.payment_intent, amount or left, key)
    with audit.write_transaction():
        Invoice.update(refunded=Invoice.refunded + refunded).where(Invoice.id == inv.id).execute()
        inv = Invoice.get_by_id(inv.id)
        after = {"refund": refund_id, "amount": refunded, "reason": reason, "mode": gw.mode}
        if inv.refunded >= inv.total:
            move(inv, InvoiceStatus.REFUNDED, "invoice.refund", actor=actor, after=after)
        else:
            amend(inv, "invoice.refund", actor=actor, after=after)
    return inv


# --- webhooks ---------------------------------------------------------------------------


def webhook(cfg: Billing, payload: bytes, signature: str | None) -> contract.WebhookAck:
    """Verify, de-duplicate (by event id) and apply one Stripe event.

    A signed event that does not fit (a PaymentIntent that is no attempt's own, or
    whose amount, currency or customer differ) is audited and answered 200 with
    ``ignored``: Stripe stops resending it and nothing changes. A body that is not
    a Stripe event is a 400 naming the field.
    """
    from billing.stripe_adapter import intent_of, setup_of, verify_event

    if not cfg.webhook_secret:
        raise ApplianceError("webhooks are not configured (MOCKMOCK_STRIPE_WEBHOOK_SECRET)")
    try:
        event = verify_event(payload, signature, cfg.webhook_secret)
    except ValueError as e:
        raise ApplianceError(str(e)) from None
    mode = "live" if event.livemode else "test"
    if cfg.gateway is not None and mode != cfg.gateway.mode:
        raise ApplianceError(
            f"livemode: a {mode}-mode event for a {cfg.gateway.mode}-mode appliance (refused)"
        )
    kind, obj = event.type, event.object
    try:
        intent = intent_of(obj, "data.object") if kind in SETTLING else None
        setup = setup_of(obj, "data.object") if kind == "setup_intent.succeeded" else None
    except ValueError as e:
        raise ApplianceError(str(e)) from None
    if StripeEvent.select().where(StripeEvent.event_id == event.id).exists():
        return contract.WebhookAck(received=True, duplicate=True)
    # Stripe calls happen before the transaction that records the event.
    if setup is not None and setup.customer and setup.payment_method:
        try:
            save_card(cfg, setup.customer, setup.payment_method, actor="stripe")
        except NotFound:
            log.info("setup_intent.succeeded for a customer that is not ours: %s", setup.customer)
    ignored = ""
    try:
        with audit.write_transaction():
            StripeEvent.create(event_id=event.id, type=kind[:255], mode=mode)
            if intent is not None:
                ignored = _settle_intent(cfg, intent, actor="stripe", event_id=event.id)
            audit.record(
                "stripe.webhook",
                actor="stripe",
                target=f"event:{event.id}",
                after={
                    "type": kind,
                    "object": obj.get("id") if isinstance(obj.get("id"), str) else None,
                    "mode": mode,
                    "ignored": ignored or None,
                },
            )
    except pw.IntegrityError:
        return contract.WebhookAck(received=True, duplicate=True)
    return contract.WebhookAck(received=True, duplicate=False, ignored=ignored or msgspec.UNSET)


SETTLING = ("payment_intent.succeeded", "payment_intent.payment_failed")
"""Event types that may move an invoice (the rest are recorded and acknowledged)."""
